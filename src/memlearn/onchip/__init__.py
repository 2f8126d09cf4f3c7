"""The computer-in-the-loop: deployment of a meta-trained model into a chip and K-step on-chip
adaptation with conductance update policies.

Public API: :class:`AdaptConfig`, :func:`adapt_on_chip` and :class:`AdaptResult` (the loop on
any :class:`~memlearn.chip.base.Chip`), :func:`run_adaptation` (network + tasks → on-chip and
ideal-software curves), :func:`summarise`, :data:`POLICIES` (``verify``, ``threshold``,
``manhattan``) and :class:`WeightMapping` (weights ↔ differential conductance targets).
"""

from memlearn.onchip.loop import AdaptConfig, AdaptResult, adapt_on_chip, analog_forward
from memlearn.onchip.mapping import WeightMapping, uniform_levels
from memlearn.onchip.policies import POLICIES, make_policy
from memlearn.onchip.run import (
    deployment_summary,
    head_weights,
    inner_lrs_from,
    run_adaptation,
    summarise,
    task_features,
)

__all__ = [
    "POLICIES",
    "AdaptConfig",
    "AdaptResult",
    "WeightMapping",
    "adapt_on_chip",
    "analog_forward",
    "deployment_summary",
    "head_weights",
    "inner_lrs_from",
    "make_policy",
    "run_adaptation",
    "summarise",
    "task_features",
    "uniform_levels",
]
