"""``SimulatedChip``: ``n_chips`` simulated chips of one layout, batched, behind ``Chip``.

Each array of the layout is a ``CrossbarArray`` of the chosen device preset; every chip has
its own sampled device-to-device variation, stuck cells and endurance (seeded).  Example::

    chip = SimulatedChip(16, preset="hfo2-mlc", layout=reference_layout(), levels=8, seed=0)
    gp, gm = ...                      # targets in chip.conductance_window, [16, 32, 16] each
    report = chip.program("fc1", gp, gm, strategy="hybrid")
    currents = chip.multiply("fc1", volts)     # volts [16, batch, 32] → amperes [16, batch, 16]
    chip.advance(12 * 3600, kelvin=423.15)     # a 12 h bake at 150 °C

``device`` (e.g. ``"cuda"``) keeps the cells and the generator on that torch device: every
method runs with it as torch's default device (:func:`on_device`) and moves its tensor
arguments there; results stay there.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable
from typing import Any, TypeVar

import torch

from memlearn.bounds import check_kelvin, check_seconds
from memlearn.chip.base import Chip, ChipLayout, ProgramReport, reference_layout
from memlearn.crossbar.array import CrossbarArray
from memlearn.crossbar.ledger import Ledger
from memlearn.crossbar.writes import WriteSummary
from memlearn.devices.cells import STUCK_NONE
from memlearn.devices.preset import DEFAULT_PRESET, DevicePreset, load_preset
from memlearn.devices.retention import relax
from memlearn.errors import MemlearnError

_F = TypeVar("_F", bound=Callable[..., Any])


def on_device(device: torch.device | str | None) -> contextlib.AbstractContextManager[Any]:
    """A context in which torch creates tensors on ``device`` (nothing for ``None``): the
    simulation's code, written device-free, then runs there."""
    return contextlib.nullcontext() if device is None else torch.device(device)


def _on_chip_device(method: _F) -> _F:
    """Run ``method`` on the chip's device, its tensor arguments moved there."""

    @functools.wraps(method)
    def run(self: SimulatedChip, *args: Any, **kwargs: Any) -> Any:
        if self.device is None:
            return method(self, *args, **kwargs)
        move = [a.to(self.device) if isinstance(a, torch.Tensor) else a for a in args]
        named = {k: v.to(self.device) if isinstance(v, torch.Tensor) else v
                 for k, v in kwargs.items()}  # fmt: skip
        with on_device(self.device):
            return method(self, *move, **named)

    return run  # type: ignore[return-value]


def _report(summary: WriteSummary) -> ProgramReport:
    counts = (summary.cells_written, summary.set_pulses, summary.reset_pulses,
              summary.verify_reads, summary.failed_cells)  # fmt: skip
    written, sets, resets, reads, failed = torch.stack(counts).round_().long().unbind(0)
    return ProgramReport(
        cells_written=written,
        set_pulses=sets,
        reset_pulses=resets,
        verify_reads=reads,
        energy_j=summary.energy_j,
        failed_cells=failed,
        extra={"verify_energy_j": summary.verify_energy_j},
    )


