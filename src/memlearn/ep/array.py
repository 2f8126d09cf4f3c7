"""A layered network whose every weight is a programmed differential pair on crossbar tiles.

:class:`ArrayNetwork` implements :class:`~memlearn.ep.dynamics.Products` with the arrays'
analog reads: ``forward`` is the rows-to-columns VMM of :meth:`CrossbarArray.multiply` (inputs
``[s; 1] * V_read``, the bias a row driven at ``V_read``), ``backward`` the columns-to-rows read
of :mod:`memlearn.ep.transpose`.  Weight layer ``l`` (``[out, in + 1]``) is an array of
``in + 1`` rows and ``out`` pair columns; ``w = scale * (G+ - G-)`` on ``levels`` linear levels
(:class:`~memlearn.crossbar.mapping.DifferentialMapping`), full-scale weight ``weight_max[l] /
sqrt(fan_in)`` (:func:`~memlearn.ep.config.default_weight_max`).  Updates (``delta = -lr *
grad``, computed beside the array from the layer states at its edges) reach the cells
through the devices layer's programming:

``accumulate``
    (a) a float32 copy of every weight OFF the array (mixed precision, as the on-chip loop's
    ``accumulate`` policy): the copy takes the update, the pair is program-and-verified to the
    level nearest it when that level changed.
``counter``
    (c) NO float copy: a small signed digital counter per weight beside the array
    (``counter_bits``, counting ``1 / 2^(bits-1)`` of a level step; the update is rounded into
    it stochastically, unbiased) plus the pair's level index; a counter overflow moves the pair
    one level (program-and-verify) and is carried out of the counter.
``manhattan``
    (b) NO off-array state at all: each cell gets at most one fixed incremental pulse per update
    (:meth:`CrossbarArray.pulse`, no verify), in the sign of ``delta``, with probability
    ``min(1, |delta| / level step)`` (a stochastic threshold, so updates far below a step are not
    all lost); the pulsed cell is chosen from the pair's sign, read by comparing ``G+`` and
    ``G-`` (charged as two cell reads).
"""

from __future__ import annotations

import torch

from memlearn.crossbar.array import CrossbarArray
from memlearn.crossbar.ledger import Ledger
from memlearn.crossbar.mapping import DifferentialMapping
from memlearn.devices.levels import level_conductances
from memlearn.devices.preset import load_preset
from memlearn.ep.config import EPConfig
from memlearn.ep.dynamics import with_bias
from memlearn.ep.transpose import transpose_multiply


