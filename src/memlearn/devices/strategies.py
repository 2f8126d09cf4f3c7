"""Write strategies of a resistive (1T1R) cell, registered by name (``STRATEGIES``).

- ``single-set``: (full RESET if the cell is above the target) then one SET at the target's
  nominal compliance; no verify.  Fast, wide: device-to-device and cycle-to-cycle spread stay.
- ``iterative-set`` (smart SET, from a low state up): verify; SET pulses with the compliance
  stepped up from ``iset_start`` of nominal by ``iset_step``; a cell that overshoots is fully
  RESET and its ramp restarts one step below the compliance that overshot.
- ``iterative-reset`` (smart RESET, from a high state down): verify; a strong SET (gate fully
  on), then RESET pulses of rising amplitude (step ``reset_step``) from one step below the
  amplitude at which the cell's estimated curve reaches ``(1 + ireset_margin) * target``; a
  cell that undershoots is SET strongly and restarts from its learned onset.
- ``hybrid``: the blend, split by level.  Levels at or above ``hybrid_split`` are written as
  iterative SET does (compliance-controlled SET: the relative cycle-to-cycle spread of a SET
  falls as the filament widens); levels below it by a SET aiming ``hybrid_margin`` above the
  target followed by RESET-verify trimming down into the band (a RESET step moves G by a fixed
  fraction, fine where G is small, and it reaches below the lowest conductance a SET controls,
  ``icc_min / set_k_volts``).  Its window therefore opens lower: ``hybrid_g_min``
  (``levels.strategy_window``).

  The reference work (VLSI 2025; REFERENCE.md s1) describes smart SET, smart RESET and hybrid
  as their blend with less overlap, a wider window and less drift; the split by level and the
  window are this reading of it ([E]).  RESET-and-verify against the drift of low-conductance
  states: Baroni et al., IIRW 2021.

  How stable a written state is follows from the compliance of the SET that last grew its
  filament and the depth of the RESETs since (``retention``), not from the strategy's name,
  so which strategy drifts less is measured, not assumed.

Every verified strategy adapts per cell, from what the reads showed (``controller.observe``):
each cell carries an estimate of its RESET onset, so a trim starts one step below the
amplitude at which the cell is expected to move and ramps up from there, and after an
undershoot and a new SET it restarts from what it learned instead of from the nominal curve;
a SET ramp remembers the compliance that overshot.  Incremental-step program-and-verify with
a read after every pulse: Pérez et al., Electronics 10, 1084 (2021, M-ISPVA on 4 kbit HfO2
1T1R); Wan et al., Nature 608, 504 (2022, NeuRRAM, Ext. Data Fig. 3); the per-cell memory of
the onset and of the compliance across restarts is [E].

A verified strategy (``VerifiedStrategy``) is its start (the first action from the initial
verify read) and its per-pulse transition (the next action from the read after a pulse); the
controller (``controller.verify_loop``) runs the pulses.  A new strategy is a subclass plus an
entry in ``_REGISTRY``.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from memlearn.devices import physics
from memlearn.devices.cells import STUCK_NONE, CellState
from memlearn.devices.controller import (
    FULL_RESET,
    RESET,
    SET,
    STRONG_SET,
    ControllerState,
    verify_loop,
)
from memlearn.devices.preset import DevicePreset
from memlearn.devices.technology import WriteTally
from memlearn.errors import MemlearnError


class WriteStrategy:
    """A way of writing resistive cells to target conductances.

    ``ends_with_reset``: every state it leaves ends with a RESET; ``reset_terminated`` says it
    per target."""

    name: ClassVar[str]
    ends_with_reset: ClassVar[bool] = False

    def write(
        self,
        preset: DevicePreset,
        flat: CellState,
        target: torch.Tensor,
        tol: float,
        limit: int,
        generator: torch.Generator,
        tally: WriteTally,
    ) -> None:
        """Program the flat ``cells`` (in place) to ``target`` (S, 1-D), filling ``tally``."""
        raise NotImplementedError

    def reset_terminated(self, preset: DevicePreset, target: torch.Tensor) -> torch.Tensor:
        """Whether a cell written to ``target`` (S) ends with a RESET (bool, per target)."""
        return torch.full(target.shape, self.ends_with_reset, dtype=torch.bool)


class SingleSet(WriteStrategy):
    """One SET at the nominal compliance (after a full RESET if the cell is too high)."""

    name = "single-set"

    def write(
        self,
        preset: DevicePreset,
        flat: CellState,
        target: torch.Tensor,
        tol: float,
        limit: int,
        generator: torch.Generator,
        tally: WriteTally,
    ) -> None:
        v = preset.values
        healthy = flat.stuck == STUCK_NONE
        g = flat.g
        # a SET cannot lower G: cells above the band are fully RESET first
        need_reset = g > target - tol
        g_r, e_r = physics.reset_pulse(preset, g, v["reset_v_max"], flat.reset_shift, generator)
        g = torch.where(need_reset & healthy, g_r, g)
        # a cell whose endurance runs out on that RESET sticks before its SET (apply_wear, later)
        healthy = healthy & (flat.pulses + need_reset.float() < flat.endurance)
        icc = physics.nominal_compliance(preset, target)
        icc_real = physics.compliance(preset, physics.gate_voltage(preset, icc))
        g_s, e_s = physics.set_pulse_at(preset, g, icc_real, flat.set_gain, generator)
        flat.g.copy_(torch.where(healthy, g_s, flat.g))
        flat.reset_final.zero_()
        grew = healthy & (g_s > g)  # a SET that grew the filament records its compliance
        flat.set_icc.copy_(torch.where(grew, icc_real, flat.set_icc))
        flat.reset_depth.masked_fill_(grew, 0.0)
        tally.reset_pulses += need_reset.int()
        tally.set_pulses += 1
        tally.energy += e_s + torch.where(need_reset, e_r, torch.zeros_like(e_r))
        tally.failed |= (flat.g - target).abs() > tol


class VerifiedStrategy(WriteStrategy):
    """A program-and-verify strategy: ``start`` and ``transition`` drive the controller.

    ``strong_sets``: it gives strong SETs (``STRONG_SET``, the gate fully on)."""

    strong_sets: ClassVar[bool] = False

    def write(
        self,
        preset: DevicePreset,
        flat: CellState,
        target: torch.Tensor,
        tol: float,
        limit: int,
        generator: torch.Generator,
        tally: WriteTally,
    ) -> None:
        verify_loop(preset, self, flat, target, tol, limit, generator, tally)

    def margin(self, preset: DevicePreset) -> float:
        """How far above the target (fraction) a SET aimed above it aims."""
        return 0.0

    def set_aim(self, preset: DevicePreset, target: torch.Tensor) -> torch.Tensor:
        """The nominal compliance (A) whose SET ramp step 1.0 aims at, per target (S)."""
        return physics.nominal_compliance(preset, target * (1.0 + self.margin(preset)))

    def ramp_start(self, preset: DevicePreset, target: torch.Tensor) -> torch.Tensor | float:
        """The SET ramp index of a cell's first SET, per target (S)."""
        return 0.0

    def start(self, preset: DevicePreset, st: ControllerState, r: torch.Tensor) -> None:
        """Set ``st.action`` (and ``st.volts``) from the initial verify read ``r`` (S)."""
        raise NotImplementedError

    def transition(
        self,
        preset: DevicePreset,
        st: ControllerState,
        r: torch.Tensor,
        ok: torch.Tensor,
        above: torch.Tensor,
    ) -> torch.Tensor:
        """After a pulse (``st.action``) read ``r`` (S): update ``st.action``, ``st.k``,
        ``st.k_mem``, ``st.volts``; return which cells are done (``ok``: read in band, may be
        narrowed; ``above``: read above the band).  ``controller.observe`` has already updated
        the onset estimate."""
        raise NotImplementedError


