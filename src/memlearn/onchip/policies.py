"""Conductance update policies: how a weight update computed in the loop reaches the cells.

Each policy gets the read-out weights ``w_read`` and the SGD result ``w_new = w_read − lr·g``
(both ``[n_chips, rows, cols]``, weight units) and programs the array through the
:class:`~memlearn.chip.base.Chip` interface.  The level-based policies decide a new signed level
index per pair (:meth:`UpdatePolicy.next_index`, the same rule the float calibration of the
full-scale weight simulates) and program-and-verify every pair whose index changed:

``stochastic`` (default)
    (a) with unbiased stochastic rounding of the *update*: from the last programmed level, a
    pair moves to one of the two levels around ``level + lr·g`` with probabilities that make
    the expected weight exact (:meth:`~memlearn.crossbar.mapping.DifferentialMapping.
    update_index`).  Updates smaller than a level step are not rounded away: they move the
    pair a whole level with probability ``|lr·g| / step``.
``verify``
    (a) with nearest rounding: quantise ``w_new`` (read-out weight plus update) to the nearest
    weight level and program-and-verify every pair whose target level differs from the one
    last programmed.  A pair whose read-out weight drifted more than half a level away from
    its level is re-targeted to the level nearest its read value plus the update.
``threshold``
    (c) Only pairs whose requested change ``|w_new − w_read|`` exceeds half a level step are
    given a new (nearest) target; every other pair keeps its target and is not touched.
``manhattan``
    (b) Sign updates with fixed pulses, no verify (Manhattan rule): a pair whose weight should
    rise gets one SET pulse on its active cell if the weight is ≥ 0 (G+), else one RESET pulse
    on G−; a falling weight gets one RESET on G+ if > 0, else one SET on G−.  Only pairs with
    ``|lr·g|`` ≥ ``min_fraction`` of a level step are pulsed.

Each returns the chip's :class:`~memlearn.chip.base.ProgramReport` and ``expected_cells``, the
number of cells per chip whose target changed (for the level-based policies: the cells the chip
must write; a cell already inside its new verify band needs no pulse).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memlearn.chip.base import Chip, ProgramReport
from memlearn.onchip.mapping import WeightMapping

POLICIES = ("stochastic", "verify", "threshold", "manhattan")
DEFAULT_POLICY = "stochastic"


@dataclass
class LayerState:
    """What the loop knows about one array: its mapping and last programmed level indices."""

    array: str
    mapping: WeightMapping
    index: torch.Tensor  # signed level index per pair, [n_chips, rows, cols], int64


def _changed_cells(old: torch.Tensor, new: torch.Tensor, mapping: WeightMapping) -> torch.Tensor:
    old_p, old_m = mapping.targets(old)
    new_p, new_m = mapping.targets(new)
    return ((old_p != new_p).sum(dim=(1, 2)) + (old_m != new_m).sum(dim=(1, 2))).long()


def _program_levels(
    chip: Chip, state: LayerState, new_index: torch.Tensor, strategy: str
) -> tuple[ProgramReport, torch.Tensor]:
    expected = _changed_cells(state.index, new_index, state.mapping)
    g_plus, g_minus = state.mapping.targets(new_index)
    mask = new_index != state.index
    report = chip.program(state.array, g_plus, g_minus, strategy=strategy, mask=mask)
    state.index = new_index
    return report, expected


class UpdatePolicy:
    """Base class: ``apply(chip, state, w_read, w_new, strategy) -> (report, expected_cells)``.

    Level-based policies implement :meth:`next_index`; :meth:`apply` then programs the pairs
    whose index changed.  ``generator`` drives random rounding (seeded per run).
    """

    name = ""

    def __init__(self, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(int(seed))

    def next_index(
        self,
        mapping: WeightMapping,
        index: torch.Tensor,
        w_read: torch.Tensor,
        w_new: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """New signed level index per pair (``[n, rows, cols]`` int64), from the last
        programmed ``index``, the read-out weights ``w_read`` and the requested weights
        ``w_new`` (weight units)."""
        raise NotImplementedError(f"policy {self.name!r} does not target levels")

    def apply(
        self,
        chip: Chip,
        state: LayerState,
        w_read: torch.Tensor,
        w_new: torch.Tensor,
        strategy: str,
    ) -> tuple[ProgramReport, torch.Tensor]:
        new_index = self.next_index(state.mapping, state.index, w_read, w_new, self.generator)
        return _program_levels(chip, state, new_index, strategy)


class StochasticPolicy(UpdatePolicy):
    """(a) with stochastic rounding of the update from the last programmed level (default)."""

    name = "stochastic"

    def next_index(
        self,
        mapping: WeightMapping,
        index: torch.Tensor,
        w_read: torch.Tensor,
        w_new: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        return mapping.update_index(index, w_new - w_read, "stochastic", generator)


class VerifyPolicy(UpdatePolicy):
    """(a) Nearest-level target of ``w_new`` + program-and-verify of every changed pair."""

    name = "verify"

    def next_index(
        self,
        mapping: WeightMapping,
        index: torch.Tensor,
        w_read: torch.Tensor,
        w_new: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        return mapping.index(w_new, "nearest")


class ThresholdPolicy(UpdatePolicy):
    """(c) Program only pairs whose requested change exceeds ``fraction`` of a level step."""

    name = "threshold"

    def __init__(self, fraction: float = 0.5, seed: int = 0) -> None:
        super().__init__(seed)
        if not fraction > 0:
            raise ValueError(f"threshold fraction must be > 0, got {fraction}")
        self.fraction = fraction

    def next_index(
        self,
        mapping: WeightMapping,
        index: torch.Tensor,
        w_read: torch.Tensor,
        w_new: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        write = (w_new - w_read).abs() > self.fraction * mapping.min_weight_step
        return torch.where(write, mapping.index(w_new, "nearest"), index)


class ManhattanPolicy(UpdatePolicy):
    """(b) One fixed SET or RESET pulse per pair in the direction of −gradient, no verify."""

    name = "manhattan"

    def __init__(self, min_fraction: float = 0.25, seed: int = 0) -> None:
        super().__init__(seed)
        if min_fraction < 0:
            raise ValueError(f"min_fraction must be >= 0, got {min_fraction}")
        self.min_fraction = min_fraction

    def apply(
        self,
        chip: Chip,
        state: LayerState,
        w_read: torch.Tensor,
        w_new: torch.Tensor,
        strategy: str,
    ) -> tuple[ProgramReport, torch.Tensor]:
        delta = w_new - w_read
        act = delta.abs() >= self.min_fraction * state.mapping.level_step()
        up = act & (delta > 0)
        down = act & (delta < 0)
        positive = w_read >= 0
        plus = torch.zeros_like(delta, dtype=torch.int8)
        minus = torch.zeros_like(delta, dtype=torch.int8)
        plus[up & positive] = 1  # SET G+
        minus[up & ~positive] = -1  # RESET G-
        plus[down & (w_read > 0)] = -1  # RESET G+
        minus[down & (w_read <= 0)] = 1  # SET G-
        report = chip.pulse(state.array, plus, minus)
        expected = ((plus != 0).sum(dim=(1, 2)) + (minus != 0).sum(dim=(1, 2))).long()
        # After blind pulses the loop no longer knows the level: track the read-out level.
        g_plus_lvl = state.mapping.quantise(w_read + delta.sign() * state.mapping.level_step())
        state.index = torch.where(act, g_plus_lvl, state.index)
        return report, expected


_CLASSES: dict[str, type[UpdatePolicy]] = {
    "stochastic": StochasticPolicy,
    "verify": VerifyPolicy,
    "threshold": ThresholdPolicy,
    "manhattan": ManhattanPolicy,
}


def make_policy(name: str, seed: int = 0) -> UpdatePolicy:
    """The policy called ``name`` (one of :data:`POLICIES`); ``seed`` drives random rounding."""
    if name not in _CLASSES:
        raise ValueError(f"unknown update policy {name!r}; allowed: {list(POLICIES)}")
    return _CLASSES[name](seed=seed)
