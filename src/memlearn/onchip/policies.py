"""Conductance update policies: how a weight update computed in the loop reaches the cells.

Each policy gets the read-out weights ``w_read`` and the SGD result ``w_new = w_read − lr·g``
(both ``[n_chips, rows, cols]``, weight units) and programs the array through the
:class:`~memlearn.chip.base.Chip` interface.  The level-based policies decide a new signed level
index per pair (:meth:`UpdatePolicy.next_index`, the same rule the float calibration of
``weight_max`` simulates) and program-and-verify every pair whose index changed:

``stochastic``
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
``accumulate`` (default)
    (a) with a float copy in the computer (mixed-precision, after Nandakumar et al., "Mixed-
    precision deep learning based on computational memory", Front. Neurosci. 14, 406, 2020):
    the loop keeps each weight at full precision, starting from the meta-learned float weight
    and clipped to ``±weight_max``; every update is added to that copy and the pair is
    programmed to the level nearest it (only pairs whose level changed are written).  Updates
    smaller than half a level step accumulate until they cross a level boundary instead of
    being rounded away (``verify``) or turned into random whole-level moves (``stochastic``);
    the cost is one float per weight in the computer (592 for the reference head).
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
from memlearn.crossbar.mapping import DifferentialMapping
from memlearn.devices.levels import nearest_level

POLICIES = ("stochastic", "accumulate", "verify", "threshold", "manhattan")
DEFAULT_POLICY = "accumulate"


@dataclass
class LayerState:
    """What the loop knows about one array.

    ``index``: the signed level index of each pair's weight (``[n_chips, rows, cols]``, int64);
    ``targets``: the ``(G+, G-)`` targets (S) last sent to the chip; ``faulty``: per cell
    (``(G+, G-)`` bool masks) whether it was found far from its target, and ``fault_g`` (S) the
    conductance it was read at (see :func:`find_faults`); ``copy``: the computer's float copy
    of the weights (``accumulate`` policy; weight units, within ``±weight_max``).
    """

    array: str
    mapping: DifferentialMapping
    index: torch.Tensor
    targets: tuple[torch.Tensor, torch.Tensor] | None = None
    faulty: tuple[torch.Tensor, torch.Tensor] | None = None
    fault_g: tuple[torch.Tensor, torch.Tensor] | None = None
    copy: torch.Tensor | None = None


@dataclass(frozen=True)
class LevelUpdate:
    """One layer's update as a level-based policy sees it: the layer's ``mapping``, the signed
    level ``index`` last programmed, the read-out weights ``w_read`` and the requested weights
    ``w_new`` (weight units, ``[n_chips, rows, cols]``)."""

    mapping: DifferentialMapping
    index: torch.Tensor
    w_read: torch.Tensor
    w_new: torch.Tensor


def find_faults(
    state: LayerState, g_plus: torch.Tensor, g_minus: torch.Tensor, threshold: float
) -> None:
    """Mark cells read more than ``threshold`` siemens away from their last target as faulty
    (stuck, worn out or never verified), remembering the conductance they were read at.

    A cell once found faulty stays so; its read value is refreshed at every read.
    """
    if state.targets is None:
        return
    found = []
    for g, target, old, old_g in zip(
        (g_plus, g_minus),
        state.targets,
        state.faulty or (None, None),
        state.fault_g or (None, None),
        strict=True,
    ):
        bad = (g - target).abs() > threshold
        if old is not None:
            bad |= old
        found.append((bad, torch.where(bad, g, torch.zeros_like(g) if old_g is None else old_g)))
    state.faulty = (found[0][0], found[1][0])
    state.fault_g = (found[0][1], found[1][1])


def fault_aware_targets(
    state: LayerState, index: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(G+, G-)`` targets (S) for the weights of ``index``, around the faulty cells.

    A healthy pair gets the sign-magnitude targets of its level.  A pair with one faulty cell
    keeps that cell's last target (so it is not pulsed again in vain) and sets its partner to
    the level that brings ``s (G+ - G-)`` nearest the weight, given the faulty cell's read
    conductance (differential compensation); a pair with both cells faulty is left alone.
    """
    g_plus, g_minus = state.mapping.index_conductances(index)
    if state.faulty is None or state.targets is None or state.fault_g is None:
        return g_plus, g_minus
    last_p, last_m = state.targets
    gf_p, gf_m = state.fault_g
    at_p, at_m = (bad.nonzero(as_tuple=True) for bad in state.faulty)  # the few faulty cells
    levels = state.mapping.levels
    # G+ faulty: G- = G+_read - want;  G- faulty: G+ = G-_read + want  (in place: both are
    # fresh; only the faulty cells' entries are computed)
    m, any_p, any_m = state.mapping, at_p[0].numel() > 0, at_m[0].numel() > 0
    if any_p:
        g_minus[at_p] = levels[nearest_level(gf_p[at_p] - _wanted(m, index, at_p), levels)]
    if any_m:
        g_plus[at_m] = levels[nearest_level(gf_m[at_m] + _wanted(m, index, at_m), levels)]
    if any_p:
        g_plus[at_p] = last_p[at_p]
    if any_m:
        g_minus[at_m] = last_m[at_m]
    return g_plus, g_minus


def _wanted(
    mapping: DifferentialMapping, index: torch.Tensor, at: tuple[torch.Tensor, ...]
) -> torch.Tensor:
    """The wanted ``G+ - G-`` (S) of the pairs ``at`` of ``index``: the nominal weight of their
    level over the scale, element by element as for the whole matrix."""
    k = index[at]
    scale = torch.broadcast_to(mapping.scale.to(index.device), index.shape)[at]
    steps = mapping.steps.to(index.device)
    return torch.sign(k).float() * scale * steps[k.abs()] / scale


