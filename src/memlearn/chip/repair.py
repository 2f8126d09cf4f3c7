"""Column repair: spare differential pairs in an array stand in for pairs with faulty cells.

A memory array carries spare columns for repair; the reference chip's second tile holds FC2's
5 column pairs in 16 rows and leaves 11 pairs of those rows unused.  Before deployment the
computer in the loop runs a test pass (:func:`scan_faults`: program every cell of the array to
a mid-window level with program-and-verify, read it back, flag the cells read far from it, as
a built-in self-test does), then :func:`choose_pairs` keeps, per chip, the pairs of each output
column with the fewest faulty cells, and :class:`RepairedChip` shows the loop only those.

FC2's meta-learned weights all start on level 0 (the output classes are interchangeable until
a task assigns them), so the choice costs nothing; a stuck cell in FC2 fixes one class's weight
from one hidden unit for good (README, "On-chip adaptation", for what healing them is worth).
"""

from __future__ import annotations

import torch

from memlearn.chip.base import ArraySpec, Chip, ChipLayout, ProgramReport


def scan_faults(chip: Chip, array: str, strategy: str, fault_fraction: float) -> torch.Tensor:
    """Faulty cells of ``array`` per chip, ``[n_chips, rows, cols]`` bool (either cell of the
    pair): programmed to the middle of the conductance window and read more than
    ``fault_fraction`` of the window away from it (stuck, worn out, or failing to verify).

    The test pass is spent on the chips like any programming (its energy is in the ledger)."""
    if not 0 < fault_fraction <= 1:
        raise ValueError(f"fault_fraction must be in (0, 1], got {fault_fraction}")
    spec = chip.layout.array(array)
    g_min, g_max = chip.conductance_window
    middle = torch.full((chip.n_chips, spec.rows, spec.cols), 0.5 * (g_min + g_max))
    chip.program(array, middle, middle, strategy=strategy)
    g_plus, g_minus = chip.read_conductances(array)
    limit = fault_fraction * (g_max - g_min)
    return ((g_plus - middle).abs() > limit) | ((g_minus - middle).abs() > limit)


def choose_pairs(faulty: torch.Tensor, needed: int) -> torch.Tensor:
    """Per chip, the ``needed`` column pairs with the fewest faulty cells (ties: the lower
    column), in ascending column order: ``[n_chips, needed]`` int64.  ``faulty``:
    ``[n_chips, rows, cols]`` bool."""
    cols = faulty.shape[-1]
    if not 1 <= needed <= cols:
        raise ValueError(f"cannot choose {needed} of {cols} column pairs")
    per_column = faulty.sum(dim=1).long()  # [n, cols]
    order = per_column * cols + torch.arange(cols)  # fewest faults first, then lowest column
    return order.topk(needed, dim=1, largest=False).indices.sort(dim=1).values


