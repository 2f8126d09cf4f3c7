"""The retention study's device side: how hard a bake stresses the cells and how stable the
cells a strategy writes are.

- :func:`log_time`: ``ln(1 + t / t0)``, the quantity the model's relaxation grows with
  (:mod:`memlearn.devices.retention`), after a bake;
- :func:`drifted`: the preset with its log-time relaxation spread ``relax_log`` times a drift
  factor k (k = 1: the preset itself);
- :func:`stability_rms`: the rms stability factor h of the cells a strategy programs.
"""

from __future__ import annotations

import math

import torch

from memlearn.devices.cells import STUCK_NONE
from memlearn.devices.levels import level_conductances
from memlearn.devices.preset import DevicePreset
from memlearn.devices.programming import program
from memlearn.devices.retention import celsius, equivalent_seconds, stability_factor

DRIFT_FACTOR_MAX = 100.0  # [E] largest drift factor accepted


def log_time(preset: DevicePreset, hours: float, bake_celsius: float) -> float:
    """``ln(1 + t / t0)`` of the model's relaxation after ``hours`` at ``bake_celsius``, t the
    effective seconds at the reference temperature (dimensionless)."""
    seconds = equivalent_seconds(preset, hours * 3600.0, celsius(bake_celsius))
    return math.log1p(seconds / preset.values.get("relax_t0_s", 1.0))


def drifted(preset: DevicePreset, factor: float) -> DevicePreset:
    """A copy of ``preset`` whose log-time relaxation spread ``relax_log`` is ``factor`` times
    larger (``factor`` 1: the preset itself)."""
    if factor == 1.0:
        return preset
    v = preset.values["relax_log"]
    return preset.replace(relax_log=v * factor)


def stability_rms(preset: DevicePreset, strategy: str, levels: int, cells: int, seed: int) -> float:
    """The rms stability factor h (dimensionless; :func:`memlearn.devices.retention.
    stability_factor`) of ``cells`` cells per level programmed with ``strategy`` as
    ``characterize`` programs them, stuck cells left out: the factor on the spread a bake
    adds to them."""
    targets = level_conductances(levels, preset.window).repeat_interleave(cells)
    generator = torch.Generator().manual_seed(int(seed))
    state = program(preset, targets, strategy, generator=generator).cells
    h = stability_factor(preset, state)[state.stuck == STUCK_NONE]
    return float(h.double().pow(2).mean().sqrt())
