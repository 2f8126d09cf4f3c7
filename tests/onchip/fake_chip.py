"""A small, transparent Chip for testing the loop's mechanics (not a device model).

Cells take their target plus optional Gaussian programming error (cells marked stuck keep their
value, though they are counted and charged as written); reads add optional Gaussian noise;
multiply is the exact product; every written cell costs one pulse and one verify read; energies
are fixed per operation so ledgers can be checked by hand.
"""

from __future__ import annotations

import torch

from memlearn.chip.base import Chip, ChipLayout, ProgramReport, reference_layout

E_PULSE = 2e-12  # J per programming pulse (test value)
E_VERIFY = 1e-12  # J per verify read (test value)
E_READ = 0.5e-12  # J per cell read (test value)
E_CONVERT = 0.1e-12  # J per DAC or ADC conversion (test value)


class FakeChip(Chip):
    def __init__(
        self,
        n_chips: int,
        layout: ChipLayout | None = None,
        levels: int = 8,
        window: tuple[float, float] = (10e-6, 150e-6),
        program_sigma: float = 0.0,
        read_sigma: float = 0.0,
        pulse_step: float = 5e-6,
        seed: int = 0,
        stuck: dict[str, tuple[torch.Tensor, torch.Tensor]] | None = None,
    ) -> None:
        self.layout = layout or reference_layout()
        self.n_chips = n_chips
        self.levels = torch.linspace(*window, levels, dtype=torch.float64).float()  # S
        self._window = window
        self.program_sigma = program_sigma
        self.read_sigma = read_sigma
        self.pulse_step = pulse_step
        self.gen = torch.Generator().manual_seed(seed)
        self.g: dict[str, list[torch.Tensor]] = {}
        self.targets: dict[str, list[torch.Tensor | None]] = {}
        self.counts: dict[str, list[torch.Tensor]] = {}
        for spec in self.layout.arrays:
            shape = (n_chips, spec.rows, spec.cols)
            self.g[spec.name] = [torch.full(shape, window[0]), torch.full(shape, window[0])]
            self.targets[spec.name] = [None, None]
            self.counts[spec.name] = [torch.zeros(shape, dtype=torch.long) for _ in range(2)]
        # array -> (G+ stuck mask, G- stuck mask): those cells keep their value when written
        self.stuck = stuck or {}
        self.ledger = {
            k: torch.zeros(n_chips, dtype=torch.float64)
            for k in ("read", "program", "verify", "dac", "adc")
        }

    def _noise(self, shape: torch.Size, sigma: float) -> torch.Tensor:
        if sigma == 0:
            return torch.zeros(shape)
        return torch.randn(shape, generator=self.gen) * sigma

    def read_conductances(self, array):
        gp, gm = self.g[array]
        self.ledger["read"] += E_READ * 2 * gp[0].numel()
        return gp + self._noise(gp.shape, self.read_sigma), gm + self._noise(
            gm.shape, self.read_sigma
        )

    def program(self, array, g_plus, g_minus, strategy="hybrid", mask=None):
        written = torch.zeros(self.n_chips, dtype=torch.long)
        for side, target in enumerate((g_plus, g_minus)):
            last = self.targets[array][side]
            change = torch.ones_like(target, dtype=torch.bool) if last is None else target != last
            if mask is not None:
                change &= mask
            cells = self.g[array][side]
            value = (target + self._noise(target.shape, self.program_sigma)).clamp(*self._window)
            if array in self.stuck:
                value = torch.where(self.stuck[array][side], cells, value)
            cells[change] = value[change]
            self.counts[array][side] += change.long()
            new_last = target.clone() if last is None else torch.where(change, target, last)
            self.targets[array][side] = new_last
            written += change.sum(dim=(1, 2))
        self.ledger["program"] += E_PULSE * written
        self.ledger["verify"] += E_VERIFY * written
        zero = torch.zeros(self.n_chips, dtype=torch.long)
        return ProgramReport(
            written,
            written.clone(),
            zero,
            written.clone(),
            (E_PULSE + E_VERIFY) * written.double(),
            zero,
        )

    def pulse(self, array, plus, minus):
        written = torch.zeros(self.n_chips, dtype=torch.long)
        sets = torch.zeros(self.n_chips, dtype=torch.long)
        for side, sel in enumerate((plus, minus)):
            cells = self.g[array][side]
            cells += sel.float() * self.pulse_step
            cells.clamp_(*self._window)
            self.counts[array][side] += (sel != 0).long()
            written += (sel != 0).sum(dim=(1, 2))
            sets += (sel > 0).sum(dim=(1, 2))
        self.ledger["program"] += E_PULSE * written
        zero = torch.zeros(self.n_chips, dtype=torch.long)
        return ProgramReport(written, sets, written - sets, zero, E_PULSE * written.double(), zero)

    def multiply(self, array, volts):
        gp, gm = self.g[array]
        self.ledger["dac"] += E_CONVERT * volts.shape[1] * volts.shape[2]
        self.ledger["adc"] += E_CONVERT * volts.shape[1] * gp.shape[2]
        return torch.bmm(volts, gp - gm)

    def advance(self, seconds, kelvin=300.0):
        for gp, gm in self.g.values():
            gp += self._noise(gp.shape, self.program_sigma)
            gm += self._noise(gm.shape, self.program_sigma)

    def energy_ledger(self):
        return {k: v.clone() for k, v in self.ledger.items()}

    def write_counts(self, array):
        return self.counts[array][0].clone(), self.counts[array][1].clone()

    @property
    def conductance_window(self):
        return self._window

    @property
    def read_voltage(self):
        return 0.2
