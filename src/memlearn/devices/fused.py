"""The fused program-and-verify kernel: every cell's whole pulse sequence in compiled code.

``program_cells`` (numba, ``parallel=True``) runs the controller of ``controller.verify_loop``
cell by cell to completion: the initial verify read, then per pulse the action's pulse (SET on
the compliance ramp or strong, full RESET or trim), charges, endurance wear, the verify read,
the onset estimate (``controller.observe``), the strategy's transition
(``strategies.IterativeSet`` / ``IterativeReset`` / ``Hybrid``) and the abandon watch
(``controller.watch``), then writes the cell back as ``controller.retire`` does.  The cells
run in parallel (``prange``); there is no per-pulse Python.  It computes in float64 and stores
float32; ``engines.fused_write`` packs the preset and the cells into its arguments.

Random numbers come from ``fused_random``: each cell its own counter-based stream (SplitMix64
from the call's seed and the cell's position), standard normals by a ziggurat; per pulse one
normal for the pulse's noise and one for its verify read.  A cell's draws depend only on the
seed and its position, never on the thread count or on other cells, so results are
bit-identical whatever the threads; they differ draw by draw from the torch engine's
``torch.randn``.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange
from numba.cpython.unsafe.tuple import tuple_setitem

from memlearn.devices.fused_random import normal, stream

# strategies (``kind``)
ITERATIVE_SET, ITERATIVE_RESET, HYBRID = 1, 2, 3
# actions (as controller_state's)
FULL_RESET, RESET, SET, STRONG_SET = 0, 1, 2, 3
STUCK_HIGH = 2

# the parameter vector ``p`` (float64), filled by ``engines.pack_parameters``
PARAMETERS = (
    "set_k_volts", "g_ref", "set_c2c", "icc_min", "icc_max", "gate_k", "gate_vth", "gate_step",
    "v_set", "set_pulse_s", "reset_g_ref", "reset_v_ref", "reset_v_slope", "reset_v_max",
    "reset_pulse_s", "reset_c2c", "reset_c2c_jump", "reset_cell_fraction", "v_read",
    "read_pulse_s", "read_overhead_j", "read_flicker", "read_additive", "iset_start",
    "iset_step", "reset_step", "ireset_margin", "margin", "hybrid_split", "aim_index",
    "g_stuck_high", "onset_var", "tol", "abandon_band", "ln_reset_g_ref", "two_over_gate_k",
    "inv_gate_step", "inv_set_k_volts", "inv_reset_v_slope",
)  # fmt: skip
(SET_K_VOLTS, G_REF, SET_C2C, ICC_MIN, ICC_MAX, GATE_K, GATE_VTH, GATE_STEP, V_SET, SET_PULSE_S,
 RESET_G_REF, RESET_V_REF, RESET_V_SLOPE, RESET_V_MAX, RESET_PULSE_S, RESET_C2C, RESET_C2C_JUMP,
 RESET_CELL_FRACTION, V_READ, READ_PULSE_S, READ_OVERHEAD_J, READ_FLICKER, READ_ADDITIVE,
 ISET_START, ISET_STEP, RESET_STEP, IRESET_MARGIN, MARGIN, HYBRID_SPLIT, AIM_INDEX, G_STUCK_HIGH,
 ONSET_VAR, TOL, ABANDON_BAND, LN_RESET_G_REF, TWO_OVER_GATE_K, INV_GATE_STEP, INV_SET_K_VOLTS,
 INV_RESET_V_SLOPE) = range(len(PARAMETERS))  # fmt: skip

# a cell's state vector ``s`` (float64; flags 0/1, counts whole numbers)
(G, LO, HI, HI_COARSE, AIM, RESET_AIM, TRIMMED, GAIN, SHIFT, LIFE, HEALTHY, WORN, RESET_FINAL,
 ICC, DEPTH, K, K_MEM, VOLTS, ACTION, ENERGY, VERIFY_ENERGY, SETS, PULSES, R_PREV, ONSET,
 ONSET_VAR_S, R_REF, STILL, N_STATE) = range(29)  # fmt: skip

_CLEAR = (0.0,) * N_STATE
_with = tuple_setitem  # a copy of a state tuple with one field replaced

CHUNK = 64
"""Cells per parallel work item."""

_US = 1e-6
_LN_1E_6, _LN_1E_12 = math.log(1e-6), math.log(1e-12)
_LN_US, _INV_LN10 = math.log(_US), 1.0 / math.log(10.0)


@njit(cache=True, inline="always")
def _read(p: np.ndarray, g: float, z: float) -> float:
    """A verify read (S) of conductance ``g`` (S), ``z`` a standard normal (physics.read)."""
    flicker = 0.0
    if p[READ_FLICKER] != 0.0 and g > _US:  # log10(max(g / 1 uS, 1))
        flicker = p[READ_FLICKER] * ((math.log(g) - _LN_US) * _INV_LN10)
    add = p[READ_ADDITIVE]
    sigma = flicker if add == 0.0 else math.sqrt(flicker * flicker + add * add)
    return g + sigma * z


@njit(cache=True, inline="always")
def _read_energy(p: np.ndarray, g: float) -> float:
    return p[V_READ] * p[V_READ] * g * p[READ_PULSE_S] + p[READ_OVERHEAD_J]


@njit(cache=True, inline="always")
def _reset_amplitude(p: np.ndarray, ln_g: float) -> float:
    """physics.reset_amplitude: the nominal RESET amplitude (V) that leaves ``exp(ln_g)``
    (S)."""
    ln_ratio = min(max(ln_g - p[LN_RESET_G_REF], _LN_1E_6), 0.0)
    return min(p[RESET_V_REF] - p[RESET_V_SLOPE] * ln_ratio, p[RESET_V_MAX])


@njit(cache=True, inline="always")
def _trim_start(s: tuple, p: np.ndarray, r: float) -> float:
    """strategies.trim_start: one step below the estimated onset's amplitude for the read."""
    return _reset_amplitude(p, math.log(min(r, s[RESET_AIM]))) + s[ONSET] - p[RESET_STEP]


