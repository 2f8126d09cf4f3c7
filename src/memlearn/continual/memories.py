"""The two memories of the hybrid chip, batched over chips (leading chip dimension).

- ``FeramWords``: signed 8-bit words (two's complement codes -128..127) in 1T-1C FeRAM cells
  (preset kind ``feram``), one cell per bit.  A read is destructive: every cell holding '1' is
  switched to '0' by the read pulse and switched back by the write-back, i.e. two polarisation
  reversals; a write reverses the cells whose bit changes.  ``writes`` counts polarisation
  reversals per cell ``[n_chips, *shape, 8]``.
- ``OxramBinary``: binary weights as differential 2T2R pairs of a ``CrossbarArray`` (``oxram-slc``
  preset, programmed pulse by pulse with verify by the devices API): +1 is (G+, G-) = (g_max,
  g_min), -1 the reverse.  A pair is reprogrammed only when its weight's sign flips; the array's
  ``writes`` counts write operations (one SET or one RESET) per cell ``[n_chips, in, out, 2]``.

Both count energy (J) and latency (s) in a ``crossbar.ledger.Ledger`` (categories ``read``,
``program``, plus ``verify`` for OxRAM).  Endurance is quoted in cycles of two write operations
(one SET + one RESET, or two polarisation reversals), as in ``devices.cells.sample_cells``.
"""

from __future__ import annotations

import math

import torch

from memlearn.crossbar.array import CrossbarArray
from memlearn.crossbar.ledger import Ledger
from memlearn.devices.cells import STUCK_NONE
from memlearn.devices.preset import DevicePreset, load_preset
from memlearn.errors import MemlearnError

WORD_BITS = 8
"""[P] 8-bit quantised hidden weights in FeRAM (Martemucci et al., MEMRISYS 2023)."""
ARRAY_ROW_BITS = 128
"""[E] a 16 kbit array as 128 x 128 cells: one row (16 words) is read or written per pulse."""
OXRAM_STRATEGY = "iterative-set"
"""Write strategy of a binary OxRAM cell (devices.strategies): iterative SET with verify;
the fewest pulses per flip of the strategies on oxram-slc ([S] measured with this simulator)."""
BINARY_TOLERANCE = 0.25
"""[E] verify band of a binary cell, as a fraction of the window: a SLC cell only needs to be
clearly on its side of the sense threshold, not on a precise level."""

_BIT_VALUES = 2 ** torch.arange(WORD_BITS)


def bits_of(codes: torch.Tensor) -> torch.Tensor:
    """The 8 bits (bool, least significant first) of signed codes -128..127, ``[..., 8]``."""
    unsigned = (codes.to(torch.int32) & 0xFF)[..., None]
    return (unsigned & _BIT_VALUES) != 0