def program_targets(
    chip: Chip, state: LayerState, index: torch.Tensor, strategy: str
) -> tuple[ProgramReport, torch.Tensor]:
    """Program the (fault-aware) targets of ``index``; only cells whose target changed are
    written.  Returns the chip's report and the cells per chip whose target changed."""
    g_plus, g_minus = fault_aware_targets(state, index)
    if state.targets is None:
        change_p = torch.ones_like(g_plus, dtype=torch.bool)
        change_m = change_p
    else:
        change_p, change_m = g_plus != state.targets[0], g_minus != state.targets[1]
    expected = (change_p.sum(dim=(1, 2)) + change_m.sum(dim=(1, 2))).long()
    report = chip.program(state.array, g_plus, g_minus, strategy=strategy, mask=change_p | change_m)
    state.index, state.targets = index, (g_plus, g_minus)
    return report, expected


class UpdatePolicy:
    """Base class: ``apply(chip, state, w_read, w_new, strategy) -> (report, expected_cells)``.

    Level-based policies implement :meth:`next_index`; :meth:`apply` then programs the pairs
    whose index changed.  ``generator`` drives random rounding (seeded per run).
    """

    name = ""
    targets_levels = True  # programs level targets (and so can work around faulty cells)
    keeps_copy = False  # keeps a float copy of the weights in the computer (LayerState.copy)

    def __init__(self, seed: int = 0) -> None:
        self.generator = torch.Generator().manual_seed(int(seed))

    def next_index(self, u: LevelUpdate) -> torch.Tensor:
        """New signed level index per pair (``[n, rows, cols]`` int64) for the update ``u``;
        random rounding draws from :attr:`generator`."""
        raise NotImplementedError(f"policy {self.name!r} does not target levels")

    def apply(
        self,
        chip: Chip,
        state: LayerState,
        w_read: torch.Tensor,
        w_new: torch.Tensor,
        strategy: str,
    ) -> tuple[ProgramReport, torch.Tensor]:
        new_index = self.next_index(LevelUpdate(state.mapping, state.index, w_read, w_new))
        return program_targets(chip, state, new_index, strategy)


class StochasticPolicy(UpdatePolicy):
    """(a) with stochastic rounding of the update from the last programmed level."""

    name = "stochastic"

    def next_index(self, u: LevelUpdate) -> torch.Tensor:
        return u.mapping.update_index(u.index, u.w_new - u.w_read, "stochastic", self.generator)


class VerifyPolicy(UpdatePolicy):
    """(a) Nearest-level target of ``w_new`` + program-and-verify of every changed pair."""

    name = "verify"

    def next_index(self, u: LevelUpdate) -> torch.Tensor:
        return u.mapping.index(u.w_new, "nearest")


class AccumulatePolicy(VerifyPolicy):
    """(a) Nearest level of a float copy of the weights kept in the computer.

    ``next_index`` is :class:`VerifyPolicy`'s, applied to the copy: callers pass the copy plus
    the update as ``w_new`` (:meth:`accumulate` does the bookkeeping).
    """

    name = "accumulate"
    keeps_copy = True

    @staticmethod
    def accumulate(
        mapping: DifferentialMapping,
        copy: torch.Tensor | None,
        w_read: torch.Tensor,
        w_new: torch.Tensor,
    ) -> torch.Tensor:
        """The float copy after the update ``w_new - w_read`` (from ``w_read`` when there is no
        copy yet), clipped to ``±weight_max``."""
        return mapping.accumulate(w_read if copy is None else copy, w_new - w_read)

    def apply(
        self,
        chip: Chip,
        state: LayerState,
        w_read: torch.Tensor,
        w_new: torch.Tensor,
        strategy: str,
    ) -> tuple[ProgramReport, torch.Tensor]:
        state.copy = self.accumulate(state.mapping, state.copy, w_read, w_new)
        return super().apply(chip, state, w_read, state.copy, strategy)


class ThresholdPolicy(UpdatePolicy):
    """(c) Program only pairs whose requested change exceeds ``fraction`` of a level step."""

    name = "threshold"

    def __init__(self, fraction: float = 0.5, seed: int = 0) -> None:
        super().__init__(seed)
        if not fraction > 0:
            raise ValueError(f"threshold fraction must be > 0, got {fraction}")
        self.fraction = fraction

    def next_index(self, u: LevelUpdate) -> torch.Tensor:
        write = (u.w_new - u.w_read).abs() > self.fraction * u.mapping.min_weight_step
        return torch.where(write, u.mapping.index(u.w_new, "nearest"), u.index)


class ManhattanPolicy(UpdatePolicy):
    """(b) One fixed SET or RESET pulse per pair in the direction of −gradient, no verify."""

    name = "manhattan"
    targets_levels = False

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
        act = delta.abs() >= self.min_fraction * state.mapping.min_weight_step
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
        step = state.mapping.min_weight_step
        g_plus_lvl = state.mapping.index(w_read + delta.sign() * step)
        state.index = torch.where(act, g_plus_lvl, state.index)
        return report, expected


_CLASSES: dict[str, type[UpdatePolicy]] = {
    "stochastic": StochasticPolicy,
    "accumulate": AccumulatePolicy,
    "verify": VerifyPolicy,
    "threshold": ThresholdPolicy,
    "manhattan": ManhattanPolicy,
}


def make_policy(name: str, seed: int = 0) -> UpdatePolicy:
    """The policy called ``name`` (one of :data:`POLICIES`); ``seed`` drives random rounding."""
    if name not in _CLASSES:
        raise ValueError(f"unknown update policy {name!r}; allowed: {list(POLICIES)}")
    return _CLASSES[name](seed=seed)
