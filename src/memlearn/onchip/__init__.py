"""The computer-in-the-loop: deployment of a meta-trained model into a chip and K-step on-chip
adaptation with conductance update policies.

Public API: :func:`deploy` (one validated :class:`DeployConfig` → a :class:`Deployment`: the
closable chip, repaired, the tasks and the full-scale weight), :class:`AdaptConfig`,
:func:`adapt_on_chip` and :class:`AdaptResult` (the loop on any
:class:`~memlearn.chip.base.Chip`), :func:`run_adaptation` (network + tasks → on-chip and
ideal-software curves), :func:`summarise`, :data:`POLICIES` (:data:`DEFAULT_POLICY`
``accumulate``, ``stochastic``, ``verify``, ``threshold``, ``manhattan``), and the calibration
of ``weight_max``: :func:`calibrate_weight_max`, :func:`resolve_weight_max`,
:func:`quantised_adapt` (the loop on an ideal chip, in float).  Weights map to differential
conductance targets with :class:`memlearn.crossbar.mapping.DifferentialMapping`; every
adaptation runs the one inner loop, :func:`memlearn.meta.inner.inner_loop`.
"""

from memlearn.onchip.calibration import WEIGHT_MAX_RULES, quantised_adapt, weight_max_for
from memlearn.onchip.config import AdaptConfig
from memlearn.onchip.deploy import DeployConfig, Deployment, deploy
from memlearn.onchip.loop import AdaptResult, adapt_on_chip, analog_forward
from memlearn.onchip.mapping import uniform_levels
from memlearn.onchip.policies import DEFAULT_POLICY, POLICIES, make_policy
from memlearn.onchip.run import (
    WEIGHT_MAX_SOURCES,
    calibrate_weight_max,
    deployment_summary,
    head_weights,
    inner_lrs_from,
    resolve_weight_max,
    run_adaptation,
    summarise,
    task_features,
)

__all__ = [
    "DEFAULT_POLICY",
    "POLICIES",
    "WEIGHT_MAX_RULES",
    "WEIGHT_MAX_SOURCES",
    "AdaptConfig",
    "AdaptResult",
    "DeployConfig",
    "Deployment",
    "adapt_on_chip",
    "analog_forward",
    "calibrate_weight_max",
    "deploy",
    "deployment_summary",
    "head_weights",
    "inner_lrs_from",
    "make_policy",
    "quantised_adapt",
    "resolve_weight_max",
    "run_adaptation",
    "summarise",
    "task_features",
    "uniform_levels",
    "weight_max_for",
]
