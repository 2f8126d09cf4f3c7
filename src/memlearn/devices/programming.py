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
  coarse band), then RESET-verify in small amplitude steps to trim down into the band.  The
  states end with a RESET, which counters the low-conductance instability of SET-terminated
  filaments (Baroni et al., IIRW 2021) and drifts less; RESET trimming moves the conductance in
  finer steps than abrupt SET, so the band is hit with fewer overshoots (reference work,
  VLSI 2025: hybrid gives the narrowest states, widest window and least drift).

After programming the cells relax for ``settle_s`` seconds (the delay before first use).
Failed cells (never verified; for ``single-set`` those outside the band) are reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memlearn.devices import physics
from memlearn.devices.cells import STUCK_NONE, CellState, apply_wear, sample_cells
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
    g_target = g_target.float()
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


def _program_feram(preset, flat, target, generator, out_set, out_reset, out_energy, out_failed):
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


def _single_set(preset, flat, target, tol, generator, out_set, out_reset, out_energy):
    v = preset.values
    healthy = flat.stuck == STUCK_NONE
    g = flat.g
    # a SET cannot lower G: cells above the band are fully RESET first
    need_reset = g > target - tol
    g_r, e_r = physics.reset_pulse(preset, g, v["reset_v_max"], flat.reset_shift, generator)
    g = torch.where(need_reset & healthy, g_r, g)
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
    v = preset.values
    idx = torch.arange(target_all.numel())
    g = flat.g.clone()
    tgt = target_all
    gain, shift = flat.set_gain, flat.reset_shift
    healthy = flat.stuck == STUCK_NONE
    reset_final = flat.reset_final.clone()
    # initial verify read
    r = physics.read(preset, g, generator)
    n_verify = torch.ones_like(idx, dtype=torch.int32)
    venergy = physics.read_energy(preset, g)
    energy = venergy.clone()
    lo, hi = tgt - tol, tgt + tol
    margin = v["hybrid_margin"] if strategy == "hybrid" else 0.0
    aim = tgt * (1.0 + margin)  # SET aim
    # hybrid: the SET phase is content anywhere in (hi, hi_coarse]; above, it overshot
    hi_coarse = hi + 2.0 * margin * tgt + 2.0 * tol
    n_set = torch.zeros_like(n_verify)
    n_reset = torch.zeros_like(n_verify)
    k = torch.zeros_like(g)  # SET ramp step index
    volts = torch.zeros_like(g)  # next RESET amplitude
    action = torch.full_like(n_verify, _SET, dtype=torch.int8)
    if strategy == "iterative-reset":
        action[r < hi] = _STRONG_SET
        volts = _trim_start(preset, r, tgt)
        action[r >= hi] = _RESET
    else:
        action[r > hi] = _FULL_RESET
        if strategy == "hybrid":
            trim = (r > hi) & (r <= hi_coarse)
            action[trim] = _RESET
            volts = torch.where(trim, _trim_start(preset, r, tgt), volts)
    done = (r >= lo) & (r <= hi)
    set_lo = v["iset_start"]
    step = v["iset_step"]
    v_max = v["reset_v_max"]
    rstep = v["reset_step"]
    nominal_aim = physics.nominal_compliance(preset, aim)
    k_aim = max(0.0, (1.0 - set_lo) / step)  # ramp index whose compliance is the aim's
    if strategy == "hybrid":  # hybrid's SET goes straight to the neighbourhood of the aim
        k.fill_(k_aim)
    pulses = torch.zeros_like(n_verify)

    def retire(mask: torch.Tensor, failed: bool) -> None:
        if not mask.any():
            return
        where = idx[mask]
        flat.g[where] = g[mask]
        flat.reset_final[where] = reset_final[mask]
        out_set[where] = n_set[mask]
        out_reset[where] = n_reset[mask]
        out_verify[where] = n_verify[mask]
        out_energy[where] = energy[mask]
        out_venergy[where] = venergy[mask]
        if failed:
            out_failed[where] = True

    retire(done, failed=False)
    keep = ~done
    for _ in range(limit):
        if not keep.any():
            break
        if not keep.all():
            idx, g, tgt, lo, hi, hi_coarse = (t[keep] for t in (idx, g, tgt, lo, hi, hi_coarse))
            gain, shift, healthy, reset_final = (
                t[keep] for t in (gain, shift, healthy, reset_final)
            )
            n_set, n_reset, n_verify = (t[keep] for t in (n_set, n_reset, n_verify))
            energy, venergy = energy[keep], venergy[keep]
            k, volts, action, pulses, nominal_aim = (
                t[keep] for t in (k, volts, action, pulses, nominal_aim)
            )
        is_set = (action == _SET) | (action == _STRONG_SET)
        is_reset = ~is_set
        # SET pulse: ramp compliance, or strong SET with the gate fully on
        icc = torch.where(
            action == _STRONG_SET,
            torch.tensor(v["icc_max"]),
            nominal_aim * (set_lo + step * k),
        )
        g_s, e_s = physics.set_pulse(preset, g, icc, gain, generator)
        amp = torch.where(action == _FULL_RESET, torch.tensor(v_max), volts.clamp(max=v_max))
        g_r, e_r = physics.reset_pulse(preset, g, amp, shift, generator)
        g_new = torch.where(is_set, g_s, g_r)
        g = torch.where(healthy, g_new, g)
        e_read = physics.read_energy(preset, g)
        energy += torch.where(is_set, e_s, e_r) + e_read
        venergy += e_read
        n_set += is_set.int()
        n_reset += is_reset.int()
        pulses += 1
        reset_final = is_reset
        r = physics.read(preset, g, generator)
        n_verify += 1
        ok = (r >= lo) & (r <= hi)
        if strategy == "hybrid":  # every hybrid state ends with a RESET trim
            ok &= action == _RESET
        below = r < lo
        above = r > hi
        if strategy == "iterative-set":
            k = torch.where(action == _SET, k + 1, torch.zeros_like(k))
            action = torch.where(above, _FULL_RESET, _SET).to(torch.int8)
        elif strategy == "iterative-reset":
            restart = below
            volts = torch.where(action == _RESET, volts + rstep, _trim_start(preset, r, tgt))
            action = torch.where(restart, _STRONG_SET, _RESET).to(torch.int8)
        else:  # hybrid
            was_set = action == _SET
            # after a SET the ramp goes on; after a trim that undershot, SET again at the aim
            k = torch.where(was_set, k + 1, torch.full_like(k, k_aim))
            trim_start = was_set & above & (r <= hi_coarse)
            volts = torch.where(
                trim_start, _trim_start(preset, r, tgt), volts + rstep * (action == _RESET)
            )
            new_action = torch.full_like(action, _SET)
            new_action[above & (r > hi_coarse)] = _FULL_RESET
            new_action[above & (r <= hi_coarse)] = _RESET
            # a trim that undershot climbs back with the SET ramp from its start
            new_action[~was_set & ~above & ~ok] = _SET
            # a RESET that made no progress at the top amplitude falls back to a full reset
            new_action[(action == _RESET) & above & (volts >= v_max)] = _FULL_RESET
            action = new_action
        exhausted = pulses >= limit
        retire(ok, failed=False)
        retire(~ok & exhausted, failed=True)
        keep = ~ok & ~exhausted
    if keep.any():
        retire(keep, failed=True)


def _trim_start(preset: DevicePreset, g_read: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """First RESET-verify amplitude (V): the one whose nominal RESET level is the lower of the
    read conductance and ``(1 + ireset_margin)`` times the target."""
    aim = tgt * (1.0 + preset.values["ireset_margin"])
    return physics.reset_amplitude(preset, torch.minimum(g_read, aim))
