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

The per-cell controller state (``ControllerState``) lives in 1-D tensors.  Finished cells are
written back at once and compacted away (their positions and an ``index_select`` per tensor)
once they make up a quarter of the tensors, so each pulse costs work mostly on the cells still
being programmed; SET and RESET pulses, verify reads, the onset estimate and the start of a
trim are computed only on the cells that receive them (random numbers are drawn for those
cells only, in their order).  Every unfinished cell has received the same number of pulses
(``pulses``), so a cell's counts are its SET pulses and that number; the verify band, the SET
and RESET aims and which cells are trimmed follow from the target, once (``derive``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from memlearn.devices import physics
from memlearn.devices.cells import STUCK_HIGH, STUCK_NONE, CellState
from memlearn.devices.preset import DevicePreset
from memlearn.devices.technology import WriteTally

if TYPE_CHECKING:
    from memlearn.devices.strategies import VerifiedStrategy

# next action of a cell (ControllerState.action, int8); the SET actions are the ones >= SET
FULL_RESET, RESET, SET, STRONG_SET = 0, 1, 2, 3

Trim = tuple[torch.Tensor | None, torch.Tensor]
"""The cells that received a trim pulse: their positions (``None``: every cell) and
amplitudes (V)."""

CARRIED = (
    "index", "g", "target", "gain", "shift", "life", "healthy", "worn", "reset_final", "icc",
    "depth", "k", "volts", "action", "energy", "verify_energy", "sets", "r_prev", "onset",
    "onset_var", "k_mem", "lo", "hi", "hi_coarse", "aim", "reset_aim", "trimmed", "untrimmed",
)  # fmt: skip
"""The per-cell fields of ``ControllerState`` that compaction carries (the derived ones too:
selecting them is cheaper than deriving them again, and gives the same values)."""
WATCHED = ("r_ref", "still")
"""The per-cell fields compaction carries too when unresponsive cells are abandoned."""

ABANDON_BAND = 2.0
"""[E] A cell has moved when its read leaves ``r_ref ± ABANDON_BAND * tolerance``: twice the
verify band's half width, beyond what read noise alone does to a cell that stays (the
difference of two reads of ``hfo2-mlc``, sigma about 2 uS, exceeds 8 uS with odds ~1e-4)."""


@dataclass
class ControllerState:
    """Controller state of the cells still being programmed (1-D tensors, one entry per cell).

    Carried (``CARRIED``): ``index`` the cell's flat index in the operation; ``g`` true
    conductance (S); ``target`` (S); ``gain``, ``shift`` the cell's device-to-device SET gain
    and RESET onset shift (V), known to the physics only; ``life`` pulses it had left when the
    operation began; ``healthy`` not stuck; ``worn`` worn out during this operation;
    ``reset_final`` its last pulse was a RESET; ``icc`` (A) the compliance of the last SET that
    grew its filament and ``depth`` the RESET depth since (e-folds of G; ``CellState.set_icc``,
    ``reset_depth``); ``action`` the next pulse (``FULL_RESET`` ...
    ``RESET``); ``energy``, ``verify_energy`` (J) spent so far; ``sets`` (int32) SET pulses so
    far.  What the controller learns of the cell, from its reads only: ``r_prev`` (S) the last
    read; ``onset`` (V) its estimated RESET-onset shift and ``onset_var`` (V^2) the variance of
    that estimate; ``k`` the SET ramp index of the next SET and ``k_mem`` the index a ramp
    restarts from (the remembered compliance); ``volts`` (V) the next trim amplitude.
    Derived from the target (``derive``): ``lo``, ``hi`` (S) the verify band; ``hi_coarse``
    (S) the top of the band a SET aimed above the target is content with; ``aim`` (A) the
    nominal compliance of the SET aim (``VerifiedStrategy.set_aim``); ``reset_aim`` (S) the
    conductance a RESET-verify trim aims its first amplitude at (``strategies.trim_start``);
    ``trimmed`` the cell is RESET-verified (``WriteStrategy.reset_terminated``) and
    ``untrimmed`` its negation; ``life_min`` the least ``life`` (a bound: no cell wears out
    before ``pulses`` reaches it); ``pos`` the positions (``arange``); ``sick`` the positions
    of the cells not ``healthy``.
    Shared: ``pulses`` given to every unfinished cell so far; ``n_live`` unfinished cells
    (positions of retired cells stay until a quarter of them are, then ``compact`` drops
    them); ``any_worn`` some cell wore out; ``tol`` (S) the band half width; ``strategy`` the
    write strategy; ``dac`` the compliance (A) and SET energy (J) by gate DAC code
    (``physics.dac_table``).  Abandoning unresponsive cells (``abandon`` pulses, 0: never;
    ``watch``): ``r_ref`` (S) the read the cell has stayed near and ``still`` (int32) the SET
    and full RESET pulses since it last moved.
    """

    index: torch.Tensor
    g: torch.Tensor
    target: torch.Tensor
    gain: torch.Tensor
    shift: torch.Tensor
    life: torch.Tensor
    healthy: torch.Tensor
    worn: torch.Tensor
    reset_final: torch.Tensor
    icc: torch.Tensor
    depth: torch.Tensor
    k: torch.Tensor
    volts: torch.Tensor
    action: torch.Tensor
    energy: torch.Tensor
    verify_energy: torch.Tensor
    sets: torch.Tensor
    r_prev: torch.Tensor
    onset: torch.Tensor
    onset_var: torch.Tensor
    k_mem: torch.Tensor
    tol: float
    strategy: VerifiedStrategy
    pulses: int = 0
    n_live: int = 0
    any_worn: bool = False
    lo: torch.Tensor | None = None
    hi: torch.Tensor | None = None
    hi_coarse: torch.Tensor | None = None
    aim: torch.Tensor | None = None
    reset_aim: torch.Tensor | None = None
    trimmed: torch.Tensor | None = None
    untrimmed: torch.Tensor | None = None
    life_min: float = math.inf
    pos: torch.Tensor | None = None
    sick: torch.Tensor | None = None
    dac: tuple[torch.Tensor, torch.Tensor] | None = None
    abandon: int = 0
    r_ref: torch.Tensor | None = None
    still: torch.Tensor | None = None

    def derive(self, preset: DevicePreset) -> None:
        """(Re)compute the band, the SET and RESET aims, the trimmed cells and ``life_min``
        from ``target`` and ``life``."""
        tgt, tol, margin = self.target, self.tol, self.strategy.margin(preset)
        self.lo, self.hi = tgt - tol, tgt + tol
        self.hi_coarse = self.hi + 2.0 * margin * tgt + 2.0 * tol
        self.aim = self.strategy.set_aim(preset, tgt)
        self.reset_aim = tgt * (1.0 + preset.values["ireset_margin"])
        self.trimmed = self.strategy.reset_terminated(preset, tgt)
        self.untrimmed = ~self.trimmed
        self.life_min = float(self.life.min()) if self.life.numel() else math.inf
        self.pos = torch.arange(self.g.numel())
        self.sick = self.positions(~self.healthy)

    def compact(self, preset: DevicePreset, keep: torch.Tensor) -> None:
        """Keep only the cells at positions ``keep`` (1-D index), in place."""
        for name in CARRIED + (WATCHED if self.abandon else ()):
            setattr(self, name, getattr(self, name).index_select(0, keep))
        self.n_live = keep.numel()
        self.life_min = float(self.life.min())
        self.pos = self.pos[: keep.numel()]
        self.sick = self.positions(~self.healthy)

    def positions(self, mask: torch.Tensor) -> torch.Tensor:
        """The positions (int64, ascending) where the 1-D ``mask`` (at most as long as the
        state) holds: ``mask.nonzero()``'s, selected from ``pos`` (fewer instructions)."""
        pos = self.pos if mask.numel() == self.pos.numel() else self.pos[: mask.numel()]
        return pos.masked_select(mask)


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
    with torch.inference_mode():
        _loop(preset, strategy, flat, target, tol, limit, generator, tally)


def _loop(
    preset: DevicePreset,
    strategy: VerifiedStrategy,
    flat: CellState,
    target: torch.Tensor,
    tol: float,
    limit: int,
    generator: torch.Generator,
    tally: WriteTally,
) -> None:
    """``verify_loop``'s iterations."""
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
            if 4 * left <= 3 * st.g.numel():  # a quarter retired: compact
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
    r_now = _take(r, sel).clamp_min(tiny)
    r_was = _take(st.r_prev, sel).clamp_min(tiny)
    onset, onset_var = _take(st.onset, sel), _take(st.onset_var, sel)
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


def pulse(
    preset: DevicePreset, st: ControllerState, live: torch.Tensor | None, gen: torch.Generator
) -> Trim | None:
    """One pulse per cell at the ``live`` positions (``None``: all) (its ``action``), wear,
    and the verify read's energy (in place); SETs and RESETs are computed on their own cells
    only (on every cell, without selecting, when all of them receive the same kind).  Returns
    the positions of the cells that received a trim (``RESET``; ``None``: every cell) and
    its amplitudes (V), ``None`` when none did."""
    is_set = st.action >= SET
    if live is None:
        is_reset = ~is_set
    else:
        is_set &= live
        is_reset = live > is_set  # live & ~is_set
    set_sel = st.positions(is_set)
    reset_sel = st.positions(is_reset)
    g = st.g
    trim = None
    if live is None and not reset_sel.numel():  # every cell SET
        g_new = _set(preset, st, None, gen)
    elif live is None and not set_sel.numel():  # every cell RESET
        g_new, trim = _reset(preset, st, None, gen)
    else:
        g_new = g.clone() if live is not None else torch.empty_like(g)  # SET + RESET fill it
        if set_sel.numel():
            g_new.scatter_(0, set_sel, _set(preset, st, set_sel, gen))
        if reset_sel.numel():
            g_reset, trim = _reset(preset, st, reset_sel, gen)
            g_new.scatter_(0, reset_sel, g_reset)
    if st.sick.numel():  # stuck cells keep their conductance
        g_new.scatter_(0, st.sick, g.index_select(0, st.sick))
    g = g_new
    # endurance: the pulse that uses up a cell's life leaves its filament stuck (LRS)
    st.pulses += 1
    if st.pulses >= st.life_min:  # some cell may wear out now
        worn_now = st.healthy & (st.life <= st.pulses)
        if live is not None:
            worn_now &= live
        if bool(worn_now.any()):
            g = torch.where(worn_now, preset.values["g_stuck_high"], g)
            st.healthy = st.healthy & ~worn_now
            st.sick = st.positions(~st.healthy)
            st.worn = st.worn | worn_now
            st.any_worn = True
    st.g = g
    e_read = physics.read_energy(preset, g)
    st.energy += e_read
    st.verify_energy += e_read
    st.sets += is_set
    st.reset_final = is_reset
    return trim


def _take(x: torch.Tensor, sel: torch.Tensor | None) -> torch.Tensor:
    """``x`` at positions ``sel`` (a copy), or ``x`` itself for ``None`` (every cell)."""
    return x if sel is None else x.index_select(0, sel)


def _set(
    preset: DevicePreset, st: ControllerState, sel: torch.Tensor | None, gen: torch.Generator
) -> torch.Tensor:
    """The SET pulses of the cells at positions ``sel`` (``None``: every cell): compliance,
    RESET depth and energy into ``st``; returns their new conductances (S)."""
    v = preset.values
    icc = _take(st.aim, sel) * (v["iset_start"] + v["iset_step"] * _take(st.k, sel))
    if st.strategy.strong_sets:
        icc = torch.where(_take(st.action, sel) == STRONG_SET, v["icc_max"], icc)
    if st.dac is None:  # as the gate realises it
        icc = physics.compliance(preset, physics.gate_voltage(preset, icc))
        es = physics.set_energy(preset, icc)
    else:  # the same values, looked up by DAC code
        code = physics.gate_code(preset, icc).long()
        icc, es = st.dac[0].index_select(0, code), st.dac[1].index_select(0, code)
    g = _take(st.g, sel)
    gs = physics.set_conductance(preset, g, icc, _take(st.gain, sel), gen)
    # a SET that grew the filament records its compliance (a weaker one left it as it was)
    grew = gs > g
    if sel is None:
        st.icc = torch.where(grew, icc, st.icc)
        st.depth.masked_fill_(grew, 0.0)
        st.energy += es
    else:
        st.icc.scatter_(0, sel, torch.where(grew, icc, st.icc.index_select(0, sel)))
        st.depth.scatter_(0, sel, st.depth.index_select(0, sel).masked_fill_(grew, 0.0))
        st.energy.scatter_add_(0, sel, es)
    return gs


def _reset(
    preset: DevicePreset, st: ControllerState, sel: torch.Tensor | None, gen: torch.Generator
) -> tuple[torch.Tensor, Trim | None]:
    """The RESET pulses (full or trim) of the cells at positions ``sel`` (``None``: every
    cell): RESET depth and energy into ``st``.  Returns their new conductances (S) and the
    trimmed cells' positions (``None``: every cell) and amplitudes (V), ``None`` when every
    RESET was full."""
    v_max = preset.values["reset_v_max"]
    full = _take(st.action, sel) == FULL_RESET
    amp = _take(st.volts, sel).clamp(max=v_max)
    pulse_amp = amp.masked_fill_(full, v_max)  # the trims' amplitudes stay: returned below
    g = _take(st.g, sel)
    gr, er = physics.reset_pulse(preset, g, pulse_amp, _take(st.shift, sel), gen)
    # a RESET never raises G (gr <= g), so the depth it adds is >= 0
    deeper = torch.log(g / gr.clamp_min(1e-12))
    if sel is None:
        st.depth += deeper
        st.energy += er
    else:
        st.depth.scatter_add_(0, sel, deeper)
        st.energy.scatter_add_(0, sel, er)
    at = st.positions(~full)
    if not at.numel():
        return gr, None
    if at.numel() == full.numel():  # every RESET a trim
        return gr, (sel, amp)
    return gr, (at if sel is None else sel.index_select(0, at), amp.index_select(0, at))