def ramp_transition(
    st: ControllerState,
    above: torch.Tensor,
    was_set: torch.Tensor,
    fixed_memory: torch.Tensor | None = None,
) -> torch.Tensor:
    """The SET-verify step of iterative SET and hybrid: the ramp goes on after a SET
    (``was_set``); a SET that overshot (read ``above`` the band) is remembered (the ramp
    restarts one index below it) and a full RESET follows.  Cells in ``fixed_memory`` keep
    their ``st.k_mem``.  Updates ``st.k_mem`` and ``st.k``; returns the next action (int8)."""
    overshot = was_set & above
    if fixed_memory is not None:
        overshot = overshot > fixed_memory  # a & ~b: a > b
    st.k_mem = torch.where(overshot, (st.k - 1.0).clamp_min(0.0), st.k_mem)
    st.k = torch.where(was_set, st.k + 1.0, st.k_mem)
    return pick(above, FULL_RESET, SET)


class IterativeSet(VerifiedStrategy):
    """SET-verify with a rising compliance; a full RESET restarts a cell that overshot, its
    ramp one step below the compliance that overshot."""

    name = "iterative-set"

    def start(self, preset: DevicePreset, st: ControllerState, r: torch.Tensor) -> None:
        st.action[r > st.hi] = FULL_RESET

    def transition(
        self,
        preset: DevicePreset,
        st: ControllerState,
        r: torch.Tensor,
        ok: torch.Tensor,
        above: torch.Tensor,
    ) -> torch.Tensor:
        st.action = ramp_transition(st, above, st.action == SET)
        return ok


