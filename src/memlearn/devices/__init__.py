"""One memory cell's physics, batched over chips and cells: conductance levels, pulse-by-
pulse programming strategies with verify reads, read noise, relaxation and Arrhenius drift,
stuck cells, endurance, energy, presets with sources, and fitting to measurements.

Cell technologies (``technology.CellTechnology``: multi-level ReRAM in ``rram``, FeRAM in
``feram``) are registered by the preset ``kind`` in ``technologies`` (``KINDS``,
``technology(preset)``, also ``preset.technology``); write strategies are registered by name
in ``strategies`` and run pulse by pulse by ``controller``.

Public API (SI units: siemens, volts, seconds, joules, kelvin):

- ``load_preset(name_or_path) -> DevicePreset``; ``list_presets()``; ``DEFAULT_PRESET``;
  ``save_preset(preset, path)``.  ``preset.levels(n, window=None, spacing="linear")`` gives the
  target conductances; ``preset.window`` is ``(G_min, G_max)``; ``preset.replace(**values)``.
- Variants for sweeps (``memlearn.devices.variants``): ``with_window(preset, g_min, g_max)`` /
  ``preset.with_window(...)``, ``scale_spread(preset, factor)`` / ``preset.with_spread(...)``
  (every source of spread and the controller's resolution scaled together),
  ``match_spread(preset, ratio, levels, strategy)`` (sigma / level spacing = ``ratio``).
- ``program(preset, g_target, strategy="hybrid", generator=..., cells=None, tolerance=None,
  max_pulses=None, settle_s=None) -> ProgramResult`` with ``conductance``, ``set_pulses``,
  ``reset_pulses``, ``verify_reads``, ``energy_j``, ``failed``, ``cells``; works on any shape
  (e.g. ``[tasks, out, in]``).  ``STRATEGIES`` lists the strategy names.
- ``sample_cells(preset, shape, generator) -> CellState`` (device-to-device spread, stuck
  cells, endurance), ``relax(preset, cells, seconds, generator)`` (in place, effective
  seconds at the reference temperature), ``equivalent_seconds(preset, seconds, kelvin)``,
  ``acceleration_factor(kelvin, ea_ev, t_ref_k)``, ``bake(preset, cells, hours, celsius,
  generator)`` and ``age(preset, cells, years, celsius, generator)`` (``bake(p, cells,
  hours=12, celsius=150, generator=g)`` ages cells like ``age(..., years=10, celsius=75, ...)``).
- ``read(preset, g, generator, age=None)`` and ``read_sigma(preset, g, age=None)``: read noise
  (1/f, CMO law in the time since programming, plus additive noise of 1 % of g_max).
- ``physics.increment(preset, g, direction, gain, shift, generator)``: fixed incremental
  pulses (Manhattan-rule updates).
- ``characterize(preset, strategy, levels, cells, window, bake_hours, bake_celsius, seed)``:
  per-level statistics, level error rate, pulses, energy (``memlearn device characterize``).
- ``fitting.fit_measurements(csv, base, strategy)``: fit a preset to measurements.
- ``level_conductances``, ``nearest_level``: level placement and decoding.
"""

from memlearn.devices.cells import CellState, sample_cells
from memlearn.devices.characterize import Characterization, characterize
from memlearn.devices.levels import level_conductances, nearest_level
from memlearn.devices.physics import read, read_sigma
from memlearn.devices.preset import (
    DEFAULT_PRESET,
    DevicePreset,
    list_presets,
    load_preset,
    save_preset,
)
from memlearn.devices.programming import STRATEGIES, ProgramResult, program
from memlearn.devices.retention import (
    SECONDS_PER_YEAR,
    acceleration_factor,
    age,
    bake,
    celsius,
    equivalent_seconds,
    relax,
)
from memlearn.devices.technologies import KINDS, technology
from memlearn.devices.variants import match_spread, scale_spread, with_window

__all__ = [
    "DEFAULT_PRESET",
    "SECONDS_PER_YEAR",
    "STRATEGIES",
    "CellState",
    "Characterization",
    "DevicePreset",
    "KINDS",
    "ProgramResult",
    "acceleration_factor",
    "age",
    "bake",
    "celsius",
    "characterize",
    "equivalent_seconds",
    "level_conductances",
    "list_presets",
    "load_preset",
    "match_spread",
    "nearest_level",
    "program",
    "read",
    "read_sigma",
    "relax",
    "sample_cells",
    "save_preset",
    "scale_spread",
    "technology",
    "with_window",
]
