"""A batch of crossbar arrays holding one signed weight matrix as differential pairs.

``CrossbarArray(preset, n_chips, rows, cols, generator=...)`` holds ``n_chips`` copies (each
with its own sampled cells) of a ``rows x cols`` matrix of pairs: cell state tensors have shape
``[n_chips, rows, cols, 2]``, the last index 0 for the G+ cell and 1 for the G- cell (physical
columns ``2 j`` and ``2 j + 1``).  It programs only cells whose target changed, keeps a write
counter per cell and an energy/latency ledger, multiplies through DAC/ADC, and ages.
"""

from __future__ import annotations

import math

import torch

from memlearn.crossbar.ledger import ADC_SECONDS_PER_BIT, DAC_SETTLE_S, Ledger
from memlearn.crossbar.vmm import (
    check_bits,
    differential_tiles,
    ir_drop,
    row_inputs,
    tiled_product,
)
from memlearn.crossbar.writes import (
    WriteSummary,
    check_directions,
    check_mask,
    check_targets,
    per_chip_sums,
)
from memlearn.devices.cells import STUCK_NONE, apply_wear, sample_cells
from memlearn.devices.engines import check_engine
from memlearn.devices.physics import read_age
from memlearn.devices.preset import DevicePreset, load_preset
from memlearn.devices.programming import check_strategy, program
from memlearn.devices.retention import equivalent_seconds, relax
from memlearn.errors import MemlearnError

INPUTS_KEPT = 2
"""[E] Row-voltage inputs whose DAC output a :class:`CrossbarArray` keeps (a loop's support and
query sets)."""