class IterativeReset(VerifiedStrategy):
    """A strong SET, then RESET-verify with a rising amplitude from the cell's learned onset;
    an undershoot restarts."""

    name = "iterative-reset"
    ends_with_reset = True
    strong_sets = True

    def start(self, preset: DevicePreset, st: ControllerState, r: torch.Tensor) -> None:
        st.action[r < st.hi] = STRONG_SET
        above = r >= st.hi
        st.action[above] = RESET
        st.volts = torch.where(above, trim_start(preset, st, r), st.volts)

    def transition(
        self,
        preset: DevicePreset,
        st: ControllerState,
        r: torch.Tensor,
        ok: torch.Tensor,
        above: torch.Tensor,
    ) -> torch.Tensor:
        was_reset = st.action == RESET
        volts = st.volts.add(was_reset, alpha=preset.values["reset_step"])
        st.volts = torch.where(was_reset, volts, trim_start(preset, st, r))
        st.action = pick(r < st.lo, STRONG_SET, RESET)
        return ok


class Hybrid(VerifiedStrategy):
    """Iterative SET for the levels at or above ``hybrid_split``; below it, a SET to a coarse
    band above the target, then RESET-verify trims into the band."""

    name = "hybrid"

    def margin(self, preset: DevicePreset) -> float:
        return preset.values["hybrid_margin"]

    def trimmed(self, preset: DevicePreset, target: torch.Tensor) -> torch.Tensor:
        """Which targets (S) are RESET-verified (below ``hybrid_split``)."""
        return target < preset.values["hybrid_split"]

    def reset_terminated(self, preset: DevicePreset, target: torch.Tensor) -> torch.Tensor:
        return self.trimmed(preset, target)

    def set_aim(self, preset: DevicePreset, target: torch.Tensor) -> torch.Tensor:
        above = torch.where(self.trimmed(preset, target), 1.0 + self.margin(preset), 1.0)
        return physics.nominal_compliance(preset, target * above)

    def ramp_start(self, preset: DevicePreset, target: torch.Tensor) -> torch.Tensor:
        """Trimmed levels: the ramp index whose compliance is the aim's; others: 0."""
        return torch.where(self.trimmed(preset, target), self.aim_index(preset), 0.0)

    @staticmethod
    def aim_index(preset: DevicePreset) -> float:
        """The SET ramp index whose compliance is the aim's (trimmed levels start there)."""
        v = preset.values
        return max(0.0, (1.0 - v["iset_start"]) / v["iset_step"])

    def start(self, preset: DevicePreset, st: ControllerState, r: torch.Tensor) -> None:
        # trimmed levels: content anywhere in (hi, hi_coarse] after the SET; above, overshot
        trim = st.trimmed & (r > st.hi) & (r <= st.hi_coarse)
        st.action = torch.where(trim, RESET, torch.where(r > st.hi, FULL_RESET, SET))
        st.action = st.action.to(torch.int8)
        st.volts = torch.where(trim, trim_start(preset, st, r), st.volts)

    def transition(
        self,
        preset: DevicePreset,
        st: ControllerState,
        r: torch.Tensor,
        ok: torch.Tensor,
        above: torch.Tensor,
    ) -> torch.Tensor:
        v = preset.values
        was_set, was_reset = st.action == SET, st.action == RESET
        # the ramp (ramp_transition); trimmed levels restart a SET at the aim index, their
        # k_mem from ramp_start, never changed
        next_action = ramp_transition(st, above, was_set, fixed_memory=st.trimmed)
        coarse = (r <= st.hi_coarse) & above & st.trimmed  # trimmed, in the coarse band
        # trimmed levels: after a SET into the coarse band a trim begins one step below the
        # learned onset; a trim goes on one step up; a trim that undershot sets again at the
        # aim; above the coarse band, or no progress at the top amplitude: full reset
        volts = st.volts.add(was_reset, alpha=v["reset_step"])  # SET-verified: + 0 (no trims)
        sel = st.positions(was_set & coarse)
        if sel.numel():
            volts.scatter_(0, sel, trim_start(preset, st, r, sel))
        stalled = (volts >= v["reset_v_max"]) & was_reset
        st.volts = volts
        # as the ramp (FULL_RESET above the band: pick), but RESET in the coarse band unless
        # stalled (a full reset then)
        st.action = next_action.add_(coarse > stalled, alpha=RESET - FULL_RESET)
        return ok & (st.untrimmed | was_reset)  # a trimmed level ends with a RESET


