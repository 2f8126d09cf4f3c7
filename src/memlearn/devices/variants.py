"""Modified copies of a preset for overlap / window sweeps.

The spread of the programmed states is not a free parameter of memlearn: it comes out of the
pulse-by-pulse simulation (cycle-to-cycle and device-to-device switching spread, the verify
band, read noise, relaxation).  To sweep it, scale all of those together:

- ``scale_spread(preset, factor)``: every stochastic term (``SPREAD_PARAMETERS``) times
  ``factor``, and the controller's resolution (verify band, SET ramp step, RESET trim step,
  gate DAC step, aiming margins: ``RESOLUTION_PARAMETERS``) with it, so the program-and-verify
  loops converge in about the same number of pulses while the programmed (and baked)
  distributions widen or narrow by about ``factor``.  Mean drift, stuck-cell rates and
  endurance are left alone (change them with ``preset.replace``).
- ``match_spread(preset, ratio, levels, strategy)``: the ``scale_spread`` copy whose measured
  per-level spread, divided by the level spacing, is ``ratio`` (a few short characterisations).
- ``with_window(preset, g_min, g_max)``: the conductance window, checked against what the
  cell can reach (the access transistor's compliance range, the full-RESET level).

Each returns a validated copy whose changed parameters carry an ``[E]`` source naming the
change and the original value and source; the original preset is not modified.  Example::

    base = load_preset("hfo2-mlc")
    for ratio in (0.05, 0.1, 0.2):                     # sigma / level spacing
        p = match_spread(base, ratio, levels=8)        # same window, wider or narrower states
    wide = base.with_window(5e-6, 180e-6).with_spread(0.8)
"""

from __future__ import annotations

import dataclasses
import math

import torch

from memlearn.devices.levels import check_window
from memlearn.devices.preset import DevicePreset, derive, load_preset
from memlearn.devices.rram import require_resistive
from memlearn.errors import MemlearnError

SPREAD_PARAMETERS = (
    "set_c2c",
    "set_d2d",
    "reset_c2c",
    "reset_c2c_jump",
    "reset_d2d",
    "read_noise",
    "read_noise_rel",
    "relax_fast",
    "relax_log",
    "inc_noise",
)
"""Stochastic terms scaled by ``scale_spread``."""

RESOLUTION_PARAMETERS = (
    "verify_tolerance",
    "iset_step",
    "reset_step",
    "gate_step",
    "hybrid_margin",
    "ireset_margin",
)
"""Controller resolution scaled with the spread (``iset_start`` moves toward nominal too)."""

SPREAD_FACTOR_RANGE = (1e-3, 3.0)
"""Allowed ``factor`` of ``scale_spread``: above 3 the SET ramp would start below zero."""


def scale_spread(preset: DevicePreset | str, factor: float) -> DevicePreset:
    """A copy of a resistive preset with every source of spread scaled by ``factor``.

    ``SPREAD_PARAMETERS`` and ``RESOLUTION_PARAMETERS`` are multiplied by ``factor`` and the
    iterative-SET ramp start moves toward the nominal compliance,
    ``1 - (1 - iset_start) * factor``, so the ramp keeps its number of steps.
    ``factor`` must lie in ``SPREAD_FACTOR_RANGE``.
    """
    p = load_preset(preset)
    lo, hi = SPREAD_FACTOR_RANGE
    f = float(factor)
    if not lo <= f <= hi:
        raise MemlearnError(f"spread factor must be in [{lo:g}, {hi:g}], got {factor!r}")
    require_resistive(p, "scale_spread")
    v = p.values
    changes = {k: v[k] * f for k in (*SPREAD_PARAMETERS, *RESOLUTION_PARAMETERS) if k in v}
    changes["iset_start"] = 1.0 - (1.0 - v["iset_start"]) * f
    out = derive(p, changes, f"scaled x{f:g} by scale_spread")
    meta = dict(out.meta)
    meta["spread_factor"] = f"{float(meta.get('spread_factor', 1.0)) * f:g}"
    return _renamed(out, f"{p.name}-spread{f:g}", meta)


def reachable_window(preset: DevicePreset | str) -> tuple[float, float]:
    """``(lowest, highest)`` conductance (S) the cell can be programmed to: for resistive cells
    the full-RESET level (RESET at ``reset_v_max``) and the SET level at the highest compliance
    ``icc_max``; the preset's window where the window only represents the states."""
    p = load_preset(preset)
    reach = p.technology.reachable_window(p)
    return p.window if reach is None else reach


