"""An energy (J) and latency (s) ledger per chip, by category.

Categories used by the crossbar: ``program`` (SET/RESET pulses), ``verify`` (verify reads),
``read`` (cell currents of conductance reads and VMMs: V^2 G t), ``dac``, ``adc``.
"""

from __future__ import annotations

import torch

CATEGORIES = ("program", "verify", "read", "dac", "adc")


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
        self.energy[category] += torch.as_tensor(joules, dtype=torch.float64)
        self.latency[category] += torch.as_tensor(seconds, dtype=torch.float64)

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
