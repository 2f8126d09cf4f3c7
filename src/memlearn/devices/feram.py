"""Binary ferroelectric HfO2 1T-1C FeRAM: preset ``kind = "feram"``.

A capacitive cell storing one bit as a polarisation state (Francois et al., IEDM 2021,
REFERENCE.md s2).  So that the same arrays and ledger can hold it, the two states are
represented by two equivalent read conductances, ``g_min`` ('0') and ``g_max`` ('1').

- Write: one switching pulse (``write_pulse_s``) per bit whose state changes, energy
  ``write_energy_j``; a fraction ``bit_fail_rate`` of those pulses does not switch; stuck cells
  keep their state.  No verify, no strategy (any strategy name writes the same way).
- Read: the latch decides the state (``read_noise`` is normally 0); reads are destructive and
  the write-back is charged as ``read_overhead_j``.
- No relaxation or drift is modelled: cells only age.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from memlearn.devices.cells import STUCK_NONE, CellState
from memlearn.devices.parameters import COMMON_PARAMETERS, parameters_in
from memlearn.devices.preset import DevicePreset
from memlearn.devices.technology import CellTechnology, WriteTally

if TYPE_CHECKING:
    from memlearn.devices.strategies import WriteStrategy


class FerroelectricCell(CellTechnology):
    """A binary 1T-1C ferroelectric cell; see the module docstring."""

    kind = "feram"
    required = frozenset(COMMON_PARAMETERS | parameters_in("feram"))
    states = 2

    def sample(
        self, preset: DevicePreset, shape: tuple[int, ...], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fresh cells in state '0' (``g_min``); no device-to-device spread."""
        return torch.full(shape, preset.values["g_min"]), torch.ones(shape), torch.zeros(shape)

    def write(
        self,
        preset: DevicePreset,
        cells: CellState,
        target: torch.Tensor,
        strategy: WriteStrategy,
        tolerance: float,
        max_pulses: int,
        generator: torch.Generator,
        tally: WriteTally,
    ) -> None:
        """One switching pulse per bit whose state changes (targets decoded at mid-window)."""
        v = preset.values
        mid = 0.5 * (v["g_min"] + v["g_max"])
        want_high = target >= mid
        is_high = cells.g >= mid
        change = (want_high != is_high) & (cells.stuck == STUCK_NONE)
        switched = change & (torch.rand(target.shape, generator=generator) >= v["bit_fail_rate"])
        new = torch.where(want_high, torch.tensor(v["g_max"]), torch.tensor(v["g_min"]))
        cells.g.copy_(torch.where(switched, new, cells.g))
        tally.set_pulses += (change & want_high).int()
        tally.reset_pulses += (change & ~want_high).int()
        tally.energy += change.float() * v["write_energy_j"]
        tally.failed |= (cells.g >= mid) != want_high
        cells.reset_final.copy_(torch.where(change, ~want_high, cells.reset_final))
