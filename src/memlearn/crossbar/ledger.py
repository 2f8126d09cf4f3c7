"""An energy (J) and latency (s) ledger per chip, by category.

Categories used by the crossbar, with the formulas behind them (constants: the preset's
parameters, each with its source, and the conversion times below):

- ``program``: SET pulses ``v_set * I_cc * set_pulse_s`` (I_cc the compliance the gate voltage
  sets), RESET pulses ``reset_cell_fraction * V^2 * G * reset_pulse_s``; time: pulse widths.
- ``verify``: verify reads ``v_read^2 * G * read_pulse_s + read_overhead_j`` (sense amplifier).
- ``read``: cell currents of conductance reads (``CrossbarArray.read``, plus the sense
  amplifier's ``read_overhead_j`` per cell, cells read one by one) and of VMMs
  (``sum V_row^2 * G * read_pulse_s``, one read pulse per input vector).
- ``dac``: ``dac_j`` per row per input vector, ``DAC_SETTLE_S`` per vector.
- ``adc``: ``adc_fom_j * 2^bits`` per conversion (Walden figure of merit), one conversion per
  tile column per vector, ``bits * ADC_SECONDS_PER_BIT`` per vector (converters in parallel).

Latencies assume cells are programmed and read serially, VMM columns and tiles in parallel.
"""

from __future__ import annotations

import torch

CATEGORIES = ("program", "verify", "read", "dac", "adc")

# Conversion times (the conversion energies are preset parameters: dac_j, adc_fom_j).
DAC_SETTLE_S = 5e-9
"""[E] row DAC / driver settling time before a read pulse (a few ns for a 130 nm driver)."""
ADC_SECONDS_PER_BIT = 2e-9
"""[E] SAR ADC: one bit per ~2 ns cycle (an 8-bit conversion in 16 ns, tens of MS/s in 130 nm;
Murmann ADC survey range)."""


class Ledger:
    """Energy and latency totals per category, each a float64 tensor ``[n_chips]``."""

    def __init__(self, n_chips: int) -> None:
        self.n_chips = n_chips
        self.energy: dict[str, torch.Tensor] = {
            c: torch.zeros(n_chips, dtype=torch.float64) for c in CATEGORIES
        }
        self.latency: dict[str, torch.Tensor] = {
            c: torch.zeros(n_chips, dtype=torch.float64) for c in CATEGORIES
        }

    def add(
        self,
        category: str,
        joules: torch.Tensor | float,
        seconds: torch.Tensor | float = 0.0,
    ) -> None:
        """Add energy (J) and latency (s), scalars or ``[n_chips]`` tensors, to a category."""
        if category not in self.energy:
            raise KeyError(f"unknown ledger category {category!r}; known {list(self.energy)}")
        # in place, added in float64 (a float32 tensor is widened exactly), no temporaries
        self.energy[category].add_(joules)
        self.latency[category].add_(seconds)

    def merge(self, other: Ledger) -> None:
        for c in other.energy:
            self.energy.setdefault(c, torch.zeros(self.n_chips, dtype=torch.float64))
            self.latency.setdefault(c, torch.zeros(self.n_chips, dtype=torch.float64))
            self.energy[c] += other.energy[c]
            self.latency[c] += other.latency[c]

    def energy_by_category(self) -> dict[str, torch.Tensor]:
        """Copies of the energy totals (J) per category, each ``[n_chips]``."""
        return {c: t.clone() for c, t in self.energy.items()}

    def latency_by_category(self) -> dict[str, torch.Tensor]:
        """Copies of the latency totals (s) per category, each ``[n_chips]``."""
        return {c: t.clone() for c, t in self.latency.items()}

    def total_energy(self) -> torch.Tensor:
        """Sum over categories (J), ``[n_chips]``."""
        return sum(self.energy.values(), torch.zeros(self.n_chips, dtype=torch.float64))