@njit(cache=True, inline="always")
def _compliance(p: np.ndarray, dac: np.ndarray, icc: float) -> tuple[float, float]:
    """The compliance (A) the gate DAC realises for ``icc`` (A) and its SET energy (J)."""
    volts = p[GATE_VTH] + math.sqrt(min(max(icc, p[ICC_MIN]), p[ICC_MAX]) * p[TWO_OVER_GATE_K])
    step = p[GATE_STEP]
    if dac.shape[1] > 0:
        code = min(int(np.rint(volts * p[INV_GATE_STEP])), dac.shape[1] - 1)
        return dac[0, code], dac[1, code]
    if step > 0:
        volts = np.rint(volts * p[INV_GATE_STEP]) * step
    over = max(volts - p[GATE_VTH], 0.0)
    real = min(max(0.5 * p[GATE_K] * over * over, p[ICC_MIN]), p[ICC_MAX])
    return real, p[V_SET] * real * p[SET_PULSE_S]


@njit(cache=True, inline="always")
def _start(s: tuple, p: np.ndarray, kind: int, target: float, r: float) -> tuple:
    """The controller state of a cell (``s[G]`` and its properties set) after the initial read
    ``r`` (S): controller.start, ControllerState.derive and the strategy's start."""
    g, tol = s[G], p[TOL]
    hi = target + tol
    s = _with(_with(s, LO, target - tol), HI, hi)
    s = _with(s, HI_COARSE, hi + 2.0 * p[MARGIN] * target + 2.0 * tol)
    trimmed = kind == ITERATIVE_RESET or (kind == HYBRID and target < p[HYBRID_SPLIT])
    above = 1.0 + p[MARGIN] if (kind != HYBRID or trimmed) else 1.0
    s = _with(s, AIM, target * above * p[SET_K_VOLTS])
    s = _with(s, RESET_AIM, target * (1.0 + p[IRESET_MARGIN]))
    s = _with(s, TRIMMED, 1.0 if trimmed else 0.0)
    for field in (WORN, SETS, PULSES, VOLTS, ONSET, STILL):
        s = _with(s, field, 0.0)
    k = p[AIM_INDEX] if (kind == HYBRID and trimmed) else 0.0
    s = _with(_with(s, K, k), K_MEM, k)
    s = _with(_with(_with(s, ONSET_VAR_S, p[ONSET_VAR]), R_PREV, r), R_REF, r)
    e_read = _read_energy(p, g)
    s = _with(_with(s, ENERGY, e_read), VERIFY_ENERGY, e_read)
    if kind == ITERATIVE_SET:
        return _with(s, ACTION, FULL_RESET if r > hi else SET)
    if kind == ITERATIVE_RESET:
        if r >= hi:
            return _with(_with(s, ACTION, RESET), VOLTS, _trim_start(s, p, r))
        return _with(s, ACTION, STRONG_SET)
    if trimmed and r > hi and r <= s[HI_COARSE]:
        return _with(_with(s, ACTION, RESET), VOLTS, _trim_start(s, p, r))
    return _with(s, ACTION, FULL_RESET if r > hi else SET)


