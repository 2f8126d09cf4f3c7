"""Binary ferroelectric HfO2 1T-1C FeRAM: preset ``kind = "feram"``.

A capacitive cell storing one bit as a polarisation state (Francois et al., IEDM 2021,
REFERENCE.md s2).  So that the same arrays and ledger can hold it, the two states are
represented by two equivalent read conductances, ``g_min`` ('0') and ``g_max`` ('1').

Polarisation physics (parameters: ``FerroelectricCell.optional``, each with its source):

- Switching (Merz law inside a KAI / nucleation-limited form; Merz, Phys. Rev. 1954; Ishibashi
  and Takagi, JPSJ 1971; Tagantsev et al., PRB 2002): a pulse of amplitude V and width t
  switches the fraction ``1 - exp(-(t / tau)^n)`` of the polarisation, with
  ``tau = fe_tau0_s exp(E_a / E)`` and ``E = V / fe_thickness_m`` (``switched_fraction``).
- Endurance (``window_fraction``): the remanent window ``2 P_r`` relative to its woken-up value
  after N bipolar cycles, ``w(N) = (1 - (1 - fe_wake_fraction) exp(-N / fe_wake_cycles)) /
  (1 + N / fe_fatigue_cycles)`` (wake-up, then fatigue).
- Retention (``retained_fraction``): the window decays by ``fe_retention_decade`` per decade of
  time after ``fe_retention_t0_s`` (depolarisation / imprint, log-time).
- Energy: switching charge ``2 P_r A`` at V, ``switching_energy`` (J, a cross-check of the
  preset's ``write_energy_j`` that the ledger charges).

Cell behaviour:
- Write: one pulse (``fe_write_v``, ``write_pulse_s``) per bit whose state changes, energy
  ``write_energy_j``; the bit switches when the pulse switches over half the polarisation and
  the cell's window (after its cycles so far and its age) is above ``fe_sense_margin``; a
  fraction ``bit_fail_rate`` of pulses does not switch; stuck cells keep their state.  No verify,
  no strategy (any strategy name writes the same way).
- Read: the latch decides the state (``read_noise`` is normally 0); reads are destructive and
  the write-back is charged as ``read_overhead_j`` (callers count the write-back's wear).
- Time: cells age; a cell whose retained window falls below ``fe_sense_margin`` loses its '1'.
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

FERAM_PHYSICS: dict[str, tuple[float, str]] = {
    "fe_write_v": (
        2.5,
        "[P] window open down to 2.5 V (Francois et al., IEDM 2021): write at 2.5 V",
    ),
    "fe_thickness_m": (10e-9, "[E] 10 nm Si:HfO2 film, typical of 1T-1C HfO2 FeRAM stacks"),
    "fe_tau0_s": (1e-12, "[E] Merz-law attempt time, phonon time scale"),
    "fe_activation_v_per_m": (
        1.73e9,
        "[I] tau(2.5 V) = 1 ns so 4 ns pulses switch fully at 2.5 V ([P] 4 ns switching, window "
        "open down to 2.5 V, Francois et al., IEDM 2021); 17 MV/cm",
    ),
    "fe_kai_exponent": (2.0, "[E] KAI (Avrami) exponent of 2-D domain growth in thin films"),
    "fe_pr_c_per_m2": (0.2, "[E] remanent polarisation 20 uC/cm^2 of Si:HfO2 (15-25 typical)"),
    "fe_area_m2": (0.09e-12, "[E] 0.3 um x 0.3 um capacitor of a 130 nm 1T-1C cell"),
    "fe_wake_fraction": (0.7, "[E] pristine window / woken-up window of HfO2 capacitors"),
    "fe_wake_cycles": (1e4, "[E] wake-up completes within ~10^4 cycles"),
    "fe_fatigue_cycles": (
        1e7,
        "[I] the window halves (fe_sense_margin) at 10^7 cycles, the array endurance [P] "
        "(Francois et al., IEDM 2021)",
    ),
    "fe_sense_margin": (0.5, "[E] the sense amplifier needs half the woken-up window"),
    "fe_retention_decade": (0.02, "[E] 2 % of the window lost per decade of time at 85 C"),
    "fe_retention_t0_s": (1.0, "[E] origin of the log-time retention loss"),
}


def switched_fraction(
    preset: DevicePreset, volts: torch.Tensor | float, seconds: float
) -> torch.Tensor:
    """Fraction of the polarisation a pulse of ``volts`` (V) and ``seconds`` (s) switches."""
    v = preset.values
    field = torch.as_tensor(volts, dtype=torch.float64).abs() / v["fe_thickness_m"]
    tau = v["fe_tau0_s"] * torch.exp(v["fe_activation_v_per_m"] / field.clamp_min(1e-30))
    return 1.0 - torch.exp(-((seconds / tau) ** v["fe_kai_exponent"]))


def window_fraction(preset: DevicePreset, cycles: torch.Tensor | float) -> torch.Tensor:
    """Remanent window after ``cycles`` bipolar cycles, relative to the woken-up window."""
    v = preset.values
    n = torch.as_tensor(cycles, dtype=torch.float64)
    wake = 1.0 - (1.0 - v["fe_wake_fraction"]) * torch.exp(-n / v["fe_wake_cycles"])
    return wake / (1.0 + n / v["fe_fatigue_cycles"])


def retained_fraction(preset: DevicePreset, seconds: torch.Tensor | float) -> torch.Tensor:
    """Fraction of the window left ``seconds`` (s) after writing (log-time loss, >= 0)."""
    v = preset.values
    t = torch.as_tensor(seconds, dtype=torch.float64).clamp_min(0.0)
    loss = v["fe_retention_decade"] * torch.log10(1.0 + t / v["fe_retention_t0_s"])
    return (1.0 - loss).clamp_min(0.0)


def switching_energy(preset: DevicePreset, volts: float | None = None) -> float:
    """Energy (J) to reverse one cell: switching charge ``2 P_r A`` at ``volts`` (V)."""
    v = preset.values
    volts = v["fe_write_v"] if volts is None else volts
    return 2.0 * v["fe_pr_c_per_m2"] * v["fe_area_m2"] * volts


def _healthy_window(preset: DevicePreset, cells: CellState) -> torch.Tensor:
    """Cells whose window (cycles so far, age) is still above the sense margin."""
    window = window_fraction(preset, cells.pulses.double() / 2.0) * retained_fraction(
        preset, cells.age_s.double()
    )
    return window >= preset.values["fe_sense_margin"]


class FerroelectricCell(CellTechnology):
    """A binary 1T-1C ferroelectric cell; see the module docstring."""

    kind = "feram"
    required = frozenset(COMMON_PARAMETERS | parameters_in("feram"))
    optional = FERAM_PHYSICS
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
        strong = float(switched_fraction(preset, v["fe_write_v"], v["write_pulse_s"])) > 0.5
        able = _healthy_window(preset, cells) & strong
        switched = (
            change & able & (torch.rand(target.shape, generator=generator) >= v["bit_fail_rate"])
        )
        new = torch.where(want_high, torch.tensor(v["g_max"]), torch.tensor(v["g_min"]))
        cells.g.copy_(torch.where(switched, new, cells.g))
        tally.set_pulses += (change & want_high).int()
        tally.reset_pulses += (change & ~want_high).int()
        tally.energy += change.float() * v["write_energy_j"]
        tally.failed |= (cells.g >= mid) != want_high
        cells.reset_final.copy_(torch.where(change, ~want_high, cells.reset_final))

    def relax(
        self, preset: DevicePreset, cells: CellState, seconds: float, gen: torch.Generator
    ) -> None:
        """Age the cells; a '1' whose retained window falls below the sense margin reads '0'."""
        cells.age_s += seconds
        v = preset.values
        lost = ~_healthy_window(preset, cells) & (cells.stuck == STUCK_NONE)
        cells.g.copy_(torch.where(lost, torch.tensor(v["g_min"]), cells.g))


def sense_lifetime_cycles(preset: DevicePreset) -> float:
    """Bipolar cycles until the woken-up window fatigues to the sense margin (closed form of
    ``window_fraction`` without the wake-up term)."""
    v = preset.values
    return v["fe_fatigue_cycles"] * (1.0 / v["fe_sense_margin"] - 1.0)


__all__ = [
    "FERAM_PHYSICS",
    "FerroelectricCell",
    "retained_fraction",
    "sense_lifetime_cycles",
    "switched_fraction",
    "switching_energy",
    "window_fraction",
]