def pick(mask: torch.Tensor, if_true: int, if_false: int) -> torch.Tensor:
    """The action (int8) ``if_true`` where ``mask``, else ``if_false`` (``torch.where`` by
    integer arithmetic, cheaper on CPU)."""
    return mask.to(torch.int8).mul_(if_true - if_false).add_(if_false)


def trim_start(
    preset: DevicePreset, st: ControllerState, r: torch.Tensor, sel: torch.Tensor | None = None
) -> torch.Tensor:
    """First amplitude (V) of a RESET-verify trim: one ``reset_step`` below the amplitude at
    which the cell's estimated RESET curve (nominal, shifted by ``st.onset``) reaches the lower
    of the read ``r`` (S) and ``st.reset_aim`` (``(1 + ireset_margin)`` times the target);
    ``sel``: for the cells at these positions only."""
    aim, onset = st.reset_aim, st.onset
    if sel is not None:
        r, aim, onset = r.index_select(0, sel), aim.index_select(0, sel), onset.index_select(0, sel)
    level = physics.reset_amplitude(preset, torch.minimum(r, aim))
    return level + onset - preset.values["reset_step"]


_REGISTRY: dict[str, WriteStrategy] = {
    s.name: s for s in (SingleSet(), IterativeSet(), IterativeReset(), Hybrid())
}

STRATEGIES: tuple[str, ...] = tuple(_REGISTRY)
"""The write strategy names, in order of refinement."""


def check_strategy(strategy: str) -> str:
    """Return ``strategy`` if it is one of ``STRATEGIES``, else raise ``MemlearnError``."""
    if strategy not in _REGISTRY:
        raise MemlearnError(f"unknown strategy {strategy!r}; allowed {list(STRATEGIES)}")
    return strategy


def get_strategy(strategy: str) -> WriteStrategy:
    """The registered write strategy named ``strategy`` (checked)."""
    return _REGISTRY[check_strategy(strategy)]