class ArrayNetwork:
    """The network of ``config.sizes`` on ``config.chips`` chips, programmed from ``thetas``."""

    def __init__(
        self,
        config: EPConfig,
        thetas: list[torch.Tensor],
        generator: torch.Generator,
        tolerance: float | None = None,
    ) -> None:
        self.config = config
        self.preset = load_preset(config.preset)
        if config.spread != 1.0:
            self.preset = self.preset.with_spread(config.spread)
        self.generator = generator
        self.ledger = Ledger(config.chips)
        levels = level_conductances(config.levels, self.preset.window)
        self.arrays: list[CrossbarArray] = []
        self.maps: list[DifferentialMapping] = []
        self.index: list[torch.Tensor] = []
        self.copy: list[torch.Tensor | None] = []
        self.counter: list[torch.Tensor | None] = []
        self.pulses = torch.zeros(config.chips, dtype=torch.float64)
        self.phase_energy: dict[str, torch.Tensor] = {}
        self.phase = "free"
        self._transposed: list[dict] = []  # per layer, see transpose._transposed_cells
        for layer, theta in enumerate(thetas):
            n, out, fan_in = theta.shape
            array = CrossbarArray(
                self.preset, n, fan_in, out,
                generator=generator, adc_bits=config.adc_bits, dac_bits=config.dac_bits,
                read_noise=config.read_noise, wire_ohms=config.wire_ohms, tolerance=tolerance,
                ledger=self.ledger,
            )  # fmt: skip
            mapping = DifferentialMapping.from_weight_max(
                config.weight_max[layer] / (fan_in - 1) ** 0.5, levels
            )
            self.arrays.append(array)
            self._transposed.append({})
            self.maps.append(mapping)
            self.copy.append(mapping.clip(theta.clone()) if config.update == "accumulate" else None)
            self.counter.append(
                torch.zeros(theta.shape, dtype=torch.int32) if config.update == "counter" else None
            )
            self.index.append(mapping.index(theta))
            self._program(len(self.arrays) - 1)
        self.initial_writes = [a.writes.clone() for a in self.arrays]
        self.pulses.zero_()
        self.phase_energy = {}

    # -- products -------------------------------------------------------------------------
    def _charge(self, before: torch.Tensor) -> None:
        spent = self.ledger.total_energy() - before
        self.phase_energy[self.phase] = self.phase_energy.get(self.phase, 0.0) + spent

    def forward(self, layer: int, s: torch.Tensor) -> torch.Tensor:
        array = self.arrays[layer]
        before = self.ledger.total_energy()
        current = array.multiply(with_bias(s) * array.v_read)
        self._charge(before)
        return current * (self.maps[layer].scale / array.v_read)

    def backward(self, layer: int, e: torch.Tensor) -> torch.Tensor:
        before = self.ledger.total_energy()
        out = transpose_multiply(self.arrays[layer], e, self._cache(layer))[..., :-1]
        self._charge(before)
        return out * self.maps[layer].scale

    def _cache(self, layer: int) -> dict:
        if not hasattr(self, "_transposed"):  # a checkpoint written before the cache existed
            self._transposed = [{} for _ in self.arrays]
        return self._transposed[layer]

    def __getstate__(self) -> dict:
        """Pickled without the transposed-read cache (recomputed on the next read)."""
        state = dict(self.__dict__)
        state["_transposed"] = [{} for _ in self.arrays]
        return state

    # -- weights --------------------------------------------------------------------------
    def weights(self, layer: int) -> torch.Tensor:
        """The weights the cells hold now (noise-free), ``[n, out, in + 1]``."""
        gp, gm = self.arrays[layer].conductances()
        return self.maps[layer].to_weight(gp, gm).transpose(1, 2)

    def _program(self, layer: int) -> None:
        gp, gm = self.maps[layer].index_conductances(self.index[layer])
        before = self.ledger.total_energy()
        summary = self.arrays[layer].program(
            gp.transpose(1, 2).contiguous(), gm.transpose(1, 2).contiguous(),
            self.config.strategy,
        )  # fmt: skip
        self.pulses += summary.set_pulses + summary.reset_pulses
        self.phase = "program"
        self._charge(before)

    def update(self, layer: int, delta: torch.Tensor) -> None:
        """Apply the weight change ``delta`` (``[n, out, in + 1]``) with the configured scheme."""
        mapping = self.maps[layer]
        top = mapping.n_levels - 1
        if self.config.update == "accumulate":
            self.copy[layer] = mapping.accumulate(self.copy[layer], delta)
            self.index[layer] = mapping.index(self.copy[layer])
            self._program(layer)
        elif self.config.update == "counter":
            k = 2 ** (self.config.counter_bits - 1)
            units = delta / (mapping.weight_step / k)
            low = units.floor()
            draw = torch.rand(units.shape, generator=self.generator)
            counter = self.counter[layer] + (low + (draw < units - low).float()).int()
            carry = torch.div(counter, k, rounding_mode="trunc")
            self.counter[layer] = counter - carry * k
            self.index[layer] = (self.index[layer] + carry.long()).clamp(-top, top)
            self._program(layer)
        else:
            self._manhattan(layer, delta)

    def _manhattan(self, layer: int, delta: torch.Tensor) -> None:
        mapping, array = self.maps[layer], self.arrays[layer]
        prob = (delta.abs() / mapping.weight_step).clamp(max=1.0).transpose(1, 2)
        fire = torch.rand(prob.shape, generator=self.generator) < prob
        up = fire & (delta.transpose(1, 2) > 0)
        down = fire & ~up
        gp, gm = array.conductances()
        positive = gp >= gm
        plus = torch.zeros(prob.shape, dtype=torch.int8)
        minus = torch.zeros(prob.shape, dtype=torch.int8)
        plus[up & positive] = 1  # SET G+
        minus[up & ~positive] = -1  # RESET G-
        plus[down & positive] = -1  # RESET G+
        minus[down & ~positive] = 1  # SET G-
        before = self.ledger.total_energy()
        # The sign comparison reads both cells of every fired pair [E] (read + sense overhead).
        v = self.preset.values
        e_read = (
            fire * ((gp + gm) * v["v_read"] ** 2 * v["read_pulse_s"] + 2 * v["read_overhead_j"])
        ).sum(dim=(1, 2))
        self.ledger.add("read", e_read.double(), 0.0)
        summary = array.pulse(plus, minus)
        self.pulses += summary.set_pulses + summary.reset_pulses
        self.phase = "program"
        self._charge(before)

    # -- accounting -----------------------------------------------------------------------
    def training_writes(self) -> torch.Tensor:
        """Writes per cell since the initial programming, all layers, ``[n, cells]``."""
        return torch.cat(
            [
                (a.writes - w0).reshape(a.n_chips, -1)
                for a, w0 in zip(self.arrays, self.initial_writes, strict=True)
            ],
            dim=1,
        )

    def off_array_bits(self) -> int:
        """Bits per weight the scheme keeps beside the array (besides the level index)."""
        return {"accumulate": 32, "counter": self.config.counter_bits, "manhattan": 0}[
            self.config.update
        ]