class FeramWords:
    """``n_chips`` copies of a tensor of ``shape`` signed 8-bit words in FeRAM cells."""

    def __init__(self, preset: DevicePreset | str, n_chips: int, shape: tuple[int, ...]) -> None:
        self.preset = load_preset(preset)
        if self.preset.kind != "feram":
            raise MemlearnError(
                f"FeRAM words need a feram preset; {self.preset.name!r} is {self.preset.kind}"
            )
        self.n_chips, self.shape = n_chips, tuple(shape)
        self.codes = torch.zeros((n_chips, *self.shape), dtype=torch.int16)
        self.writes = torch.zeros((n_chips, *self.shape, WORD_BITS), dtype=torch.int32)
        self.update_writes = torch.zeros_like(self.writes)  # reversals by writes only
        self.ledger = Ledger(n_chips)

    @property
    def cells_per_chip(self) -> int:
        return math.prod(self.shape) * WORD_BITS

    def _g(self, bits: torch.Tensor) -> torch.Tensor:
        v = self.preset.values
        return torch.where(bits, v["g_max"], v["g_min"])

    def _row_pulses(self, words_per_chip: torch.Tensor) -> torch.Tensor:
        return torch.ceil(words_per_chip.double() * WORD_BITS / ARRAY_ROW_BITS)

    def read(self) -> torch.Tensor:
        """Destructive read of every word, then write-back; returns the codes (int16)."""
        bits = bits_of(self.codes)
        tech = self.preset.technology
        per_chip = tech.read_energy(self.preset, self._g(bits)).flatten(1).double().sum(1)
        self.writes += 2 * bits.int()  # read switches each '1' to '0', write-back restores it
        words = torch.full((self.n_chips,), math.prod(self.shape))
        self.ledger.add(
            "read", per_chip, self._row_pulses(words) * self.preset.values["read_pulse_s"]
        )
        return self.codes.clone()

    def write(self, codes: torch.Tensor) -> torch.Tensor:
        """Write the words whose code changed; returns the number of words written per chip."""
        if tuple(codes.shape) != tuple(self.codes.shape):
            raise MemlearnError(f"codes must have shape {list(self.codes.shape)}")
        if bool(((codes < -128) | (codes > 127)).any()):
            raise MemlearnError("FeRAM word codes must lie in -128..127")
        codes = codes.to(torch.int16)
        flips = bits_of(self.codes) != bits_of(codes)
        changed = flips.any(-1)
        v = self.preset.values
        self.writes += flips.int()
        self.update_writes += flips.int()
        energy = flips.flatten(1).double().sum(1) * v["write_energy_j"]
        n_words = changed.flatten(1).double().sum(1)
        self.ledger.add("program", energy, self._row_pulses(n_words) * v["write_pulse_s"])
        self.codes = codes
        return n_words


class OxramBinary:
    """``n_chips`` binary matrices ``[out, in]`` as 2T2R OxRAM pairs (crossbar ``[in, out]``)."""

    def __init__(
        self,
        preset: DevicePreset | str,
        n_chips: int,
        out_features: int,
        in_features: int,
        generator: torch.Generator,
    ) -> None:
        window = load_preset(preset).window
        self.array = CrossbarArray(
            preset,
            n_chips,
            in_features,
            out_features,
            generator=generator,
            read_noise=True,
            tolerance=BINARY_TOLERANCE * (window[1] - window[0]),
        )
        if self.array.preset.kind != "rram":
            raise MemlearnError(
                f"OxRAM weights need an rram preset; {self.array.preset.name!r} "
                f"is {self.array.preset.kind}"
            )
        self.stored = torch.zeros((n_chips, out_features, in_features))

    @property
    def ledger(self) -> Ledger:
        return self.array.ledger

    @property
    def writes(self) -> torch.Tensor:
        return self.array.writes

    def program(self, signs: torch.Tensor) -> torch.Tensor:
        """Program ``signs`` (+-1, ``[n_chips, out, in]``); only pairs whose sign changed are
        written, and never pairs with a stuck cell (the controller's test pass knows them).
        Returns the number of flipped weights per chip."""
        lo, hi = self.array.window
        s = signs.transpose(1, 2)
        healthy = (self.array.cells.stuck == STUCK_NONE).all(-1)
        self.array.program(
            torch.where(s > 0, hi, lo), torch.where(s > 0, lo, hi), OXRAM_STRATEGY, healthy
        )
        flips = (signs != self.stored).flatten(1).sum(1)
        self.stored = signs.clone()
        return flips

    def read(self, images: int = 1) -> torch.Tensor:
        """Binary weights ``sign(G+ - G-)`` ``[n_chips, out, in]`` from one noisy read of every
        cell; the ledger is charged for ``images`` reads (one per image of the batch)."""
        ledger = self.array.ledger
        e0, t0 = ledger.energy["read"].clone(), ledger.latency["read"].clone()
        g_plus, g_minus = self.array.read()
        if images > 1:
            ledger.add(
                "read",
                (ledger.energy["read"] - e0) * (images - 1),
                (ledger.latency["read"] - t0) * (images - 1),
            )
        return torch.where(g_plus >= g_minus, 1.0, -1.0).transpose(1, 2).contiguous()

    def states(self) -> torch.Tensor:
        """Noise-free binary weights from the cells' true conductances (no ledger charge)."""
        g_plus, g_minus = self.array.conductances()
        return torch.where(g_plus >= g_minus, 1.0, -1.0).transpose(1, 2).contiguous()