class CrossbarArray:
    """``n_chips`` arrays of ``rows x cols`` differential pairs of one device preset.

    ``adc_full_scale`` (A) defaults to ±4 sigma of a tile's column current for uniform random
    inputs and weights, ``4/3 * v_read * (g_max - g_min) * sqrt(rows per tile)`` [E] (larger
    currents clip); ``wire_ohms`` (Ω per cell pitch) > 0
    turns on first-order IR drop; ``read_noise=False`` gives noise-free reads and VMMs;
    ``engine`` runs the program-and-verify pulses (``memlearn.devices.engines.ENGINES``).
    """

    def __init__(
        self,
        preset: DevicePreset | str,
        n_chips: int,
        rows: int,
        cols: int,
        *,
        generator: torch.Generator,
        tile_rows: int = 32,
        tile_cols: int = 32,
        adc_bits: int | None = 8,
        dac_bits: int | None = 8,
        adc_full_scale: float | None = None,
        wire_ohms: float = 0.0,
        read_noise: bool = True,
        tolerance: float | None = None,
        ledger: Ledger | None = None,
        engine: str | None = None,
    ) -> None:
        self.preset = load_preset(preset)
        self.engine = check_engine(engine, generator.device)
        self.technology = self.preset.technology
        for name, value in (("n_chips", n_chips), ("rows", rows), ("cols", cols)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MemlearnError(f"{name} must be an integer >= 1, got {value!r}")
        if tile_rows < 1 or tile_cols < 2 or tile_cols % 2:
            raise MemlearnError(
                f"tile must be >= 1 rows and an even number >= 2 of columns, got "
                f"{tile_rows}x{tile_cols}"
            )
        if wire_ohms < 0:
            raise MemlearnError(f"wire_ohms must be >= 0 Ω, got {wire_ohms}")
        self.n_chips, self.rows, self.cols = n_chips, rows, cols
        self.tile_rows, self.tile_cols = tile_rows, tile_cols
        self.adc_bits = check_bits("adc_bits", adc_bits)
        self.dac_bits = check_bits("dac_bits", dac_bits)
        v = self.preset.values
        self.v_read = v["v_read"]
        # [E] ±4 sigma of a tile's column current for independent uniform inputs in [0, V_read]
        # and differential conductances uniform in ±(G_max - G_min): sigma = V span sqrt(r) / 3
        rows_in_tile = min(rows, tile_rows)
        default_fs = 4.0 / 3.0 * self.v_read * (v["g_max"] - v["g_min"]) * math.sqrt(rows_in_tile)
        self.adc_full_scale = float(adc_full_scale) if adc_full_scale else default_fs
        if not self.adc_full_scale > 0:
            raise MemlearnError(f"adc_full_scale must be > 0 A, got {adc_full_scale}")
        self.wire_ohms = float(wire_ohms)
        self.read_noise = read_noise
        self.tolerance = tolerance
        self.generator = generator
        self.ledger = ledger if ledger is not None else Ledger(n_chips)
        shape = (n_chips, rows, cols, 2)
        self.cells = sample_cells(self.preset, shape, generator)
        self.last_target = torch.full(shape, float("nan"))
        self.writes = torch.zeros(shape, dtype=torch.int32)
        self._cached: tuple[tuple[object, ...], dict[str, torch.Tensor | None]] | None = None
        self._joules: dict[tuple[int, int | None, int], tuple[float, float]] = {}
        self._inputs: dict[int, tuple[torch.Tensor, int, tuple[torch.Tensor, ...]]] = {}
        self._offsets: dict[int, torch.Tensor] = {}  # per_chip_sums' bin offsets per value count

    def _derived(self) -> dict[str, torch.Tensor | None]:
        """What reads and VMMs need of the cells and that changes only when the cells do:
        ``diff``/``var`` (:func:`~memlearn.crossbar.vmm.differential_tiles`), ``sigma`` (S, each
        cell's read-noise standard deviation; ``None`` without read noise), ``g_sum`` (S,
        ``[n, rows]``, a row's cells after IR drop) and ``read_j`` (J per chip of reading every
        cell once).  The read noise is that of each cell's age (:meth:`read_sigmas`).
        Recomputed when ``cells.g`` or ``cells.age_s`` is replaced or written in place (its
        version counter), or when the read-noise or wire settings change."""
        g, age = self.cells.g, self.cells.age_s
        key = (g, g._version, age, age._version, self.read_noise, self.wire_ohms,
               self.tile_rows, self.tile_cols)  # fmt: skip
        if self._cached is not None and all(
            a is b or (not isinstance(a, torch.Tensor) and a == b)
            for a, b in zip(self._cached[0], key, strict=True)
        ):
            return self._cached[1]
        gp = ir_drop(g[..., 0], self.wire_ohms, self.tile_rows, self.tile_cols, 0)
        gm = ir_drop(g[..., 1], self.wire_ohms, self.tile_rows, self.tile_cols, 1)
        sigma = sp = sm = None
        if self.read_noise:  # elementwise: the G+ and G- cells' in one call
            sigma = self.technology.read_sigma(self.preset, g, read_age(self.preset, age))
            sp, sm = sigma[..., 0], sigma[..., 1]
        diff, var = differential_tiles(gp, gm, self.tile_rows, sp, sm)
        derived = {
            "diff": diff,
            "var": var,
            "sigma": sigma,
            "g_sum": (gp + gm).sum(dim=2),
            "read_j": self.technology.read_energy(self.preset, g).sum(dim=(1, 2, 3)),
        }
        self._cached = (key, derived)
        return derived

    def __getstate__(self) -> dict:
        """Pickled without the inputs kept for the VMMs (see :meth:`_row_inputs`)."""
        return {**self.__dict__, "_inputs": {}}

    # -- geometry -------------------------------------------------------------------------
    @property
    def tiles(self) -> tuple[int, int]:
        """Tiles used: (row tiles, column tiles)."""
        return math.ceil(self.rows / self.tile_rows), math.ceil(2 * self.cols / self.tile_cols)

    @property
    def window(self) -> tuple[float, float]:
        return self.preset.window

    # -- reading --------------------------------------------------------------------------
    def conductances(self) -> tuple[torch.Tensor, torch.Tensor]:
        """True (noise-free) conductances ``(G+, G-)`` in siemens, ``[n_chips, rows, cols]``."""
        return self.cells.g[..., 0].clone(), self.cells.g[..., 1].clone()

    def read_sigmas(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Read-noise standard deviations (S) ``(sigma+, sigma-)``, ``[n_chips, rows, cols]``,
        of every cell at its age (:func:`~memlearn.devices.physics.read_age`)."""
        sigma = self._derived()["sigma"]
        if sigma is None:
            g, age = self.cells.g, read_age(self.preset, self.cells.age_s)
            sigma = self.technology.read_sigma(self.preset, g, age)
        return sigma[..., 0], sigma[..., 1]

    def read(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Read every cell once at ``v_read`` with the read noise of its age; charges the
        ``read`` ledger."""
        g = self.cells.g
        derived = self._derived()
        per_chip, sigma = derived["read_j"], derived["sigma"]
        if sigma is not None:
            noisy = self.technology.read(self.preset, g, self.generator, sigma=sigma)
        else:
            noisy = g.clone()
        t = self.preset.values["read_pulse_s"] * self.rows * self.cols * 2
        self.ledger.add("read", per_chip, t)
        return noisy[..., 0], noisy[..., 1]

    # -- programming ----------------------------------------------------------------------
    def program(
        self,
        g_plus: torch.Tensor,
        g_minus: torch.Tensor,
        strategy: str = "hybrid",
        mask: torch.Tensor | None = None,
    ) -> WriteSummary:
        """Program the targets (S) of the pairs selected by ``mask`` whose target changed."""
        check_strategy(strategy)
        shape = (self.n_chips, self.rows, self.cols)
        target = check_targets(shape, self.window, g_plus, g_minus)
        changed = target != self.last_target
        selected = check_mask(shape, mask)
        if selected is not None:
            changed &= selected
        index = changed.view(-1).nonzero().squeeze(1)
        if index.numel() == 0:
            return WriteSummary(*torch.zeros(7, self.n_chips, dtype=torch.float64))
        every = index.numel() == changed.numel()  # e.g. a deployment: no copy out and back
        wanted = target.view(-1) if every else target.view(-1)[index]
        part = self.cells.flat() if every else self.cells.take(index)
        result = program(
            self.preset,
            wanted,
            strategy,
            generator=self.generator,
            cells=part,
            tolerance=self.tolerance,
            engine=self.engine,
        )
        pulses = result.set_pulses + result.reset_pulses
        written = pulses > 0
        if every:  # the cells were written in place
            self.last_target.view(-1).copy_(wanted)
            self.writes.view(-1).add_(written.int())
        else:
            self.cells.put(index, result.cells, frozen=False)  # a write changes no frozen field
            self.last_target.view(-1)[index] = wanted
            self.writes.view(-1).index_add_(0, index, written.int())  # index: distinct cells
        v = self.preset.values
        pulse_energy = result.energy_j - result.verify_energy_j
        pulse_time = result.set_pulses * v.get("set_pulse_s", 0.0) + result.reset_pulses * v.get(
            "reset_pulse_s", 0.0
        )
        verify_time = result.verify_reads * v["read_pulse_s"]
        sums = per_chip_sums(
            index, self.rows * self.cols * 2, self.n_chips, self._offsets,
            pulse_energy, pulse_time, result.verify_energy_j, verify_time,
            written, result.set_pulses, result.reset_pulses, result.verify_reads,
            result.energy_j, result.failed,
        )  # fmt: skip
        self.ledger.add("program", sums[0], sums[1])
        self.ledger.add("verify", sums[2], sums[3])
        return WriteSummary(*sums[4:9], sums[2], sums[9])

    def pulse(self, plus: torch.Tensor, minus: torch.Tensor) -> WriteSummary:
        """One fixed incremental pulse per selected cell (+1 SET, -1 RESET, 0 none), no verify."""
        if not self.technology.incremental:
            raise MemlearnError(
                self.technology.unsupported(self.preset, "fixed incremental pulses")
            )
        direction = check_directions((self.n_chips, self.rows, self.cols), plus, minus)
        index = (direction != 0).view(-1).nonzero().squeeze(1)
        zeros = torch.zeros(self.n_chips, dtype=torch.float64)
        if index.numel() == 0:
            return WriteSummary(*(zeros.clone() for _ in range(7)))
        part = self.cells.take(index)
        d = direction.view(-1)[index]
        g_new, energy = self.technology.increment(
            self.preset, part.g, d, part.set_gain, part.reset_shift, self.generator
        )
        healthy = part.stuck == STUCK_NONE
        part.g = torch.where(healthy, g_new, part.g)
        part.reset_final = d < 0
        part.pulses += 1
        apply_wear(self.preset, part)
        part.age_s.zero_()
        relax(self.preset, part, self.preset.values["settle_s"], self.generator)
        self.cells.put(index, part)
        self.last_target.view(-1)[index] = float("nan")
        self.writes.view(-1)[index] += 1
        v = self.preset.values
        sets = (d > 0).float()
        resets = (d < 0).float()
        t_pulse = sets * v.get("set_pulse_s", 0.0) + resets * v.get("reset_pulse_s", 0.0)
        sums = per_chip_sums(
            index, self.rows * self.cols * 2, self.n_chips, self._offsets,
            energy, t_pulse, torch.ones_like(sets), sets, resets,
        )  # fmt: skip
        self.ledger.add("program", sums[0], sums[1])
        return WriteSummary(
            cells_written=sums[2],
            set_pulses=sums[3],
            reset_pulses=sums[4],
            verify_reads=zeros.clone(),
            energy_j=sums[0],
            verify_energy_j=zeros.clone(),
            failed_cells=zeros.clone(),
        )

    # -- computing ------------------------------------------------------------------------
    def multiply(self, volts: torch.Tensor) -> torch.Tensor:
        """Differential column currents (A) ``[n_chips, batch, cols]`` for row voltages
        ``volts [n_chips, batch, rows]`` (|V| <= v_read).

        Charges the ledger per input vector (vectors one after another; all rows, columns and
        tiles in parallel): ``dac`` ``rows * dac_j`` J and ``DAC_SETTLE_S``; ``read`` the cell
        currents' ``sum V^2 G t_read`` J and ``read_pulse_s``; ``adc`` one conversion per tile
        column, ``adc_fom_j * 2^adc_bits`` J each, in ``adc_bits * ADC_SECONDS_PER_BIT``.
        """
        v_in, v_sq, per_row = self._row_inputs(volts)
        derived = self._derived()
        out = tiled_product(
            v_in, derived["diff"], derived["var"], self.adc_bits, self.adc_full_scale,
            self.generator, volts_squared=v_sq,
        )  # fmt: skip
        batch = volts.shape[1]
        t_read = self.preset.values["read_pulse_s"]
        cell_energy = torch.bmm(per_row, derived["g_sum"].unsqueeze(2)).view(-1) * t_read
        self.ledger.add("read", cell_energy, batch * t_read)
        e_dac, e_adc = self._converter_joules(batch)
        self.ledger.add("dac", e_dac, batch * DAC_SETTLE_S)
        if self.adc_bits is not None:
            t_adc = batch * self.adc_bits * ADC_SECONDS_PER_BIT
            self.ledger.add("adc", e_adc, t_adc)
        return out

    def _row_inputs(self, volts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """:func:`~memlearn.crossbar.vmm.row_inputs` of ``volts``, kept for the last
        :data:`INPUTS_KEPT` inputs, which a loop applies again and again (the same tensor,
        unchanged since: its version counter)."""
        hit = self._inputs.get(id(volts))
        if hit is not None and hit[0] is volts and hit[1] == volts._version:
            return hit[2]
        prepared = row_inputs(volts, self.n_chips, self.rows, self.v_read, self.dac_bits)
        if len(self._inputs) >= INPUTS_KEPT:
            self._inputs.pop(next(iter(self._inputs)))  # the oldest
        self._inputs[id(volts)] = (volts, volts._version, prepared)
        return prepared

    def _converter_joules(self, batch: int) -> tuple[float, float]:
        """DAC and ADC energy (J per chip) of ``batch`` input vectors, rounded to float32 as
        the ledger has always charged them; cached per batch size and converter setting."""
        key = (batch, self.adc_bits, self.tile_rows)
        cached = self._joules.get(key)
        if cached is None:
            v = self.preset.values
            conversions = batch * self.tiles[0] * self.cols
            e_adc = (
                0.0 if self.adc_bits is None else conversions * v["adc_fom_j"] * 2**self.adc_bits
            )
            pair = torch.tensor([batch * self.rows * v["dac_j"], e_adc], dtype=torch.float32)
            cached = self._joules[key] = (float(pair[0]), float(pair[1]))
        return cached

    # -- time -----------------------------------------------------------------------------
    def advance(self, seconds: float, kelvin: float = 300.0) -> None:
        """Let ``seconds`` pass at ``kelvin``: relaxation accelerated by Arrhenius."""
        relax(
            self.preset, self.cells, equivalent_seconds(self.preset, seconds, kelvin),
            self.generator,
        )  # fmt: skip
