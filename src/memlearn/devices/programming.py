"""Programming cells to target conductances with a write strategy, pulse by pulse.

``program(preset, g_target, strategy, generator=...)`` simulates the controller of a 1T1R
array: each pulse (SET at a compliance set by the gate voltage, or RESET at an amplitude) is
followed by a verify read with read noise; a cell stops when its read falls in the band
``target ± tolerance`` or after ``max_pulses`` pulses.  Loops run over pulses; each iteration
is vectorised over the cells still being programmed (they are compacted as others finish).

Strategies (``STRATEGIES``):

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

  - every state ends with a RESET, which counters the instability of SET-terminated,
    low-compliance filaments (Fantini et al., IEDM 2015; RESET-and-verify against
    low-conductance drift: Baroni et al., IIRW 2021), so it drifts like iterative RESET and
    less than iterative SET (``retention``);
  - RESET trimming moves the conductance in fine, gradual steps where SET is abrupt, so the
    band is hit without the overshoot / full-RESET restarts of iterative SET;
  - the SET lands near the target first, so the RESET walk is short: unlike iterative RESET
    no strong SET (gate fully on) precedes every level and no long RESET descent, whose
    spread grows with the jump, is needed for low levels (fewer pulses and less energy:
    ``memlearn device characterize --strategy S --levels 8`` gives about 8 pulses and
    90 pJ per cell for hybrid, 9 pulses and 117 pJ for iterative RESET);
  - the RESET trim reaches below the lowest conductance a SET controls (``icc_min /
    set_k_volts``), so the window extends lower than with SET-only strategies.

After programming the cells relax for ``settle_s`` seconds (the delay before first use).
Failed cells (never verified; for ``single-set`` those outside the band) are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memlearn.devices import physics
from memlearn.devices.cells import STUCK_HIGH, STUCK_NONE, CellState, apply_wear, sample_cells
from memlearn.devices.preset import DevicePreset, load_preset
from memlearn.devices.retention import relax
from memlearn.errors import MemlearnError

STRATEGIES = ("single-set", "iterative-set", "iterative-reset", "hybrid")

# next action codes of the per-cell controller state machine
_FULL_RESET, _SET, _STRONG_SET, _RESET = 0, 1, 2, 3


@dataclass
class ProgramResult:
    """Outcome of programming, one entry per cell (same shape as the targets).

    ``conductance`` (S, after ``settle_s`` of relaxation), ``set_pulses``, ``reset_pulses``,
    ``verify_reads`` (int32), ``energy_j`` (J, pulses plus verify reads), ``verify_energy_j``
    (J, the verify reads' share), ``failed`` (bool: the
    cell never verified in its band), ``cells`` (the updated ``CellState``).
    """

    conductance: torch.Tensor
    set_pulses: torch.Tensor
    reset_pulses: torch.Tensor
    verify_reads: torch.Tensor
    energy_j: torch.Tensor
    verify_energy_j: torch.Tensor
    failed: torch.Tensor
    cells: CellState

    @property
    def pulses(self) -> torch.Tensor:
        return self.set_pulses + self.reset_pulses


def check_strategy(strategy: str) -> str:
    """Return ``strategy`` if it is one of ``STRATEGIES``, else raise ``MemlearnError``."""
    if strategy not in STRATEGIES:
        raise MemlearnError(f"unknown strategy {strategy!r}; allowed {list(STRATEGIES)}")
    return strategy


def program(
    preset: DevicePreset | str,
    g_target: torch.Tensor,
    strategy: str = "hybrid",
    *,
    generator: torch.Generator | None = None,
    cells: CellState | None = None,
    tolerance: float | None = None,
    max_pulses: int | None = None,
    settle_s: float | None = None,
) -> ProgramResult:
    """Program cells to ``g_target`` (S, any shape) with ``strategy``.

    ``cells``: the cells to write (modified in place); when ``None`` fresh cells are sampled
    (device-to-device spread, stuck cells) from ``generator``.  ``tolerance`` (S) is the verify
    band half width, ``max_pulses`` the pulse limit per cell, ``settle_s`` the relaxation time
    applied afterwards; each defaults to the preset's value.
    """
    preset = load_preset(preset)
    check_strategy(strategy)
    v = preset.values
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    if not isinstance(g_target, torch.Tensor):
        g_target = torch.as_tensor(g_target, dtype=torch.float32)
    g_target = g_target.detach().float()
    if not torch.isfinite(g_target).all() or (g_target <= 0).any():
        raise MemlearnError("g_target must be finite and > 0 siemens")
    tol = v["verify_tolerance"] if tolerance is None else float(tolerance)
    if not tol > 0:
        raise MemlearnError(f"tolerance must be > 0 siemens, got {tol}")
    limit = int(v["max_pulses"] if max_pulses is None else max_pulses)
    if limit < 1:
        raise MemlearnError(f"max_pulses must be >= 1, got {limit}")
    settle = v["settle_s"] if settle_s is None else float(settle_s)
    if cells is None:
        cells = sample_cells(preset, g_target.shape, generator)
    elif cells.shape != g_target.shape:
        raise MemlearnError(
            f"cells have shape {list(cells.shape)} but g_target {list(g_target.shape)}"
        )
    n = g_target.numel()
    out_set = torch.zeros(n, dtype=torch.int32)
    out_reset = torch.zeros(n, dtype=torch.int32)
    out_verify = torch.zeros(n, dtype=torch.int32)
    out_energy = torch.zeros(n, dtype=torch.float32)
    out_venergy = torch.zeros(n, dtype=torch.float32)
    out_failed = torch.zeros(n, dtype=torch.bool)
    flat = cells.flat()
    target = g_target.reshape(-1)
    if preset.kind == "feram":
        _program_feram(preset, flat, target, generator, out_set, out_reset, out_energy, out_failed)
    elif strategy == "single-set":
        _single_set(preset, flat, target, tol, generator, out_set, out_reset, out_energy)
        out_failed |= (flat.g - target).abs() > tol
    else:
        _verify_loop(
            preset, strategy, flat, target, tol, limit, generator,
            out_set, out_reset, out_verify, out_energy, out_venergy, out_failed,
        )  # fmt: skip
    written = (out_set + out_reset) > 0
    flat.pulses += (out_set + out_reset).float()
    apply_wear(preset, flat)
    if written.any():
        idx = written.nonzero().squeeze(1)
        part = flat.take(idx)
        part.age_s.zero_()
        relax(preset, part, settle, generator)
        flat.put(idx, part)
    shape = g_target.shape
    return ProgramResult(
        conductance=cells.g.clone(),
        set_pulses=out_set.view(shape),
        reset_pulses=out_reset.view(shape),
        verify_reads=out_verify.view(shape),
        energy_j=out_energy.view(shape),
        verify_energy_j=out_venergy.view(shape),
        failed=out_failed.view(shape),
        cells=cells,
    )


def _program_feram(
    preset: DevicePreset,
    flat: CellState,
    target: torch.Tensor,
    generator: torch.Generator,
    out_set: torch.Tensor,
    out_reset: torch.Tensor,
    out_energy: torch.Tensor,
    out_failed: torch.Tensor,
) -> None:
    """Binary 1T-1C ferroelectric write: one switching pulse per bit whose state changes."""
    v = preset.values
    mid = 0.5 * (v["g_min"] + v["g_max"])
    want_high = target >= mid
    is_high = flat.g >= mid
    change = (want_high != is_high) & (flat.stuck == STUCK_NONE)
    switched = change & (torch.rand(target.shape, generator=generator) >= v["bit_fail_rate"])
    new = torch.where(want_high, torch.tensor(v["g_max"]), torch.tensor(v["g_min"]))
    flat.g.copy_(torch.where(switched, new, flat.g))
    out_set += (change & want_high).int()
    out_reset += (change & ~want_high).int()
    out_energy += change.float() * v["write_energy_j"]
    out_failed |= (flat.g >= mid) != want_high
    flat.reset_final.copy_(torch.where(change, ~want_high, flat.reset_final))


def _single_set(
    preset: DevicePreset,
    flat: CellState,
    target: torch.Tensor,
    tol: float,
    generator: torch.Generator,
    out_set: torch.Tensor,
    out_reset: torch.Tensor,
    out_energy: torch.Tensor,
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
    g_s, e_s = physics.set_pulse(
        preset, g, physics.nominal_compliance(preset, target), flat.set_gain, generator
    )
    flat.g.copy_(torch.where(healthy, g_s, flat.g))
    flat.reset_final.zero_()
    out_reset += need_reset.int()
    out_set += 1
    out_energy += e_s + torch.where(need_reset, e_r, torch.zeros_like(e_r))


def _verify_loop(
    preset: DevicePreset,
    strategy: str,
    flat: CellState,
    target_all: torch.Tensor,
    tol: float,
    limit: int,
    generator: torch.Generator,
    out_set: torch.Tensor,
    out_reset: torch.Tensor,
    out_verify: torch.Tensor,
    out_energy: torch.Tensor,
    out_venergy: torch.Tensor,
    out_failed: torch.Tensor,
) -> None:
    """The program-and-verify controller, one iteration per pulse over the unfinished cells.

    Per-cell controller state lives in 1-D tensors that are compacted (one ``nonzero`` and an
    ``index_select`` per tensor) as cells finish; SET and RESET pulses are computed only on the
    cells that receive them.
    """
    v = preset.values
    v_max, rstep = v["reset_v_max"], v["reset_step"]
    set_lo, step = v["iset_start"], v["iset_step"]
    margin = v["hybrid_margin"] if strategy == "hybrid" else 0.0
    k_aim = max(0.0, (1.0 - set_lo) / step)  # ramp index whose compliance is the aim's

    idx = torch.arange(target_all.numel())
    g_worn = v["g_stuck_high"]
    g = flat.g.clone()
    tgt = target_all.clone()
    gain, shift = flat.set_gain.clone(), flat.reset_shift.clone()
    healthy = flat.stuck == STUCK_NONE
    life = flat.endurance - flat.pulses  # pulses each cell survives before it wears out
    worn = torch.zeros_like(healthy)  # cells worn out during this operation
    reset_final = flat.reset_final.clone()
    r = physics.read(preset, g, generator)  # initial verify read
    venergy = physics.read_energy(preset, g)
    energy = venergy.clone()
    counts = torch.zeros(4, idx.numel(), dtype=torch.int32)  # set, reset, verify, pulses
    counts[2] = 1
    lo, hi = tgt - tol, tgt + tol
    # hybrid: the SET phase is content anywhere in (hi, hi_coarse]; above, it overshot
    hi_coarse = hi + 2.0 * margin * tgt + 2.0 * tol
    nominal_aim = physics.nominal_compliance(preset, tgt * (1.0 + margin))
    k = torch.full_like(g, k_aim if strategy == "hybrid" else 0.0)  # SET ramp index
    volts = torch.zeros_like(g)  # next RESET amplitude
    action = torch.full(g.shape, _SET, dtype=torch.int8)
    if strategy == "iterative-reset":
        action[r < hi] = _STRONG_SET
        above0 = r >= hi
        action[above0] = _RESET
        volts = torch.where(above0, _trim_start(preset, r, tgt), volts)
    else:
        action[r > hi] = _FULL_RESET
        if strategy == "hybrid":
            trim = (r > hi) & (r <= hi_coarse)
            action[trim] = _RESET
            volts = torch.where(trim, _trim_start(preset, r, tgt), volts)
    done = (r >= lo) & (r <= hi)
    fields = [g, tgt, lo, hi, hi_coarse, gain, shift, k, volts, energy, venergy, nominal_aim, life]

    def retire(sel: torch.Tensor, where: torch.Tensor, failed: bool) -> None:
        flat.g[where] = g.index_select(0, sel)
        flat.reset_final[where] = reset_final.index_select(0, sel)
        flat.stuck[where[worn.index_select(0, sel)]] = STUCK_HIGH
        c = counts.index_select(1, sel)
        out_set[where], out_reset[where], out_verify[where] = c[0], c[1], c[2]
        out_energy[where] = energy.index_select(0, sel)
        out_venergy[where] = venergy.index_select(0, sel)
        if failed:
            out_failed[where] = True

    finished = done
    failed_now = torch.zeros_like(done)
    for _ in range(limit + 1):
        if bool(finished.any()):
            ok_sel = (finished & ~failed_now).nonzero().squeeze(1)
            bad_sel = failed_now.nonzero().squeeze(1)
            if ok_sel.numel():
                retire(ok_sel, idx.index_select(0, ok_sel), failed=False)
            if bad_sel.numel():
                retire(bad_sel, idx.index_select(0, bad_sel), failed=True)
            keep = (~finished).nonzero().squeeze(1)
            if keep.numel() == 0:
                return
            fields = [t.index_select(0, keep) for t in fields]
            g, tgt, lo, hi, hi_coarse, gain, shift, k, volts, energy, venergy, nominal_aim = fields[
                :12
            ]
            life = fields[12]
            idx, healthy, worn, reset_final, action = (
                t.index_select(0, keep) for t in (idx, healthy, worn, reset_final, action)
            )
            counts = counts.index_select(1, keep)
        # one pulse per cell: SETs and RESETs computed on their own cells only
        is_set = (action == _SET) | (action == _STRONG_SET)
        set_sel = is_set.nonzero().squeeze(1)
        reset_sel = (~is_set).nonzero().squeeze(1)
        g_new = g.clone()
        if set_sel.numel():
            strong = action.index_select(0, set_sel) == _STRONG_SET
            ramp = nominal_aim.index_select(0, set_sel) * (
                set_lo + step * k.index_select(0, set_sel)
            )
            icc = torch.where(strong, v["icc_max"], ramp)
            gs, es = physics.set_pulse(
                preset, g.index_select(0, set_sel), icc, gain.index_select(0, set_sel), generator
            )
            g_new.index_copy_(0, set_sel, gs)
            energy.index_add_(0, set_sel, es.expand_as(gs))
        if reset_sel.numel():
            full = action.index_select(0, reset_sel) == _FULL_RESET
            amp = torch.where(full, v_max, volts.index_select(0, reset_sel).clamp(max=v_max))
            gr, er = physics.reset_pulse(
                preset, g.index_select(0, reset_sel), amp, shift.index_select(0, reset_sel),
                generator,
            )  # fmt: skip
            g_new.index_copy_(0, reset_sel, gr)
            energy.index_add_(0, reset_sel, er)
        g = torch.where(healthy, g_new, g)
        # endurance: the pulse that uses up a cell's life leaves its filament stuck (LRS)
        life -= 1.0
        worn_now = healthy & (life <= 0)
        if bool(worn_now.any()):
            g = torch.where(worn_now, g_worn, g)
            healthy = healthy & ~worn_now
            worn = worn | worn_now
        fields[0] = g
        e_read = physics.read_energy(preset, g)
        energy += e_read
        venergy += e_read
        counts[0] += is_set.int()
        counts[1] += (~is_set).int()
        counts[2] += 1
        counts[3] += 1
        reset_final = ~is_set
        r = physics.read(preset, g, generator)
        ok = (r >= lo) & (r <= hi)
        above = r > hi
        if strategy == "iterative-set":
            k += action == _SET
            k.masked_fill_(action != _SET, 0.0)
            action = torch.where(above, _FULL_RESET, _SET).to(torch.int8)
        elif strategy == "iterative-reset":
            was_reset = action == _RESET
            restart = ~was_reset
            volts += rstep * was_reset
            if bool(restart.any()):
                rs = restart.nonzero().squeeze(1)
                volts.index_copy_(
                    0, rs, _trim_start(preset, r.index_select(0, rs), tgt.index_select(0, rs))
                )
            action = torch.where(r < lo, _STRONG_SET, _RESET).to(torch.int8)
        else:  # hybrid: every state ends with a RESET trim
            ok &= action == _RESET
            was_set = action == _SET
            # after a SET the ramp goes on; after a trim that undershot, SET again at the aim
            k = torch.where(was_set, k + 1, k_aim)
            trim_start = was_set & above & (r <= hi_coarse)
            volts += rstep * (action == _RESET)
            if bool(trim_start.any()):
                ts = trim_start.nonzero().squeeze(1)
                volts.index_copy_(
                    0, ts, _trim_start(preset, r.index_select(0, ts), tgt.index_select(0, ts))
                )
            new_action = torch.full_like(action, _SET)
            new_action[above & (r > hi_coarse)] = _FULL_RESET
            new_action[above & (r <= hi_coarse)] = _RESET
            # a trim that made no progress at the top amplitude falls back to a full reset
            new_action[(action == _RESET) & above & (volts >= v_max)] = _FULL_RESET
            action = new_action
        fields[7], fields[8] = k, volts
        failed_now = ~ok & (counts[3] >= limit)
        finished = ok | failed_now


def _trim_start(preset: DevicePreset, g_read: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """First RESET-verify amplitude (V): the one whose nominal RESET level is the lower of the
    read conductance and ``(1 + ireset_margin)`` times the target."""
    aim = tgt * (1.0 + preset.values["ireset_margin"])
    return physics.reset_amplitude(preset, torch.minimum(g_read, aim))
