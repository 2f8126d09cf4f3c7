"""What-if variants of a preset: a wider or narrower programming spread, another window.

The reference studies ask how accuracy depends on the overlap between adjacent conductance
states and on the memory window.  These functions give a copy of a preset that differs in
exactly that respect, so the spread and the window still come out of the pulse-level
simulation (verify loop, relaxation) rather than being added as noise afterwards.

- ``scale_spread(preset, factor)``: every source of spread left by programming, times
  ``factor`` (see :data:`SPREAD_PARAMETERS`); the drift during retention is unchanged.
- ``with_window(preset, g_min, g_max)``: another conductance window, checked against what the
  cell's SET compliance and full RESET can reach.
"""

from __future__ import annotations

import dataclasses
import math

from memlearn.devices.preset import DevicePreset, load_preset
from memlearn.errors import MemlearnError

# The parameters that set how wide a level is right after program-and-verify: the verify band,
# the controller's step sizes (a tighter band needs finer steps to be hit), the cycle-to-cycle
# and device-to-device spread of a pulse, and the fast relaxation in the first seconds.
SPREAD_PARAMETERS = (
    "verify_tolerance",
    "reset_step",
    "gate_step",
    "set_c2c",
    "set_d2d",
    "reset_c2c",
    "reset_c2c_jump",
    "reset_d2d",
    "relax_fast_set",
    "relax_fast_reset",
)
# Beyond x20 the pulse spreads stop being physical (a lognormal RESET step of sigma > 2).
MIN_SPREAD_FACTOR, MAX_SPREAD_FACTOR = 0.02, 20.0


def scale_spread(preset: DevicePreset | str, factor: float) -> DevicePreset:
    """A copy of a resistive preset whose as-programmed spread is about ``factor`` times its own.

    Each of :data:`SPREAD_PARAMETERS` is multiplied by ``factor`` (in [0.02, 20]); for
    ``factor < 1`` the pulse budget ``max_pulses`` is divided by ``factor``, as a controller
    aiming at a tighter band needs more, finer pulses.  The measured level spread is close to
    proportional to ``factor`` for the verify strategies (``characterize`` measures it).
    The copy is named ``<name>-spread<factor>``; its changed sources say they were overridden.
    """
    p = load_preset(preset)
    if p.kind != "rram":
        raise MemlearnError(f"scale_spread needs a resistive (rram) preset; {p.name!r} is {p.kind}")
    factor = float(factor)
    if not (math.isfinite(factor) and MIN_SPREAD_FACTOR <= factor <= MAX_SPREAD_FACTOR):
        raise MemlearnError(
            f"spread factor must be in [{MIN_SPREAD_FACTOR}, {MAX_SPREAD_FACTOR}], got {factor}"
        )
    changes = {key: p.values[key] * factor for key in SPREAD_PARAMETERS}
    if factor < 1:
        changes["max_pulses"] = float(math.ceil(p.values["max_pulses"] / factor))
    out = p.replace(**changes)
    return dataclasses.replace(out, name=f"{p.name}-spread{factor:.4g}")


def reachable_window(preset: DevicePreset | str) -> tuple[float, float]:
    """``(lowest, highest)`` conductance (S) the cell nominally reaches: a full RESET at
    ``reset_v_max`` and a SET at the highest compliance ``icc_max``."""
    v = load_preset(preset).values
    low = v["reset_g_ref"] * math.exp(-(v["reset_v_max"] - v["reset_v_ref"]) / v["reset_v_slope"])
    return low, v["icc_max"] / v["set_k_volts"]


def with_window(preset: DevicePreset | str, g_min: float, g_max: float) -> DevicePreset:
    """A copy of a resistive preset with the conductance window ``[g_min, g_max]`` (S).

    The window must lie inside :func:`reachable_window`.  Named ``<name>-window<lo>-<hi>uS``.
    """
    p = load_preset(preset)
    if p.kind != "rram":
        raise MemlearnError(f"with_window needs a resistive (rram) preset; {p.name!r} is {p.kind}")
    g_min, g_max = float(g_min), float(g_max)
    low, high = reachable_window(p)
    if not (math.isfinite(g_min) and math.isfinite(g_max) and low <= g_min < g_max <= high):
        raise MemlearnError(
            f"window must satisfy {low * 1e6:.3g} µS <= g_min < g_max <= {high * 1e6:.3g} µS "
            f"(what {p.name} reaches by full RESET and by SET at icc_max), got "
            f"[{g_min * 1e6:.4g}, {g_max * 1e6:.4g}] µS"
        )
    out = p.replace(g_min=g_min, g_max=g_max)
    return dataclasses.replace(out, name=f"{p.name}-window{g_min * 1e6:.4g}-{g_max * 1e6:.4g}uS")
