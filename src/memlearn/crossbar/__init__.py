"""Arrays of cells: differential-pair weight mapping, tiling over 32x32 tiles, analog vector-
matrix products with DAC/ADC limits, per-cell write counters and an energy/latency ledger.

Public API (SI units):

- ``DifferentialMapping(levels, scale)`` / ``DifferentialMapping.from_weights(w, levels)``:
  ``to_conductance(w) -> (G+, G-)``, ``to_weight(G+, G-)``, ``quantize(w)``, on any leading
  shape (e.g. ``[tasks, out, in]``); sign-magnitude on the levels.
- ``CrossbarArray(preset, n_chips, rows, cols, generator=..., tile_rows=32, tile_cols=32,
  adc_bits=8, dac_bits=8, adc_full_scale=None, wire_ohms=0.0, read_noise=True)``:
  ``program(G+, G-, strategy, mask)`` (only changed targets), ``pulse(plus, minus)``,
  ``read()``, ``conductances()``, ``multiply(volts)``, ``advance(seconds, kelvin)``,
  ``writes`` (per-cell counters), ``ledger`` (``Ledger``: energy/latency by category).
- ``analog_vmm``, ``dac``, ``adc``, ``ir_drop``: the stateless VMM pieces.
- :mod:`memlearn.crossbar.system_energy`: the system-level estimate beside a ledger (voltage
  generation, level shifting, gate DAC, line charging, control, static bias over the latency).
"""

from memlearn.crossbar.array import CrossbarArray
from memlearn.crossbar.ledger import CATEGORIES, Ledger
from memlearn.crossbar.mapping import DifferentialMapping
from memlearn.crossbar.vmm import adc, adc_lsb, analog_vmm, dac, ir_drop
from memlearn.crossbar.writes import WriteSummary

__all__ = [
    "CATEGORIES",
    "CrossbarArray",
    "DifferentialMapping",
    "Ledger",
    "WriteSummary",
    "adc",
    "adc_lsb",
    "analog_vmm",
    "dac",
    "ir_drop",
]