@njit(cache=True, inline="always")
def _set_pulse(s: tuple, p: np.ndarray, dac: np.ndarray, z: float) -> tuple[tuple, float]:
    """A SET pulse on the compliance ramp (or strong): the cell and its new conductance (S)."""
    g = s[G]
    icc = s[AIM] * (p[ISET_START] + p[ISET_STEP] * s[K])
    if s[ACTION] == STRONG_SET:
        icc = p[ICC_MAX]
    icc, es = _compliance(p, dac, icc)
    g_set = s[GAIN] * icc * p[INV_SET_K_VOLTS]
    sigma = p[SET_C2C] * math.sqrt(g_set * p[G_REF])
    g_new = max(g, max(g_set + sigma * z, 0.1 * _US))
    if g_new > g:  # a SET that grew the filament records its compliance
        s = _with(_with(s, ICC, icc), DEPTH, 0.0)
    s = _with(_with(s, ENERGY, s[ENERGY] + es), SETS, s[SETS] + 1.0)
    return s, g_new


@njit(cache=True, inline="always")
def _reset_pulse(s: tuple, p: np.ndarray, z: float) -> tuple[tuple, float, float]:
    """A RESET pulse (full or trim): the cell, its new conductance (S) and the trim amplitude
    (V, NaN for a full RESET)."""
    g, trim = s[G], math.nan
    amp = min(s[VOLTS], p[RESET_V_MAX])
    if s[ACTION] == FULL_RESET:
        amp = p[RESET_V_MAX]
    else:
        trim = amp
    ln_g = math.log(g)
    ln_eq = p[LN_RESET_G_REF] - (amp - p[RESET_V_REF] - s[SHIFT]) * p[INV_RESET_V_SLOPE]
    g_new = g
    if ln_g > ln_eq:  # the gap opens to a lognormal level, never above g
        ln_new = ln_eq + (p[RESET_C2C] + p[RESET_C2C_JUMP] * (ln_g - ln_eq)) * z
        if ln_new < ln_g:
            g_new = math.exp(ln_new)
            s = _with(s, DEPTH, s[DEPTH] + (ln_g - max(ln_new, _LN_1E_12)))  # ln(g / g_new)
    s = _with(s, ENERGY, s[ENERGY] + (p[RESET_CELL_FRACTION] * p[RESET_PULSE_S]) * amp * amp * g)
    return s, g_new, trim


