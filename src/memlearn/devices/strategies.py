"""Write strategies of a resistive (1T1R) cell, registered by name (``STRATEGIES``).

- ``single-set``: (full RESET if the cell is above the target) then one SET at the target's
  nominal compliance; no verify.  Fast, wide: device-to-device and cycle-to-cycle spread stay.
- ``iterative-set``: verify; SET pulses with the compliance stepped up from ``iset_start`` of
  nominal by ``iset_step``; a cell that overshoots is fully RESET and the ramp restarts.
- ``iterative-reset``: verify; a strong SET (gate fully on), then RESET pulses of rising
  amplitude (step ``reset_step``) starting where the nominal curve reaches
  ``(1 + ireset_margin) * target``; a cell that undershoots is SET strongly and restarts.
- ``hybrid``: SET-verify to the neighbourhood (aiming ``hybrid_margin`` above the target, a
  coarse band), then RESET-verify in small amplitude steps to trim down into the band.

  Why this combination (the reference work, VLSI 2025, found hybrid best: narrowest states,
  widest window, least drift):

  - every state ends with a RESET trim (RESET-and-verify against low-conductance drift:
    Baroni et al., IIRW 2021); how stable the state is follows from its SET's compliance
    (aimed ``hybrid_margin`` above the target) and the trim's depth (``retention``), so
    whether it drifts less than iterative SET is measured, not assumed;
  - RESET trimming moves the conductance in fine, gradual steps where SET is abrupt, so the
    band is hit without the overshoot / full-RESET restarts of iterative SET;
  - the SET lands near the target first, so the RESET walk is short: unlike iterative RESET
    no strong SET (gate fully on) precedes every level and no long RESET descent, whose
    spread grows with the jump, is needed for low levels (fewer pulses and less energy than
    iterative RESET: ``memlearn device characterize --strategy S --levels 8``);
  - the RESET trim reaches below the lowest conductance a SET controls (``icc_min /
    set_k_volts``), so the window extends lower than with SET-only strategies.

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

    ``ends_with_reset``: every state it leaves ends with a RESET."""

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
        g_s, e_s = physics.set_pulse(preset, g, icc, flat.set_gain, generator)
        flat.g.copy_(torch.where(healthy, g_s, flat.g))
        flat.reset_final.zero_()
        grew = healthy & (g_s > g)  # a SET that grew the filament records its compliance
        icc_real = physics.compliance(preset, physics.gate_voltage(preset, icc))
        flat.set_icc.copy_(torch.where(grew, icc_real, flat.set_icc))
        flat.reset_depth.masked_fill_(grew, 0.0)
        tally.reset_pulses += need_reset.int()
        tally.set_pulses += 1
        tally.energy += e_s + torch.where(need_reset, e_r, torch.zeros_like(e_r))
        tally.failed |= (flat.g - target).abs() > tol


class VerifiedStrategy(WriteStrategy):
    """A program-and-verify strategy: ``start`` and ``transition`` drive the controller."""

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
        """How far above the target (fraction) the SET aims."""
        return 0.0

    def ramp_start(self, preset: DevicePreset) -> float:
        """The SET ramp index of a cell's first SET."""
        return 0.0

    def start(self, preset: DevicePreset, st: ControllerState, r: torch.Tensor) -> None:
        """Set ``st.action`` (and ``st.volts``) from the initial verify read ``r`` (S)."""
        raise NotImplementedError

    def transition(
        self, preset: DevicePreset, st: ControllerState, r: torch.Tensor, ok: torch.Tensor
    ) -> torch.Tensor:
        """After a pulse (``st.action``) read ``r`` (S): update ``st.action``, ``st.k``,
        ``st.volts``; return which cells are done (``ok``: read in band, may be narrowed)."""
        raise NotImplementedError


