"""Integer weights -> 8 SLC cells per synapse on a ``CrossbarArray``, programmed pulse by pulse.

A weight ``w`` in -4..+4 puts ``max(w, 0)`` of the 4 positive cells and ``max(-w, 0)`` of the 4
negative cells in the low-resistance state (LRS, target ``g_max``), the others in the
high-resistance state (HRS, target ``g_min``); the cell currents add (SPIRIT, Valentian et al.,
IEDM 2019 [P]).  The 144 x 10 synapses are held by a ``CrossbarArray`` of 144 rows and 40
differential pairs (pair ``4 j + k`` = positive and negative cell ``k`` of neuron ``j``), so
11,520 cells per chip, programmed with the preset's pulse-level SET/RESET (``single-set``: no
verify; ``hybrid`` / ``iterative-set`` / ``iterative-reset``: with verify), with its stuck cells,
device-to-device spread and relaxation (``CrossbarArray.advance``).  Any other layer of integer
weights ``[rows, neurons]`` maps the same way (the 144-H-10 network's two layers, ``twolayer``).

Read disturb (``disturb``): a read at ``V`` stresses an HRS cell like a weak SET.  Switching
time falls exponentially with voltage, by about 10 decades over ~1 V (the voltage-time dilemma:
Menzel et al., Adv. Funct. Mater. 2011 [P]), so a cell read ``R`` times for ``t_read`` each
switches to LRS with probability ``1 - exp(-R * t_read / set_pulse_s * exp((V - v_set) /
DISTURB_V_ACCEL))`` [I]: a SET pulse at ``v_set`` switches within ``set_pulse_s``.  At 100 mV
this is ~exp(-34) per read, consistent with no disturb over 750 M spikes [P]; at higher read
voltages it grows fast (the reproduce study sweeps it).
"""

from __future__ import annotations

import math

import torch

from memlearn.crossbar.array import CrossbarArray
from memlearn.devices.cells import STUCK_NONE
from memlearn.devices.preset import DevicePreset, load_preset
from memlearn.errors import MemlearnError
from memlearn.snn.model import W_MAX, check_weights

CELLS_PER_SIGN = W_MAX  # [P] 4 SLC cells per sign
CELLS_PER_SYNAPSE = 2 * CELLS_PER_SIGN
DISTURB_V_ACCEL = 0.05  # [I] V per e-fold of switching time (10 decades / ~1 V, Menzel 2011)


def cell_targets(w: torch.Tensor, g_min: float, g_max: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Targets (S) ``(g_plus, g_minus)`` ``[rows, 4 neurons]`` of integer weights ``w [rows,
    neurons]`` (SPIRIT: ``[144, 10]``)."""
    w = check_weights(w, None)
    rows, cols = w.shape[0], w.shape[1] * CELLS_PER_SIGN
    k = torch.arange(CELLS_PER_SIGN)
    on_plus = k < w.clamp(min=0)[..., None]  # [rows, neurons, 4]
    on_minus = k < (-w).clamp(min=0)[..., None]
    hi = torch.tensor(g_max, dtype=torch.float32)
    lo = torch.tensor(g_min, dtype=torch.float32)
    plus = torch.where(on_plus, hi, lo).reshape(rows, cols)
    minus = torch.where(on_minus, hi, lo).reshape(rows, cols)
    return plus, minus


class SynapseArray:
    """``n_chips`` SPIRIT synapse arrays of ``preset`` holding integer weights ``w [rows,
    neurons]`` (SPIRIT's layer: ``[144, 10]``; any layer of the same synapses)."""

    def __init__(
        self,
        preset: DevicePreset | str,
        n_chips: int,
        w: torch.Tensor,
        *,
        strategy: str = "single-set",
        generator: torch.Generator,
    ) -> None:
        self.preset = load_preset(preset)
        if self.preset.kind != "rram":
            raise MemlearnError(f"SPIRIT synapses need a resistive (rram) preset, got {preset!r}")
        self.weights = check_weights(w, None)
        self.array = CrossbarArray(
            self.preset, n_chips, self.weights.shape[0], self.weights.shape[1] * CELLS_PER_SIGN,
            generator=generator, adc_bits=None, dac_bits=None,
        )  # fmt: skip
        g_min, g_max = self.preset.window
        plus, minus = cell_targets(self.weights, g_min, g_max)
        self.target = torch.stack((plus, minus), dim=-1).expand(n_chips, -1, -1, -1)
        self.summary = self.array.program(
            plus.expand(n_chips, -1, -1), minus.expand(n_chips, -1, -1), strategy
        )
        self.reads = 0.0

    @property
    def n_chips(self) -> int:
        return self.array.n_chips

    def _per_synapse(self, t: torch.Tensor) -> torch.Tensor:
        """A per-cell field ``[n_chips, rows, 4 neurons, 2]`` as ``[n_chips, rows, neurons,
        8]`` (4 positive, then 4 negative cells)."""
        t = t.view(self.n_chips, *self.weights.shape, CELLS_PER_SIGN, 2)
        return torch.cat((t[..., 0], t[..., 1]), dim=-1)

    def cells(self) -> torch.Tensor:
        """True cell conductances (S) ``[n_chips, rows, neurons, 8]`` (4 positive, then 4
        negative)."""
        return self._per_synapse(self.array.cells.g)

    def ages(self) -> torch.Tensor:
        """Each cell's age (effective s since it was programmed, ``cells.age_s``), laid out as
        ``cells``: the time in the 1/f read-noise law."""
        return self._per_synapse(self.array.cells.age_s)

    def wrong_cells(self) -> torch.Tensor:
        """Cells per chip on the wrong side of the read threshold ``sqrt(g_min g_max)`` ``[n]``."""
        g_min, g_max = self.preset.window
        mid = math.sqrt(g_min * g_max)
        lrs_target = self.target > mid
        return ((self.array.cells.g > mid) != lrs_target).sum(dim=(1, 2, 3)).double()

    def stuck_cells(self) -> torch.Tensor:
        return (self.array.cells.stuck != STUCK_NONE).sum(dim=(1, 2, 3)).double()

    def advance(self, seconds: float) -> None:
        """Relaxation over ``seconds`` at room temperature."""
        if seconds > 0:
            self.array.advance(seconds)

    def disturb(
        self, reads: float, generator: torch.Generator, volts: float | None = None
    ) -> torch.Tensor:
        """Apply ``reads`` read pulses per cell at ``volts`` (default: the preset's ``v_read``;
        SET disturb of HRS cells); returns the flipped cells per chip."""
        if reads < 0 or not math.isfinite(reads):
            raise MemlearnError(f"reads must be a finite number >= 0, got {reads}")
        self.reads += reads
        if reads == 0:
            return torch.zeros(self.n_chips, dtype=torch.float64)
        v = self.preset.values
        volts = v["v_read"] if volts is None else float(volts)
        if not 0 <= volts <= v["v_set"]:
            raise MemlearnError(f"read volts must be in [0, v_set = {v['v_set']}] V, got {volts}")
        rate = (
            v["read_pulse_s"] / v["set_pulse_s"] * math.exp((volts - v["v_set"]) / DISTURB_V_ACCEL)
        )
        p = -math.expm1(-reads * rate)
        cells = self.array.cells
        g_min, g_max = self.preset.window
        hrs = (cells.g < math.sqrt(g_min * g_max)) & (cells.stuck == STUCK_NONE)
        flip = hrs & (torch.rand(cells.g.shape, generator=generator) < p)
        cells.g = torch.where(flip, torch.tensor(g_max, dtype=cells.g.dtype), cells.g)
        return flip.sum(dim=(1, 2, 3)).double()
