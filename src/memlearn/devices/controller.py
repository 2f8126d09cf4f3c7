"""The program-and-verify controller of a resistive (1T1R) array, pulse by pulse.

Each iteration gives every unfinished cell one pulse (the action its write strategy chose:
full RESET, SET on the compliance ramp, strong SET, or RESET at the trim amplitude), charges
its energy, applies endurance wear, reads the cell back with read noise and lets the strategy
pick the next action (``strategies.VerifiedStrategy.transition``).  A cell finishes when its
read falls in ``target ± tolerance`` (and the strategy accepts it) or after ``max_pulses``.

The per-cell controller state (``ControllerState``) lives in 1-D tensors that are compacted
(one ``nonzero`` and an ``index_select`` per tensor) as cells finish, so each pulse costs work
only on the cells still being programmed; SET and RESET pulses are computed only on the cells
that receive them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

import torch

from memlearn.devices import physics
from memlearn.devices.cells import STUCK_HIGH, STUCK_NONE, CellState
from memlearn.devices.preset import DevicePreset
from memlearn.devices.technology import WriteTally

if TYPE_CHECKING:
    from memlearn.devices.strategies import VerifiedStrategy

# next action of a cell (ControllerState.action, int8)
FULL_RESET, SET, STRONG_SET, RESET = 0, 1, 2, 3


@dataclass
class ControllerState:
    """Controller state of the cells still being programmed (1-D tensors, one entry per cell).

    ``index``: the cell's flat index in the operation; ``g`` true conductance (S); ``target``,
    ``lo``, ``hi`` (S) the target and its verify band; ``hi_coarse`` (S) the top of the band the
    hybrid SET phase is content with; ``gain``, ``shift`` the cell's device-to-device SET gain
    and RESET onset shift (V); ``life`` pulses left before it wears out; ``healthy`` not stuck;
    ``worn`` worn out during this operation; ``reset_final`` its last pulse was a RESET;
    ``icc`` (A) the compliance of its last SET; ``depth`` the RESET depth since that SET
    (e-folds of G, ``CellState.reset_depth``);
    ``aim`` (A) the nominal compliance of the SET aim; ``k`` the SET ramp index; ``volts`` (V)
    the next trim amplitude; ``action`` the next pulse (``FULL_RESET`` ... ``RESET``);
    ``energy``, ``verify_energy`` (J) spent so far; ``counts`` ``[4, n]`` int32: SET pulses,
    RESET pulses, verify reads, pulses.
    """

    index: torch.Tensor
    g: torch.Tensor
    target: torch.Tensor
    lo: torch.Tensor
    hi: torch.Tensor
    hi_coarse: torch.Tensor
    gain: torch.Tensor
    shift: torch.Tensor
    life: torch.Tensor
    healthy: torch.Tensor
    worn: torch.Tensor
    reset_final: torch.Tensor
    icc: torch.Tensor
    depth: torch.Tensor
    aim: torch.Tensor
    k: torch.Tensor
    volts: torch.Tensor
    action: torch.Tensor
    energy: torch.Tensor
    verify_energy: torch.Tensor
    counts: torch.Tensor

    def compact(self, keep: torch.Tensor) -> None:
        """Keep only the cells at positions ``keep`` (1-D index), in place."""
        for f in fields(self):
            dim = 1 if f.name == "counts" else 0
            setattr(self, f.name, getattr(self, f.name).index_select(dim, keep))


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
    tgt = target.clone()
    r = physics.read(preset, g, generator)
    venergy = physics.read_energy(preset, g)
    counts = torch.zeros(4, g.numel(), dtype=torch.int32)
    counts[2] = 1
    lo, hi = tgt - tol, tgt + tol
    margin = strategy.margin(preset)
    healthy = flat.stuck == STUCK_NONE
    st = ControllerState(
        index=torch.arange(g.numel()),
        g=g,
        target=tgt,
        lo=lo,
        hi=hi,
        hi_coarse=hi + 2.0 * margin * tgt + 2.0 * tol,
        gain=flat.set_gain.clone(),
        shift=flat.reset_shift.clone(),
        life=flat.endurance - flat.pulses,
        healthy=healthy,
        worn=torch.zeros_like(healthy),
        reset_final=flat.reset_final.clone(),
        icc=flat.set_icc.clone(),
        depth=flat.reset_depth.clone(),
        aim=physics.nominal_compliance(preset, tgt * (1.0 + margin)),
        k=torch.full_like(g, strategy.ramp_start(preset)),
        volts=torch.zeros_like(g),
        action=torch.full(g.shape, SET, dtype=torch.int8),
        energy=venergy.clone(),
        verify_energy=venergy,
        counts=counts,
    )
    strategy.start(preset, st, r)
    return st, (r >= lo) & (r <= hi)


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
    one iteration per pulse over the unfinished cells; results go to ``tally``."""
    st, finished = start(preset, strategy, flat, target, tol, generator)
    failed_now = torch.zeros_like(finished)
    for _ in range(limit + 1):
        if bool(finished.any()):
            ok_sel = (finished & ~failed_now).nonzero().squeeze(1)
            bad_sel = failed_now.nonzero().squeeze(1)
            if ok_sel.numel():
                retire(st, ok_sel, flat, tally, failed=False)
            if bad_sel.numel():
                retire(st, bad_sel, flat, tally, failed=True)
            keep = (~finished).nonzero().squeeze(1)
            if keep.numel() == 0:
                return
            st.compact(keep)
        pulse(preset, st, generator)
        r = physics.read(preset, st.g, generator)
        ok = strategy.transition(preset, st, r, (r >= st.lo) & (r <= st.hi))
        failed_now = ~ok & (st.counts[3] >= limit)
        finished = ok | failed_now