class RepairedChip(Chip):
    """``chip`` seen through a choice of column pairs: array ``name`` of ``logical`` outputs
    lives on the pairs ``columns[name]`` (``[n_chips, logical]``) of the physical array.

    Reads, products and write counts show the chosen pairs only; programming writes them and
    leaves the other pairs alone.  Energy, time, levels, preset, strategies and ``close`` are
    the chip's own.
    """

    test_energy_j: torch.Tensor | None = None
    faulty_pairs: torch.Tensor | None = None

    def __init__(self, chip: Chip, columns: dict[str, torch.Tensor]) -> None:
        self.chip, self.columns, self.n_chips = chip, columns, chip.n_chips
        specs = []
        for spec in chip.layout.arrays:
            chosen = columns.get(spec.name)
            if chosen is not None:
                if chosen.shape[0] != chip.n_chips or int(chosen.max()) >= spec.cols:
                    raise ValueError(f"column choice for {spec.name!r} does not fit the array")
                spec = ArraySpec(spec.name, spec.rows, chosen.shape[1])
            specs.append(spec)
        self.layout = ChipLayout(
            tuple(specs), tile_rows=chip.layout.tile_rows, tile_cols=chip.layout.tile_cols
        )

    @property
    def levels(self) -> torch.Tensor:  # type: ignore[override]
        return self.chip.levels

    @property
    def preset_name(self) -> str | None:
        return self.chip.preset_name

    @property
    def strategies(self) -> tuple[str, ...]:
        return self.chip.strategies

    def close(self) -> None:
        self.chip.close()

    def _index(self, array: str, shape: torch.Size) -> torch.Tensor | None:
        """The chosen columns of ``array`` expanded to ``shape`` (``[n, ..., logical]``), kept
        per array and shape (``None``: the array has no choice)."""
        chosen = self.columns.get(array)
        if chosen is None:
            return None
        kept = self.__dict__.setdefault("_indices", {})
        key = (array, tuple(shape), chosen.device)
        hit = kept.get(key)
        if hit is None or hit[0] is not chosen:
            hit = kept[key] = (chosen, chosen.unsqueeze(1).expand(*shape[:-1], chosen.shape[1]))
        return hit[1]

    def _gather(self, array: str, t: torch.Tensor) -> torch.Tensor:
        index = self._index(array, t.shape)
        return t if index is None else t.gather(-1, index)

    def _scatter(self, array: str, t: torch.Tensor, fill: torch.Tensor) -> torch.Tensor:
        index = self._index(array, t.shape)
        return t if index is None else fill.scatter(-1, index, t)

    def _fill(self, array: str, value: float | bool, dtype: torch.dtype) -> torch.Tensor:
        """A physical-array tensor full of ``value`` (read only: scattered out of place),
        kept per array, value and dtype."""
        kept = self.__dict__.setdefault("_fills", {})
        device = self.columns[array].device
        key = (array, value, dtype, device)
        if key not in kept:
            kept[key] = torch.full(self._physical_shape(array), value, dtype=dtype, device=device)
        return kept[key]

    def _physical_shape(self, array: str) -> tuple[int, int, int]:
        spec = self.chip.layout.array(array)
        return (self.n_chips, spec.rows, spec.cols)

    def read_conductances(self, array: str) -> tuple[torch.Tensor, torch.Tensor]:
        g_plus, g_minus = self.chip.read_conductances(array)
        return self._gather(array, g_plus), self._gather(array, g_minus)

    def program(
        self,
        array: str,
        g_plus: torch.Tensor,
        g_minus: torch.Tensor,
        strategy: str = "hybrid",
        mask: torch.Tensor | None = None,
    ) -> ProgramReport:
        if array not in self.columns:
            return self.chip.program(array, g_plus, g_minus, strategy=strategy, mask=mask)
        g_min = float(self.chip.conductance_window[0])
        mask = torch.ones_like(g_plus, dtype=torch.bool) if mask is None else mask
        full_mask = self._scatter(array, mask, self._fill(array, False, torch.bool))
        filler = self._fill(array, g_min, g_plus.dtype)
        return self.chip.program(
            array,
            self._scatter(array, g_plus, filler),
            self._scatter(array, g_minus, filler),
            strategy=strategy,
            mask=full_mask,
        )

    def pulse(self, array: str, plus: torch.Tensor, minus: torch.Tensor) -> ProgramReport:
        if array not in self.columns:
            return self.chip.pulse(array, plus, minus)
        none = torch.zeros(self._physical_shape(array), dtype=plus.dtype)
        return self.chip.pulse(
            array, self._scatter(array, plus, none), self._scatter(array, minus, none)
        )

    def multiply(self, array: str, volts: torch.Tensor) -> torch.Tensor:
        return self._gather(array, self.chip.multiply(array, volts))

    def advance(self, seconds: float, kelvin: float = 300.0) -> None:
        self.chip.advance(seconds, kelvin)

    def energy_ledger(self) -> dict[str, torch.Tensor]:
        return self.chip.energy_ledger()

    def latency_ledger(self) -> dict[str, torch.Tensor]:
        get = getattr(self.chip, "latency_ledger", None)
        return {} if get is None else get()

    def write_counts(self, array: str) -> tuple[torch.Tensor, torch.Tensor]:
        plus, minus = self.chip.write_counts(array)
        return self._gather(array, plus), self._gather(array, minus)

    @property
    def conductance_window(self) -> tuple[float, float]:
        return self.chip.conductance_window

    @property
    def read_voltage(self) -> float:
        return self.chip.read_voltage


def repair_columns(
    chip: Chip, array: str, needed: int, strategy: str, fault_fraction: float = 0.2
) -> RepairedChip:
    """Test ``array`` (:func:`scan_faults`), choose ``needed`` pairs per chip and return the
    chip seen through them (closing it closes ``chip``).  The result's ``test_energy_j``
    (``[n_chips]`` J) is what the test pass cost, ``faulty_pairs`` (``[n_chips]``) the pairs it
    found a faulty cell in."""
    before = sum(e.double() for e in chip.energy_ledger().values())
    faulty = scan_faults(chip, array, strategy, fault_fraction)
    repaired = RepairedChip(chip, {array: choose_pairs(faulty, needed)})
    after = sum(e.double() for e in chip.energy_ledger().values())
    repaired.test_energy_j = after - before
    repaired.faulty_pairs = faulty.sum(dim=(1, 2))
    return repaired


def repair_output(chip: Chip, layout: ChipLayout, strategy: str) -> Chip:
    """``chip`` (built on :func:`~memlearn.chip.layout.output_layout` of the model's ``layout``)
    with its output array repaired (:func:`repair_columns`) when it has spare pairs; ``chip``
    itself when it has none."""
    output = layout.arrays[-1]
    if chip.layout.array(output.name).cols == output.cols:
        return chip
    return repair_columns(chip, output.name, output.cols, strategy)
