"""The interface every cell technology implements, and the per-cell tally a write fills in.

A technology (multi-level ReRAM in ``rram.py``, FeRAM in ``feram.py``, ...) is a stateless
object registered in ``memlearn.devices.technologies`` under the ``kind`` a preset file names
in its ``[meta]`` table.  Everything that differs between technologies goes through it:

- preset parameters: ``required`` names, ``optional`` defaults, ``check(preset)``;
- state: ``sample(preset, shape, generator)``, the kind-specific part of fresh cells
  (``cells.sample_cells`` adds stuck cells and endurance, common to all);
- programming: ``write(preset, cells, target, strategy, tolerance, max_pulses, generator,
  tally)``, the pulses of one program operation, their counts and energies (J) in the
  ``WriteTally`` (``programming.program`` adds validation, wear and the settle time; a
  technology without strategies ignores ``strategy``);
- reading: ``read``, ``read_sigma``, ``read_energy`` (J) (defaults: ``physics``' read model);
- time: ``relax(preset, cells, seconds, generator)`` (default: cells only age);
- capabilities: ``states`` (``None``: a continuum of levels placed by the write strategies,
  else the number of states a cell stores), ``increment`` (fixed incremental pulses; default:
  unsupported, ``incremental`` says whether it is supported), ``reachable_window`` (``None``:
  the window only represents the states).

A new technology is a new module with a subclass plus one entry in ``technologies.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import torch

from memlearn.devices import physics
from memlearn.errors import MemlearnError

if TYPE_CHECKING:
    from memlearn.devices.cells import CellState
    from memlearn.devices.preset import DevicePreset
    from memlearn.devices.strategies import WriteStrategy


@dataclass
class WriteTally:
    """Per-cell outcome of one program operation, 1-D over the cells written: pulse counts
    (int32), ``energy`` (J, pulses plus verify reads, float32), ``verify_energy`` (J, the
    verify reads' share) and ``failed`` (bool: never verified in its band)."""

    set_pulses: torch.Tensor
    reset_pulses: torch.Tensor
    verify_reads: torch.Tensor
    energy: torch.Tensor
    verify_energy: torch.Tensor
    failed: torch.Tensor

    @classmethod
    def zeros(cls, n: int) -> WriteTally:
        """A tally of ``n`` cells that received nothing yet."""
        i32 = {"dtype": torch.int32}
        return cls(
            set_pulses=torch.zeros(n, **i32),
            reset_pulses=torch.zeros(n, **i32),
            verify_reads=torch.zeros(n, **i32),
            energy=torch.zeros(n, dtype=torch.float32),
            verify_energy=torch.zeros(n, dtype=torch.float32),
            failed=torch.zeros(n, dtype=torch.bool),
        )


class CellTechnology:
    """Base class of a cell technology; see the module docstring for the interface."""

    kind: ClassVar[str]
    required: ClassVar[frozenset[str]]
    optional: ClassVar[dict[str, tuple[float, str]]] = {}
    states: ClassVar[int | None] = None
    incremental: ClassVar[bool] = False

    def check(self, preset: DevicePreset) -> None:
        """Technology-specific consistency checks of a preset (``MemlearnError``)."""

    def sample(
        self, preset: DevicePreset, shape: tuple[int, ...], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(g, set_gain, reset_shift)`` of fresh healthy cells of ``shape``."""
        raise NotImplementedError

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
        """Program the flat ``cells`` (in place) towards ``target`` (S, 1-D), filling ``tally``."""
        raise NotImplementedError

    def read(
        self,
        preset: DevicePreset,
        g: torch.Tensor,
        gen: torch.Generator,
        age: float | torch.Tensor | None = None,
        sigma: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """A noisy read of conductances ``g`` (S) programmed ``age`` s ago (tensor like ``g``
        or float; ``None``: the preset's ``settle_s``); ``sigma``: the read noise (S) of
        :meth:`read_sigma` when the caller already has it."""
        return physics.read(preset, g, gen, age, sigma)

    def read_sigma(
        self, preset: DevicePreset, g: torch.Tensor, age: float | torch.Tensor | None = None
    ) -> torch.Tensor:
        """Read-noise standard deviation (S) of conductances ``g`` programmed ``age`` s ago
        (as :meth:`read`)."""
        return physics.read_sigma(preset, g, age)

    def read_energy(self, preset: DevicePreset, g: torch.Tensor) -> torch.Tensor:
        """Energy (J) of one read per cell of conductance ``g``."""
        return physics.read_energy(preset, g)

    def relax(
        self, preset: DevicePreset, cells: CellState, seconds: float, gen: torch.Generator
    ) -> None:
        """Age ``cells`` (in place) by ``seconds`` (> 0) effective seconds; default: no drift."""
        cells.age_s += seconds

    def increment(
        self,
        preset: DevicePreset,
        g: torch.Tensor,
        direction: torch.Tensor,
        gain: torch.Tensor,
        shift: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One fixed incremental pulse per cell: ``(new G in S, energy in J)``."""
        raise MemlearnError(self.unsupported(preset, "fixed incremental pulses"))

    def reachable_window(self, preset: DevicePreset) -> tuple[float, float] | None:
        """``(lowest, highest)`` conductance (S) a write can reach, or ``None`` when the
        window is only a representation of the states (any window will do; the default)."""
        return None

    def unsupported(self, preset: DevicePreset, what: str) -> str:
        """The error message for an operation (``what``) this technology does not support."""
        return f"{what} need a resistive (rram) preset; {preset.name!r} is {preset.kind}"