def with_window(preset: DevicePreset | str, g_min: float, g_max: float) -> DevicePreset:
    """A copy with the conductance window ``[g_min, g_max]`` (S), which must lie within
    ``reachable_window(preset)`` (a wider one needs a stronger access transistor: change
    ``icc_max``/``gate_k`` with ``preset.replace``).  Levels placed with ``preset.levels(n)``
    then span the new window."""
    p = load_preset(preset)
    lo, hi = check_window((g_min, g_max))
    reach = p.technology.reachable_window(p)
    floor, ceiling = reach if reach is not None else (lo, hi)
    if not (floor * (1 - 1e-9) <= lo and hi <= ceiling * (1 + 1e-9)):
        raise MemlearnError(
            f"window [{lo * 1e6:g}, {hi * 1e6:g}] uS is outside what {p.name!r} cells reach: "
            f"g_min >= {floor * 1e6:.3g} uS (full RESET at reset_v_max) and "
            f"g_max <= {ceiling * 1e6:.3g} uS (icc_max / set_k_volts)"
        )
    out = derive(p, {"g_min": lo, "g_max": hi}, "window set by with_window")
    return _renamed(out, f"{p.name}-window{lo * 1e6:g}-{hi * 1e6:g}uS", dict(out.meta))


def spread_ratio(
    preset: DevicePreset | str,
    levels: int = 8,
    strategy: str = "hybrid",
    cells: int = 500,
    seed: int = 0,
    bake_hours: float = 0.0,
    bake_celsius: float = 150.0,
) -> float:
    """Measured mean over levels of (std of the level / level spacing), after programming (or
    after a bake when ``bake_hours`` > 0), for ``levels`` levels in the preset's window; the std
    is the one ``characterize`` reports (stuck cells left out)."""
    from memlearn.devices.characterize import characterize

    ch = characterize(preset, strategy, levels, cells, None, bake_hours, bake_celsius, seed)
    stats = ch.baked if ch.baked is not None else ch.programmed
    t = stats.targets.double()
    gaps = t[1:] - t[:-1]
    # spacing of each level: the mean of its gaps below and above (edge levels: their one gap)
    spacing = 0.5 * (torch.cat((gaps[:1], gaps)) + torch.cat((gaps, gaps[-1:])))
    return float((stats.stds.double() / spacing).mean())


def match_spread(
    preset: DevicePreset | str,
    ratio: float,
    levels: int = 8,
    strategy: str = "hybrid",
    *,
    cells: int = 500,
    seed: int = 0,
    bake_hours: float = 0.0,
    bake_celsius: float = 150.0,
    rtol: float = 0.03,
    max_iter: int = 8,
) -> DevicePreset:
    """The ``scale_spread`` copy of ``preset`` whose ``spread_ratio`` is ``ratio`` within
    ``rtol`` (relative), found by fixed-point iterations ``factor *= ratio / measured``.

    The returned preset's ``meta`` holds ``spread_factor`` and ``spread_ratio`` (measured).
    Raises ``MemlearnError`` when ``ratio`` needs a factor outside ``SPREAD_FACTOR_RANGE``.
    """
    r_target = float(ratio)
    if not (math.isfinite(r_target) and r_target > 0):
        raise MemlearnError(f"ratio (sigma / level spacing) must be > 0, got {ratio!r}")
    base = load_preset(preset)
    lo, hi = SPREAD_FACTOR_RANGE
    factor, measured = 1.0, float("nan")
    for _ in range(max_iter):
        p = scale_spread(base, factor)
        measured = spread_ratio(p, levels, strategy, cells, seed, bake_hours, bake_celsius)
        if abs(measured / r_target - 1.0) <= rtol:
            meta = dict(p.meta)
            meta["spread_ratio"] = f"{measured:.4g}"
            return _renamed(p, p.name, meta)
        if measured <= 0:
            break
        wanted = factor * r_target / measured
        if (factor == lo and wanted < lo) or (factor == hi and wanted > hi):
            break
        factor = min(max(wanted, lo), hi)
    raise MemlearnError(
        f"could not reach sigma / spacing = {r_target:g} with {levels} levels and {strategy} "
        f"(last factor {factor:.3g} gave {measured:.3g}; factors are limited to "
        f"[{lo:g}, {hi:g}])"
    )


def _renamed(p: DevicePreset, name: str, meta: dict[str, str]) -> DevicePreset:
    return dataclasses.replace(p, name=name, meta=meta)
