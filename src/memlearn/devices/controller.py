"""The program-and-verify controller of a resistive (1T1R) array, pulse by pulse.

Each iteration gives every unfinished cell one pulse (the action its write strategy chose:
full RESET, SET on the compliance ramp, strong SET, or RESET at the trim amplitude), charges
its energy, applies endurance wear, reads the cell back with read noise and lets the strategy
pick the next action (``strategies.VerifiedStrategy.transition``).  A cell finishes when its
read falls in ``target ± tolerance`` (and the strategy accepts it) or after ``max_pulses``.

The controller adapts per cell from what its reads showed, never from the hidden device
properties: ``observe`` keeps an estimate of each cell's RESET-onset shift (and its variance),
from which a strategy places the first amplitude of a RESET-verify trim (one step below the
estimated onset, then ramping up; after an undershoot and a new SET, from the estimate rather
than the nominal curve); a SET ramp remembers the compliance that overshot (``k_mem``).

The per-cell controller state (``ControllerState``, in ``controller_state``) lives in 1-D
tensors; the pulses of an iteration are ``pulses.pulse``'s.  Finished cells are
written back at once and compacted away (their positions and an ``index_select`` per tensor)
once they make up half of the tensors, so each pulse costs work mostly on the cells still
being programmed; SET and RESET pulses, verify reads, the onset estimate and the start of a
trim are computed only on the cells that receive them (random numbers are drawn for those
cells only, in their order).  Every unfinished cell has received the same number of pulses
(``pulses``), so a cell's counts are its SET pulses and that number; the verify band, the SET
and RESET aims and which cells are trimmed follow from the target, once (``derive``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from memlearn.devices import physics
from memlearn.devices.cells import STUCK_HIGH, STUCK_NONE, CellState
from memlearn.devices.controller_state import (
    CARRIED,
    FULL_RESET,
    RESET,
    SET,
    STRONG_SET,
    WATCHED,
    ControllerState,
    Trim,
    subset,
)
from memlearn.devices.preset import DevicePreset
from memlearn.devices.pulses import pulse
from memlearn.devices.technology import WriteTally

if TYPE_CHECKING:
    from memlearn.devices.strategies import VerifiedStrategy

__all__ = [
    "CARRIED", "FULL_RESET", "RESET", "SET", "STRONG_SET", "WATCHED", "ControllerState", "Trim",
    "observe", "read_live", "retire", "start", "verify_loop", "watch",
]  # fmt: skip

ABANDON_BAND = 2.0
"""[E] A cell has moved when its read leaves ``r_ref ± ABANDON_BAND * tolerance``: twice the
verify band's half width, beyond what read noise alone does to a cell that stays (the
difference of two reads of ``hfo2-mlc``, sigma about 2 uS, exceeds 8 uS with odds ~1e-4)."""


def start(
    preset: DevicePreset,
    strategy: VerifiedStrategy,
    flat: CellState,
    target: torch.Tensor,
    tol: float,
    generator: torch.Generator,
) -> tuple[ControllerState, torch.Tensor]:
    """The controller state after the initial verify read, and the cells already in band."""
    g = flat.g.clone()
    r = physics.read(preset, g, generator)
    venergy = physics.read_energy(preset, g)
    k = torch.zeros_like(g) + strategy.ramp_start(preset, target)
    st = ControllerState(
        index=torch.arange(g.numel()),
        g=g,
        target=target.clone(),
        gain=flat.set_gain.clone(),
        shift=flat.reset_shift.clone(),
        life=flat.endurance - flat.pulses,
        healthy=flat.stuck == STUCK_NONE,
        worn=torch.zeros(g.shape, dtype=torch.bool),
        reset_final=flat.reset_final.clone(),
        icc=flat.set_icc.clone(),
        depth=flat.reset_depth.clone(),
        k=k,
        volts=torch.zeros_like(g),
        action=torch.full(g.shape, SET, dtype=torch.int8),
        energy=venergy.clone(),
        verify_energy=venergy,
        sets=torch.zeros(g.shape, dtype=torch.int32),
        r_prev=r,
        onset=torch.zeros_like(g),
        onset_var=torch.full_like(g, preset.values["reset_d2d"] ** 2),
        k_mem=k.clone(),
        tol=tol,
        strategy=strategy,
        n_live=g.numel(),
        dac=physics.dac_table(preset),
        abandon=int(preset.values.get("abandon_pulses", 0)),
    )
    if st.abandon:
        st.r_ref, st.still = r.clone(), torch.zeros(g.shape, dtype=torch.int32)
    st.derive(preset)
    strategy.start(preset, st, r)
    return st, (r >= st.lo) & (r <= st.hi)


@torch.inference_mode()
def verify_loop(
    preset: DevicePreset,
    strategy: VerifiedStrategy,
    flat: CellState,
    target: torch.Tensor,
    tol: float,
    limit: int,
    generator: torch.Generator,
    tally: WriteTally,
) -> None:
    """Program the flat ``cells`` (in place) to ``target`` (S) with a verified ``strategy``:
    one iteration per pulse over the unfinished cells; results go to ``tally``.  With the
    preset's ``abandon_pulses`` (> 0), cells that stop responding are abandoned (``watch``).

    Runs in ``torch.inference_mode`` (no autograd bookkeeping per tensor op: the same values);
    only ``flat`` and ``tally``, written in place, outlive it."""
    st, finished = start(preset, strategy, flat, target, tol, generator)
    live = None  # positions still programming; None: all of them
    stop = None  # cells abandoned at the last pulse
    while True:
        done = st.positions(finished)
        gone = done.numel()
        if gone:
            retire(st, done, flat, tally, failed=False)
        if stop is not None:
            dropped = st.positions(stop)
            if dropped.numel():
                retire(st, dropped, flat, tally, failed=True)
                finished |= stop
                gone += dropped.numel()
        if gone:
            live = ~finished if live is None else live.logical_xor_(finished)
            left = st.n_live - gone
            if left == 0:
                return
            st.n_live = left
            if 2 * left <= st.g.numel():  # half retired: compact
                st.compact(preset, st.positions(live))
                live = None
        if st.pulses >= limit:  # the cells left have used all their pulses: failed
            sel = st.pos if live is None else st.positions(live)
            retire(st, sel, flat, tally, failed=True)
            return
        trim = pulse(preset, st, live, generator)
        r = read_live(preset, st, live, generator)
        observe(preset, st, r, trim)
        above = r > st.hi
        counted = st.action != RESET if st.abandon else None  # the pulse was no trim
        finished = strategy.transition(preset, st, r, (r >= st.lo) > above, above)  # a & ~b: a > b
        st.r_prev = r
        if live is not None:
            finished &= live
        if counted is not None:
            stop = watch(st, r, counted, finished, live)


def watch(
    st: ControllerState,
    r: torch.Tensor,
    counted: torch.Tensor,
    finished: torch.Tensor,
    live: torch.Tensor | None,
) -> torch.Tensor | None:
    """The cells to abandon after the read ``r`` (S) (``None``: none yet): those whose read has
    stayed within ``ABANDON_BAND * tol`` of ``st.r_ref`` over ``st.abandon`` pulses
    ``counted`` (SET and full RESET pulses: a trim may rightly leave a cell where it was) and
    that did not finish now.

    A write-verify controller stops pulsing a cell that does not respond and flags it, rather
    than spend the pulse limit on it ([E]: the stuck cells of ``cells.sample_cells`` read the
    same whatever the pulse; a healthy cell's SET ramp catches up within a few steps and a full
    RESET always moves it).  A cell that moves, however slowly, re-takes its reference."""
    moved = (r - st.r_ref).abs_() > ABANDON_BAND * st.tol
    st.r_ref = torch.where(moved, r, st.r_ref)
    st.still = (st.still + counted).masked_fill_(moved, 0)
    if st.pulses < st.abandon:
        return None
    stop = (st.still >= st.abandon) > finished  # a & ~b: a > b
    if live is not None:
        stop &= live
    return stop


def observe(
    preset: DevicePreset,
    st: ControllerState,
    r: torch.Tensor,
    trim: Trim | None,
) -> None:
    """Update the RESET-onset estimate of the cells that received a trim pulse from the read
    ``r`` (S); ``trim``: their positions (``None``: every cell) and amplitudes (V), as
    ``pulse`` returns them.

    A trim at amplitude V that lowered the read to r implies the onset shift
    ``V - reset_amplitude(r)`` (the nominal curve inverted); it enters the estimate as a
    one-dimensional Kalman update, its noise the RESET step's lognormal spread (growing with
    the jump) and half the verify band of read uncertainty, both seen through the curve's
    slope.  A trim that left the cell where it was bounds the shift from below: the onset lies
    above that amplitude (less one step).  Other pulses teach nothing about the onset.
    """
    if trim is None:
        return
    sel, amp = trim
    v = preset.values
    slope, tiny = v["reset_v_slope"], 1e-9
    r_now = subset(r, sel).clamp_min(tiny)
    r_was = subset(st.r_prev, sel).clamp_min(tiny)
    onset, onset_var = subset(st.onset, sel), subset(st.onset_var, sel)
    below_ref = r_was < v["reset_g_ref"]
    fell = below_ref & (r_now < r_was - 0.5 * st.tol)
    jump = torch.log(r_was / r_now).clamp_min(0)
    noise = slope * (v["reset_c2c"] + v["reset_c2c_jump"] * jump)
    noise_var = noise * noise + (slope * 0.5 * st.tol / r_now) ** 2
    gain = onset_var / (onset_var + noise_var).clamp_min(1e-30)
    seen = amp - physics.reset_amplitude(preset, r_now)
    onset = torch.where(fell, onset + gain * (seen - onset), onset)
    onset_var = torch.where(fell, onset_var * (1.0 - gain), onset_var)
    bound = amp - physics.reset_amplitude(preset, r_was) - v["reset_step"]
    onset = torch.where(below_ref > fell, torch.maximum(onset, bound), onset)  # a & ~b: a > b
    if sel is None:
        st.onset, st.onset_var = onset, onset_var
    else:
        st.onset_var.scatter_(0, sel, onset_var)
        st.onset.scatter_(0, sel, onset)


def read_live(
    preset: DevicePreset, st: ControllerState, live: torch.Tensor | None, gen: torch.Generator
) -> torch.Tensor:
    """Verify reads (S) of the cells at the ``live`` positions (``None``: all); the other
    positions keep their conductance."""
    if live is None:
        return physics.read(preset, st.g, gen)
    sel = st.positions(live)
    return st.g.clone().scatter_(0, sel, physics.read(preset, st.g.index_select(0, sel), gen))


def retire(
    st: ControllerState, sel: torch.Tensor, flat: CellState, tally: WriteTally, failed: bool
) -> None:
    """Write the finished cells at positions ``sel`` back to ``flat`` and ``tally``."""
    where = st.index.index_select(0, sel)
    flat.g.scatter_(0, where, st.g.index_select(0, sel))
    flat.reset_final.scatter_(0, where, st.reset_final.index_select(0, sel))
    flat.set_icc.scatter_(0, where, st.icc.index_select(0, sel))
    flat.reset_depth.scatter_(0, where, st.depth.index_select(0, sel))
    if st.any_worn:
        flat.stuck[where[st.worn.index_select(0, sel)]] = STUCK_HIGH
    sets = st.sets.index_select(0, sel)
    tally.set_pulses.scatter_(0, where, sets)
    tally.reset_pulses.scatter_(0, where, st.pulses - sets)
    tally.verify_reads.scatter_(0, where, st.pulses + 1)
    tally.energy.scatter_(0, where, st.energy.index_select(0, sel))
    tally.verify_energy.scatter_(0, where, st.verify_energy.index_select(0, sel))
    if failed:
        tally.failed.scatter_(0, where, True)
