"""The chip interface: the only thing the on-chip learning loop talks to.

A :class:`Chip` object stands for ``n_chips`` chips of identical layout (a batch of
simulated chips, or one or more real chips behind a bench).  Each chip holds named
*arrays*; an array implements one signed weight matrix of ``rows`` inputs by ``cols``
outputs as differential pairs of cells (w ∝ G+ − G−), tiled over ``tile_rows`` x
``tile_cols`` crossbar tiles (a pair takes two physical columns).

Units: conductances in siemens, voltages in volts, currents in amperes, time in seconds,
temperature in kelvin, energy in joules.  Every tensor has a leading chip dimension.

A chip is a resource: ``close()`` releases it (a no-op for a simulated chip, the connection of a
bench), and every chip is a context manager, so ``with chip: ...`` closes it however the block
ends.  The write strategies are those of :data:`memlearn.devices.programming.STRATEGIES`
(re-exported here as ``STRATEGIES``); a chip names those it supports in ``strategies``.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

import torch

from memlearn.devices.programming import STRATEGIES

__all__ = ["STRATEGIES", "ArraySpec", "Chip", "ChipLayout", "ProgramReport", "reference_layout"]


@dataclass(frozen=True)
class ArraySpec:
    """One weight matrix on the chip: ``rows`` inputs x ``cols`` outputs (differential pairs)."""

    name: str
    rows: int
    cols: int

    def __post_init__(self) -> None:
        if not self.name.isidentifier():
            raise ValueError(f"array name {self.name!r} must be a Python identifier")
        if self.rows < 1 or self.cols < 1:
            raise ValueError(
                f"array {self.name!r}: rows and cols must be >= 1, got {self.rows}x{self.cols}"
            )

    @property
    def cells(self) -> int:
        """Physical cells used: two per weight."""
        return 2 * self.rows * self.cols


@dataclass(frozen=True)
class ChipLayout:
    """The arrays of one chip, in data-flow order, and the crossbar tile size in cells."""

    arrays: tuple[ArraySpec, ...]
    tile_rows: int = 32
    tile_cols: int = 32

    def __post_init__(self) -> None:
        names = [a.name for a in self.arrays]
        if len(set(names)) != len(names):
            raise ValueError(f"array names must be unique, got {names}")
        if self.tile_rows < 1 or self.tile_cols < 2:
            raise ValueError("tile_rows must be >= 1 and tile_cols >= 2 (a pair takes two columns)")

    def array(self, name: str) -> ArraySpec:
        for spec in self.arrays:
            if spec.name == name:
                return spec
        raise KeyError(f"unknown array {name!r}; this chip has {[a.name for a in self.arrays]}")

    @property
    def cells(self) -> int:
        return sum(a.cells for a in self.arrays)


def reference_layout() -> ChipLayout:
    """The reference chip's 2 kbit layout (REFERENCE.md §1 [I]).

    FC1 32→16 fills one 32x32 tile (32 rows x 16 pairs); FC2 16→5 sits in a second tile
    (16 rows x 5 pairs).  2,048 cells of the two tiles in all; 1,184 of them hold weights.  The
    other 11 pairs of FC2's 16 rows can serve as spares for column repair
    (:func:`memlearn.chip.layout.with_spares`).
    """
    return ChipLayout(arrays=(ArraySpec("fc1", 32, 16), ArraySpec("fc2", 16, 5)))


@dataclass
class ProgramReport:
    """What one ``program`` call did, per chip (tensors of shape ``[n_chips]``).

    ``cells_written`` counts cells whose target changed and that received pulses;
    ``energy_j`` is the programming energy including verify reads, in joules.
    """

    cells_written: torch.Tensor
    set_pulses: torch.Tensor
    reset_pulses: torch.Tensor
    verify_reads: torch.Tensor
    energy_j: torch.Tensor
    failed_cells: torch.Tensor
    extra: dict[str, torch.Tensor] = field(default_factory=dict)


class Chip(abc.ABC):
    """N chips of one layout that can be read, programmed, multiplied on and aged.

    Every implementation sets ``layout`` (:class:`ChipLayout`), ``n_chips`` and ``levels``: the
    level conductances the chip programs, a 1-D float tensor in siemens, increasing, inside
    :attr:`conductance_window` (the loop maps weights onto exactly these).
    """

    layout: ChipLayout
    n_chips: int
    levels: torch.Tensor

    @property
    def preset_name(self) -> str | None:
        """The device preset's name, when the chip knows it (``None`` otherwise)."""
        return None

    @property
    def strategies(self) -> tuple[str, ...]:
        """The write strategies :meth:`program` accepts (default: all of :data:`STRATEGIES`)."""
        return STRATEGIES

    def close(self) -> None:  # noqa: B027 - a no-op by default, not abstract
        """Release the chip (a bench's connection); idempotent.  A no-op by default."""

    def __enter__(self) -> Chip:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def read_conductances(self, array: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Read every cell of ``array`` with read noise.

        Returns ``(G+, G-)`` in siemens, each ``[n_chips, rows, cols]``.
        """

    @abc.abstractmethod
    def program(
        self,
        array: str,
        g_plus: torch.Tensor,
        g_minus: torch.Tensor,
        strategy: str = "hybrid",
        mask: torch.Tensor | None = None,
    ) -> ProgramReport:
        """Program target conductances (S, ``[n_chips, rows, cols]`` each) with a write strategy.

        ``mask`` (bool, ``[n_chips, rows, cols]``) restricts programming to those weights' pairs;
        cells whose target equals their last programmed target are not written.
        """

    @abc.abstractmethod
    def pulse(self, array: str, plus: torch.Tensor, minus: torch.Tensor) -> ProgramReport:
        """Apply one fixed programming pulse per selected cell, with no verify (Manhattan rule).

        ``plus`` and ``minus`` (integer, ``[n_chips, rows, cols]``, values in {-1, 0, +1}) select,
        for the G+ and G- cell of each pair, one SET pulse (+1), one RESET pulse (-1) or nothing
        (0), at the chip's fixed incremental pulse conditions.
        """

    @abc.abstractmethod
    def multiply(self, array: str, volts: torch.Tensor) -> torch.Tensor:
        """Analog vector-matrix product.

        ``volts``: ``[n_chips, batch, rows]`` read voltages applied to the rows (the chip's DAC
        quantises them); returns ``[n_chips, batch, cols]`` differential column currents
        I+ − I− in amperes, after the chip's ADC.
        """

    @abc.abstractmethod
    def advance(self, seconds: float, kelvin: float = 300.0) -> None:
        """Let time pass at a temperature: relaxation and drift (a bake is a hot advance)."""

    @abc.abstractmethod
    def energy_ledger(self) -> dict[str, torch.Tensor]:
        """Energy spent so far by category (e.g. ``read``, ``program``, ``verify``, ``dac``,
        ``adc``), joules, each ``[n_chips]``."""

    @abc.abstractmethod
    def write_counts(self, array: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Programming operations per cell so far: ``(G+ cells, G- cells)``, each
        ``[n_chips, rows, cols]`` integers."""

    @property
    @abc.abstractmethod
    def conductance_window(self) -> tuple[float, float]:
        """``(G_min, G_max)`` in siemens that targets must lie in."""

    @property
    @abc.abstractmethod
    def read_voltage(self) -> float:
        """The largest read voltage (V) ``multiply`` accepts on a row."""