def retire(
    st: ControllerState, sel: torch.Tensor, flat: CellState, tally: WriteTally, failed: bool
) -> None:
    """Write the finished cells at positions ``sel`` back to ``flat`` and ``tally``."""
    where = st.index.index_select(0, sel)
    flat.g[where] = st.g.index_select(0, sel)
    flat.reset_final[where] = st.reset_final.index_select(0, sel)
    flat.set_icc[where] = st.icc.index_select(0, sel)
    flat.reset_depth[where] = st.depth.index_select(0, sel)
    flat.stuck[where[st.worn.index_select(0, sel)]] = STUCK_HIGH
    c = st.counts.index_select(1, sel)
    tally.set_pulses[where], tally.reset_pulses[where], tally.verify_reads[where] = c[0], c[1], c[2]
    tally.energy[where] = st.energy.index_select(0, sel)
    tally.verify_energy[where] = st.verify_energy.index_select(0, sel)
    if failed:
        tally.failed[where] = True


def pulse(preset: DevicePreset, st: ControllerState, generator: torch.Generator) -> None:
    """One pulse per cell (its ``action``), wear, and the verify read's energy (in place);
    SETs and RESETs are computed on their own cells only."""
    v = preset.values
    action = st.action
    is_set = (action == SET) | (action == STRONG_SET)
    set_sel = is_set.nonzero().squeeze(1)
    reset_sel = (~is_set).nonzero().squeeze(1)
    g = st.g
    g_new = g.clone()
    if set_sel.numel():
        strong = action.index_select(0, set_sel) == STRONG_SET
        ramp = st.aim.index_select(0, set_sel) * (
            v["iset_start"] + v["iset_step"] * st.k.index_select(0, set_sel)
        )
        icc = torch.where(strong, v["icc_max"], ramp)
        gs, es = physics.set_pulse(
            preset, g.index_select(0, set_sel), icc, st.gain.index_select(0, set_sel), generator
        )
        g_new.index_copy_(0, set_sel, gs)
        # a SET that grew the filament records its compliance (a weaker one left it as it was)
        grew = gs > g.index_select(0, set_sel)
        icc_real = physics.compliance(preset, physics.gate_voltage(preset, icc))
        st.icc.index_copy_(0, set_sel, torch.where(grew, icc_real, st.icc.index_select(0, set_sel)))
        st.depth.index_copy_(0, set_sel, st.depth.index_select(0, set_sel) * ~grew)
        st.energy.index_add_(0, set_sel, es.expand_as(gs))
    if reset_sel.numel():
        v_max = v["reset_v_max"]
        full = action.index_select(0, reset_sel) == FULL_RESET
        amp = torch.where(full, v_max, st.volts.index_select(0, reset_sel).clamp(max=v_max))
        gr, er = physics.reset_pulse(
            preset, g.index_select(0, reset_sel), amp, st.shift.index_select(0, reset_sel),
            generator,
        )  # fmt: skip
        g_new.index_copy_(0, reset_sel, gr)
        g_old = g.index_select(0, reset_sel)
        st.depth.index_add_(0, reset_sel, torch.log(g_old / gr.clamp_min(1e-12)).clamp_min(0))
        st.energy.index_add_(0, reset_sel, er)
    g = torch.where(st.healthy, g_new, g)
    # endurance: the pulse that uses up a cell's life leaves its filament stuck (LRS)
    st.life -= 1.0
    worn_now = st.healthy & (st.life <= 0)
    if bool(worn_now.any()):
        g = torch.where(worn_now, v["g_stuck_high"], g)
        st.healthy = st.healthy & ~worn_now
        st.worn = st.worn | worn_now
    st.g = g
    e_read = physics.read_energy(preset, g)
    st.energy += e_read
    st.verify_energy += e_read
    st.counts[0] += is_set.int()
    st.counts[1] += (~is_set).int()
    st.counts[2] += 1
    st.counts[3] += 1
    st.reset_final = ~is_set