@njit(cache=True, inline="always")
def _pulse(s: tuple, p: np.ndarray, dac: np.ndarray, z: float) -> tuple[tuple, float]:
    """One pulse (the cell's action), its charges and wear (pulses.pulse, _set, _reset).
    Returns the cell and the trim amplitude (V), NaN when the pulse was no trim."""
    action, trim = s[ACTION], math.nan
    if action >= SET:
        s, g_new = _set_pulse(s, p, dac, z)
    else:
        s, g_new, trim = _reset_pulse(s, p, z)
    if s[HEALTHY] == 0:  # stuck cells keep their conductance
        g_new = s[G]
    pulses = s[PULSES] + 1.0
    s = _with(s, PULSES, pulses)
    if s[HEALTHY] != 0 and s[LIFE] <= pulses:  # the pulse that uses up its life
        g_new = p[G_STUCK_HIGH]
        s = _with(_with(s, HEALTHY, 0.0), WORN, 1.0)
    e_read = _read_energy(p, g_new)
    s = _with(_with(s, G, g_new), ENERGY, s[ENERGY] + e_read)
    s = _with(s, VERIFY_ENERGY, s[VERIFY_ENERGY] + e_read)
    return _with(s, RESET_FINAL, 1.0 if action < SET else 0.0), trim


@njit(cache=True, inline="always")
def _observe(s: tuple, p: np.ndarray, r: float, amp: float) -> tuple:
    """controller.observe for a cell that received a trim at ``amp`` (V) and read ``r`` (S)."""
    slope, tol = p[RESET_V_SLOPE], p[TOL]
    r_now, r_was = max(r, 1e-9), max(s[R_PREV], 1e-9)
    if not r_was < p[RESET_G_REF]:
        return s
    ln_was = math.log(r_was)
    if r_now < r_was - 0.5 * tol:  # it fell: a Kalman update
        ln_now = math.log(r_now)
        noise = slope * (p[RESET_C2C] + p[RESET_C2C_JUMP] * max(ln_was - ln_now, 0.0))
        spread = slope * 0.5 * tol / r_now
        var = s[ONSET_VAR_S]
        gain = var / max(var + (noise * noise + spread * spread), 1e-30)
        seen = amp - _reset_amplitude(p, ln_now)
        s = _with(s, ONSET, s[ONSET] + gain * (seen - s[ONSET]))
        return _with(s, ONSET_VAR_S, var * (1.0 - gain))
    # no progress: the onset lies above this amplitude, less one step
    bound = amp - _reset_amplitude(p, ln_was) - p[RESET_STEP]
    return _with(s, ONSET, max(s[ONSET], bound))


@njit(cache=True, inline="always")
def _transition(s: tuple, p: np.ndarray, kind: int, r: float) -> tuple[tuple, bool]:
    """The strategy's next action after the read ``r`` (S): the cell and whether it is done."""
    action, above = s[ACTION], r > s[HI]
    ok = r >= s[LO] and not above
    if kind == ITERATIVE_RESET:
        volts = s[VOLTS] + p[RESET_STEP] if action == RESET else _trim_start(s, p, r)
        s = _with(_with(s, VOLTS, volts), ACTION, STRONG_SET if r < s[LO] else RESET)
        return s, ok
    was_set, trimmed = action == SET, s[TRIMMED] != 0
    if was_set and above and not trimmed:  # remember the compliance that overshot
        s = _with(s, K_MEM, max(s[K] - 1.0, 0.0))
    s = _with(
        _with(s, K, s[K] + 1.0 if was_set else s[K_MEM]), ACTION, FULL_RESET if above else SET
    )
    if kind == ITERATIVE_SET:
        return s, ok
    coarse = r <= s[HI_COARSE] and above and trimmed
    if action == RESET:
        s = _with(s, VOLTS, s[VOLTS] + p[RESET_STEP])
    elif was_set and coarse:
        s = _with(s, VOLTS, _trim_start(s, p, r))
    if coarse and not (action == RESET and s[VOLTS] >= p[RESET_V_MAX]):  # not stalled
        s = _with(s, ACTION, RESET)
    return s, ok and (not trimmed or action == RESET)