class SimulatedChip(Chip):
    """A batch of simulated chips.

    ``levels`` (>= 2) places that many target levels in the preset's window, evenly in G
    (``spacing="linear"``) or in ln G (``"log"``) (``self.levels``, S); the chip itself accepts
    any target inside the window.  ``adc_bits``
    / ``dac_bits`` (None = ideal), ``adc_full_scale`` (A), ``wire_ohms`` (IR drop),
    ``read_noise``, ``tolerance`` (verify band half width, S) and ``engine`` (the
    program-and-verify engine, ``memlearn.devices.engines.ENGINES``) pass to every array.
    """

    def __init__(
        self,
        n_chips: int,
        preset: str | DevicePreset = DEFAULT_PRESET,
        layout: ChipLayout | None = None,
        levels: int = 8,
        seed: int = 0,
        adc_bits: int | None = 8,
        dac_bits: int | None = 8,
        adc_full_scale: float | None = None,
        wire_ohms: float = 0.0,
        read_noise: bool = True,
        tolerance: float | None = None,
        spacing: str = "linear",
        device: torch.device | str | None = None,
        engine: str | None = None,
    ) -> None:
        self.device = None if device is None else torch.device(device)
        with on_device(self.device):
            self._build(n_chips, preset, layout, levels, seed, spacing)
            for spec in self.layout.arrays:
                self.arrays[spec.name] = CrossbarArray(
                    self.preset, n_chips, spec.rows, spec.cols, generator=self.generator,
                    tile_rows=self.layout.tile_rows, tile_cols=self.layout.tile_cols,
                    adc_bits=adc_bits, dac_bits=dac_bits, adc_full_scale=adc_full_scale,
                    wire_ohms=wire_ohms, read_noise=read_noise, tolerance=tolerance,
                    ledger=self.ledger, engine=engine,
                )  # fmt: skip

    def _build(
        self,
        n_chips: int,
        preset: str | DevicePreset,
        layout: ChipLayout | None,
        levels: int,
        seed: int,
        spacing: str,
    ) -> None:
        if isinstance(n_chips, bool) or not isinstance(n_chips, int) or n_chips < 1:
            raise MemlearnError(f"n_chips must be an integer >= 1, got {n_chips!r}")
        self.preset = load_preset(preset)
        self.layout = layout if layout is not None else reference_layout()
        self.n_chips = n_chips
        self.levels = self.preset.levels(levels, spacing=spacing)
        self.generator = torch.Generator(device=self.device or "cpu").manual_seed(int(seed))
        self.ledger = Ledger(n_chips)
        self.arrays: dict[str, CrossbarArray] = {}

    def _array(self, name: str) -> CrossbarArray:
        if name not in self.arrays:
            raise MemlearnError(f"unknown array {name!r}; this chip has {list(self.arrays)}")
        return self.arrays[name]

    @_on_chip_device
    def read_conductances(self, array: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self._array(array).read()

    @_on_chip_device
    def true_conductances(self, array: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The simulator's exact conductances (S), no read noise, no ledger charge."""
        return self._array(array).conductances()

    @_on_chip_device
    def program(
        self,
        array: str,
        g_plus: torch.Tensor,
        g_minus: torch.Tensor,
        strategy: str = "hybrid",
        mask: torch.Tensor | None = None,
    ) -> ProgramReport:
        return _report(self._array(array).program(g_plus, g_minus, strategy, mask))

    @_on_chip_device
    def last_targets(self, array: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The targets (S) each cell was last programmed to, ``(G+, G-)`` each
        ``[n_chips, rows, cols]`` (NaN: never programmed, or reset since)."""
        target = self._array(array).last_target
        return target[..., 0].clone(), target[..., 1].clone()

    @_on_chip_device
    def place(
        self, array: str, g_plus: torch.Tensor, g_minus: torch.Tensor, cells: torch.Tensor
    ) -> None:
        """What-if, for attribution studies: put the healthy (not stuck) cells selected by
        ``cells`` (bool ``[n_chips, rows, cols, 2]``: G+, G-) exactly on their targets
        (``g_plus``/``g_minus``, S, clipped to the window) and let them relax for the preset's
        ``settle_s`` from there, as a freshly programmed cell does.  No pulses, no energy."""
        arr = self._array(array)
        target = torch.stack((g_plus, g_minus), dim=-1).float()
        lo, hi = arr.window
        index = (cells & (arr.cells.stuck == STUCK_NONE)).view(-1).nonzero().squeeze(1)
        if index.numel():
            part = arr.cells.take(index)
            part.g = target.clamp(lo, hi).view(-1)[index]
            part.age_s.zero_()
            relax(self.preset, part, self.preset.values.get("settle_s", 0.0), self.generator)
            arr.cells.put(index, part)

    @_on_chip_device
    def pulse(self, array: str, plus: torch.Tensor, minus: torch.Tensor) -> ProgramReport:
        return _report(self._array(array).pulse(plus, minus))

    @_on_chip_device
    def multiply(self, array: str, volts: torch.Tensor) -> torch.Tensor:
        return self._array(array).multiply(volts)

    @_on_chip_device
    def advance(self, seconds: float, kelvin: float = 300.0) -> None:
        seconds, kelvin = check_seconds(seconds), check_kelvin(kelvin)
        for arr in self.arrays.values():
            arr.advance(seconds, kelvin)

    def energy_ledger(self) -> dict[str, torch.Tensor]:
        return self.ledger.energy_by_category()

    def latency_ledger(self) -> dict[str, torch.Tensor]:
        """Time spent so far by category (s), each ``[n_chips]`` (cells written serially)."""
        return self.ledger.latency_by_category()

    def write_counts(self, array: str) -> tuple[torch.Tensor, torch.Tensor]:
        w = self._array(array).writes
        return w[..., 0].clone(), w[..., 1].clone()

    @property
    def preset_name(self) -> str:
        return self.preset.name

    @property
    def conductance_window(self) -> tuple[float, float]:
        return self.preset.window

    @property
    def read_voltage(self) -> float:
        return self.preset.values["v_read"]
