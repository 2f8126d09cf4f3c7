"""The settings of the chip loop (:func:`memlearn.onchip.loop.adapt_on_chip`), checked when
they are made."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memlearn.chip.base import STRATEGIES
from memlearn.onchip.policies import DEFAULT_POLICY, POLICIES


@dataclass
class AdaptConfig:
    """Settings of one on-chip adaptation run.

    ``levels``: conductance levels per cell (an int: uniform in the chip's window; a tensor of
    siemens; ``None``: the chip's own ``levels``).  ``weight_max``: per layer, the weight mapped
    to the full window (as in hardware-aware meta-training; a checkpoint's ``weight_max``);
    when ``None`` the scale puts ``headroom`` (≥ 1) times the largest deployed weight there.
    ``bake_seconds``/``bake_kelvin``: an optional bake after
    adaptation.  ``settle_seconds``: time the loop lets pass after each programming (at
    ``ambient_kelvin``), as a bench's computer in the loop takes.  ``seed``: the loop's own
    random choices (the ``stochastic`` policy's rounding).  ``fault_fraction``: a cell read
    more than this fraction of the conductance window away from its target is taken as faulty
    (stuck, worn out, never verified): it is not pulsed again and its partner compensates
    (:func:`~memlearn.onchip.policies.fault_aware_targets`); ``None`` turns this off (the
    level-based policies only).
    """

    steps: int = 5
    strategy: str = "hybrid"
    policy: str = DEFAULT_POLICY
    levels: int | torch.Tensor | None = None
    headroom: float = 1.0
    weight_max: list[float] | None = None
    bake_seconds: float = 0.0
    bake_kelvin: float = 423.15
    settle_seconds: float = 0.0
    ambient_kelvin: float = 300.0
    seed: int = 0
    fault_fraction: float | None = 0.2  # [E] 28 uS on 10-150 uS: > 7 sigma of a verified cell

    def __post_init__(self) -> None:
        if self.steps < 0:
            raise ValueError(f"steps must be >= 0, got {self.steps}")
        # DeployConfig checks the names of a deployment at its boundary; adapt_on_chip is a
        # public entry point of its own (studies and benches call it with hand-made configs), so
        # the loop's config checks them too, before any pulse.
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; allowed: {list(STRATEGIES)}")
        if self.policy not in POLICIES:
            raise ValueError(f"unknown update policy {self.policy!r}; allowed: {list(POLICIES)}")
        if self.bake_seconds < 0 or self.settle_seconds < 0:
            raise ValueError("bake_seconds and settle_seconds must be >= 0")
        if not self.bake_kelvin > 0 or not self.ambient_kelvin > 0:
            raise ValueError("temperatures must be > 0 K")
        if self.fault_fraction is not None and not 0 < self.fault_fraction <= 1:
            raise ValueError(f"fault_fraction must be in (0, 1] or None, got {self.fault_fraction}")
        if self.headroom < 1:
            raise ValueError(f"headroom must be >= 1, got {self.headroom}")
        if self.weight_max is not None and not all(w > 0 for w in self.weight_max):
            raise ValueError(f"weight_max must hold values > 0, got {self.weight_max}")