@njit(cache=True, inline="always")
def _watch(s: tuple, p: np.ndarray, r: float, counted: bool, abandon: int) -> tuple[tuple, bool]:
    """controller.watch: the cell and whether to abandon it after the read ``r`` (S)."""
    if abs(r - s[R_REF]) > p[ABANDON_BAND] * p[TOL]:  # moved: re-take the reference
        s = _with(_with(s, R_REF, r), STILL, 0.0)
    elif counted:
        s = _with(s, STILL, s[STILL] + 1.0)
    return s, s[PULSES] >= abandon and s[STILL] >= abandon


@njit(cache=True, inline="always")
def _cell(i, p, dac, kind, limit, abandon, seed, io, props, tally) -> None:
    """Program cell ``i`` to completion and write it back (controller.retire)."""
    g_io, reset_final, set_icc, reset_depth, stuck = io
    target, gain, shift, life = props
    g = float(g_io[i])
    z, state = normal(stream(seed, i))
    r = _read(p, g, z)
    s = _with(_with(_with(_with(_CLEAR, G, g), RESET_FINAL, reset_final[i]), ICC, set_icc[i]),
              DEPTH, reset_depth[i])  # fmt: skip
    s = _with(_with(_with(s, GAIN, gain[i]), SHIFT, shift[i]), LIFE, life[i])
    s = _with(s, HEALTHY, 1.0 if stuck[i] == 0 else 0.0)
    s = _start(s, p, kind, float(target[i]), r)
    done, failed = s[LO] <= r <= s[HI], False
    while not done:
        if s[PULSES] >= limit:  # the pulse limit: failed
            failed = True
            break
        action = s[ACTION]
        z, state = normal(state)
        s, trim = _pulse(s, p, dac, z)
        z, state = normal(state)
        r = _read(p, s[G], z)
        if not math.isnan(trim):
            s = _observe(s, p, r, trim)
        s, done = _transition(s, p, kind, r)
        s = _with(s, R_PREV, r)
        if abandon > 0:
            s, quit = _watch(s, p, r, action != RESET, abandon)
            if quit and not done:
                failed = True
                break
    g_io[i], reset_final[i] = s[G], s[RESET_FINAL] != 0
    set_icc[i], reset_depth[i] = s[ICC], s[DEPTH]
    if s[WORN] != 0:
        stuck[i] = STUCK_HIGH
    set_pulses, reset_pulses, reads, energy, verify_energy, failed_out = tally
    pulses, sets = int(s[PULSES]), int(s[SETS])
    set_pulses[i], reset_pulses[i], reads[i] = sets, pulses - sets, pulses + 1
    energy[i], verify_energy[i] = s[ENERGY], s[VERIFY_ENERGY]
    if failed:
        failed_out[i] = True


@njit(cache=True)
def _cells(start, end, p, dac, kind, limit, abandon, seed, io, props, tally) -> None:
    """Program cells ``start`` to ``end`` (one parallel work item; the arrays' references
    taken once for them all)."""
    for i in range(start, end):
        _cell(i, p, dac, kind, limit, abandon, seed, io, props, tally)


@njit(cache=True, parallel=True)
def program_cells(p, dac, kind, limit, abandon, seed, io, props, tally) -> None:
    """Program every cell (in place): ``p`` the parameters (``PARAMETERS``, float64), ``dac``
    the compliance (A) and SET energy (J) by gate code (``[2, codes]``, ``[2, 0]``: none),
    ``kind`` the strategy, ``limit`` the pulse limit, ``abandon`` the preset's
    ``abandon_pulses`` (0: never), ``seed`` (int64 >= 0); ``io`` the cells' ``g`` (S),
    ``reset_final``, ``set_icc`` (A), ``reset_depth``, ``stuck`` (read and written), ``props``
    their ``target`` (S), ``set_gain``, ``reset_shift`` (V) and ``life`` (pulses left), ``tally``
    the ``WriteTally`` fields (written)."""
    n = io[0].shape[0]
    for chunk in prange((n + CHUNK - 1) // CHUNK):
        _cells(chunk * CHUNK, min(n, (chunk + 1) * CHUNK), p, dac, kind, limit, abandon, seed,
               io, props, tally)  # fmt: skip
