"""The Chip interface every implementation offers: levels in siemens, preset and strategy names,
close() and use as a context manager; SimulatedChip's public what-if placement."""

from __future__ import annotations

import pytest
import torch

from memlearn.chip.base import STRATEGIES, ArraySpec, ChipLayout
from memlearn.chip.layout import output_layout
from memlearn.chip.repair import RepairedChip, repair_output
from memlearn.chip.simulated import SimulatedChip
from memlearn.devices import programming
from memlearn.devices.cells import STUCK_NONE

LAYOUT = ChipLayout((ArraySpec("fc1", 6, 4), ArraySpec("fc2", 4, 3)))


def _chip(seed: int = 0, levels: int = 8) -> SimulatedChip:
    return SimulatedChip(2, preset="hfo2-mlc", layout=LAYOUT, levels=levels, seed=seed)


def test_strategy_names_are_defined_once():
    assert STRATEGIES is programming.STRATEGIES
    assert _chip().strategies == STRATEGIES


def test_simulated_chip_levels_preset_and_window():
    chip = _chip(levels=5)
    g_min, g_max = chip.conductance_window
    assert chip.levels.dtype == torch.float32 and chip.levels.shape == (5,)
    assert float(chip.levels[0]) == pytest.approx(g_min, rel=1e-6)
    assert float(chip.levels[-1]) == pytest.approx(g_max, rel=1e-6)
    assert bool((chip.levels[1:] > chip.levels[:-1]).all())
    assert chip.preset_name == "hfo2-mlc"


def test_repaired_chip_shows_the_chip_s_levels_preset_and_strategies():
    chip = _chip()
    repaired = repair_output(
        SimulatedChip(2, layout=output_layout(LAYOUT, 2), seed=1), LAYOUT, "hybrid"
    )
    assert isinstance(repaired, RepairedChip)
    assert torch.equal(repaired.levels, chip.levels)
    assert repaired.preset_name == "hfo2-mlc" and repaired.strategies == STRATEGIES


class _Closable(SimulatedChip):
    closed = 0

    def close(self) -> None:
        self.closed += 1


def test_close_is_a_no_op_by_default_and_with_closes():
    chip = _chip()
    chip.close()  # the base class's no-op: the chip still works
    assert chip.read_conductances("fc1")[0].shape == (2, 6, 4)
    with _Closable(1, layout=LAYOUT) as inner:
        pass
    assert inner.closed == 1
    repaired = RepairedChip(_Closable(1, layout=LAYOUT), {})
    with pytest.raises(RuntimeError), repaired:
        raise RuntimeError("the block fails")
    assert repaired.chip.closed == 1  # closing the view closes the chip behind it


def test_place_puts_healthy_selected_cells_on_target():
    chip = _chip(seed=3)
    arr = chip.arrays["fc1"]
    stuck = arr.cells.stuck != STUCK_NONE
    target = torch.full((2, 6, 4), 80e-6)
    chip.program("fc1", target, target)
    assert torch.equal(chip.last_targets("fc1")[0], target)
    cells = torch.zeros(2, 6, 4, 2, dtype=torch.bool)
    cells[0] = True  # chip 0 only
    before = arr.conductances()[0][1].clone()
    chip.place("fc1", torch.full((2, 6, 4), 50e-6), torch.full((2, 6, 4), 50e-6), cells)
    g_plus = arr.conductances()[0]
    healthy = ~stuck[0, ..., 0]
    settle = chip.preset.values.get("settle_s", 0.0)
    tol = 20e-6 if settle > 0 else 1e-12  # relaxation over the settle time only
    assert ((g_plus[0][healthy] - 50e-6).abs() <= tol).all()
    assert torch.equal(g_plus[1], before)  # chip 1 not selected: untouched