class IterativeSet(VerifiedStrategy):
    """SET-verify with a rising compliance; a full RESET restarts a cell that overshot."""

    name = "iterative-set"

    def start(self, preset: DevicePreset, st: ControllerState, r: torch.Tensor) -> None:
        st.action[r > st.hi] = FULL_RESET

    def transition(
        self, preset: DevicePreset, st: ControllerState, r: torch.Tensor, ok: torch.Tensor
    ) -> torch.Tensor:
        st.k += st.action == SET
        st.k.masked_fill_(st.action != SET, 0.0)
        st.action = torch.where(r > st.hi, FULL_RESET, SET).to(torch.int8)
        return ok


class IterativeReset(VerifiedStrategy):
    """A strong SET, then RESET-verify with a rising amplitude; an undershoot restarts."""

    name = "iterative-reset"
    ends_with_reset = True

    def start(self, preset: DevicePreset, st: ControllerState, r: torch.Tensor) -> None:
        st.action[r < st.hi] = STRONG_SET
        above = r >= st.hi
        st.action[above] = RESET
        st.volts = torch.where(above, trim_start(preset, r, st.target), st.volts)

    def transition(
        self, preset: DevicePreset, st: ControllerState, r: torch.Tensor, ok: torch.Tensor
    ) -> torch.Tensor:
        was_reset = st.action == RESET
        restart = ~was_reset
        st.volts += preset.values["reset_step"] * was_reset
        if bool(restart.any()):
            rs = restart.nonzero().squeeze(1)
            st.volts.index_copy_(
                0, rs, trim_start(preset, r.index_select(0, rs), st.target.index_select(0, rs))
            )
        st.action = torch.where(r < st.lo, STRONG_SET, RESET).to(torch.int8)
        return ok


class Hybrid(VerifiedStrategy):
    """SET-verify to a coarse band above the target, then RESET-verify trims into the band."""

    name = "hybrid"
    ends_with_reset = True

    def margin(self, preset: DevicePreset) -> float:
        return preset.values["hybrid_margin"]

    def ramp_start(self, preset: DevicePreset) -> float:
        """The ramp index whose compliance is the aim's."""
        v = preset.values
        return max(0.0, (1.0 - v["iset_start"]) / v["iset_step"])

    def start(self, preset: DevicePreset, st: ControllerState, r: torch.Tensor) -> None:
        st.action[r > st.hi] = FULL_RESET
        # the SET phase is content anywhere in (hi, hi_coarse]; above, it overshot
        trim = (r > st.hi) & (r <= st.hi_coarse)
        st.action[trim] = RESET
        st.volts = torch.where(trim, trim_start(preset, r, st.target), st.volts)

    def transition(
        self, preset: DevicePreset, st: ControllerState, r: torch.Tensor, ok: torch.Tensor
    ) -> torch.Tensor:
        action = st.action
        above = r > st.hi
        ok &= action == RESET  # every state ends with a RESET trim
        was_set = action == SET
        # after a SET the ramp goes on; after a trim that undershot, SET again at the aim
        st.k = torch.where(was_set, st.k + 1, self.ramp_start(preset))
        begin_trim = was_set & above & (r <= st.hi_coarse)
        st.volts += preset.values["reset_step"] * (action == RESET)
        if bool(begin_trim.any()):
            ts = begin_trim.nonzero().squeeze(1)
            st.volts.index_copy_(
                0, ts, trim_start(preset, r.index_select(0, ts), st.target.index_select(0, ts))
            )
        new_action = torch.full_like(action, SET)
        new_action[above & (r > st.hi_coarse)] = FULL_RESET
        new_action[above & (r <= st.hi_coarse)] = RESET
        # a trim that made no progress at the top amplitude falls back to a full reset
        new_action[(action == RESET) & above & (st.volts >= preset.values["reset_v_max"])] = (
            FULL_RESET
        )
        st.action = new_action
        return ok


def trim_start(preset: DevicePreset, g_read: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """First RESET-verify amplitude (V): the one whose nominal RESET level is the lower of the
    read conductance and ``(1 + ireset_margin)`` times the target."""
    aim = tgt * (1.0 + preset.values["ireset_margin"])
    return physics.reset_amplitude(preset, torch.minimum(g_read, aim))


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
