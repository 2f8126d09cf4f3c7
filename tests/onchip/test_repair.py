"""Column repair: the test pass finds faulty cells, the healthiest pairs are chosen, and the
repaired chip shows and programs exactly those pairs."""

from __future__ import annotations

import pytest
import torch

from memlearn.chip.base import ArraySpec, ChipLayout
from memlearn.chip.layout import output_layout, tile_spares, with_spares
from memlearn.chip.repair import (
    RepairedChip,
    choose_pairs,
    repair_columns,
    repair_output,
    scan_faults,
)
from memlearn.chip.simulated import SimulatedChip
from memlearn.devices.cells import STUCK_HIGH, STUCK_LOW, STUCK_NONE

LAYOUT = ChipLayout((ArraySpec("fc1", 6, 4), ArraySpec("fc2", 4, 7)))


def _chip(seed: int = 0) -> SimulatedChip:
    chip = SimulatedChip(3, preset="hfo2-mlc", layout=LAYOUT, levels=8, seed=seed)
    cells = chip.arrays["fc2"].cells  # [chips, rows, cols, 2]: no stuck cells but ours
    cells.stuck[cells.stuck != STUCK_NONE] = STUCK_NONE
    return chip


def _stick(chip: SimulatedChip, where: list[tuple[int, int, int, int]], kind: int) -> None:
    cells = chip.arrays["fc2"].cells
    g = {STUCK_LOW: 1e-6, STUCK_HIGH: 200e-6}[kind]
    for c, r, k, side in where:
        cells.stuck[c, r, k, side] = kind
        cells.g[c, r, k, side] = g


def test_choose_pairs_fewest_faults_then_lowest_column():
    faulty = torch.zeros(2, 3, 5, dtype=torch.bool)
    faulty[0, 0, 1] = faulty[0, 2, 1] = faulty[0, 1, 3] = True  # chip 0: columns 1 (2), 3 (1)
    faulty[1, :, 0] = True  # chip 1: column 0 (3 faults)
    assert choose_pairs(faulty, 3).tolist() == [[0, 2, 4], [1, 2, 3]]
    assert choose_pairs(faulty, 4).tolist() == [[0, 2, 3, 4], [1, 2, 3, 4]]
    with pytest.raises(ValueError, match="cannot choose 6 of 5"):
        choose_pairs(faulty, 6)


def test_scan_finds_stuck_cells_and_repair_avoids_them():
    chip = _chip()
    _stick(chip, [(0, 1, 2, 0), (1, 3, 0, 1)], STUCK_HIGH)
    _stick(chip, [(2, 0, 5, 1), (2, 2, 6, 0)], STUCK_LOW)
    faulty = scan_faults(chip, "fc2", "hybrid", 0.2)
    expected = torch.zeros(3, 4, 7, dtype=torch.bool)
    for c, r, k in [(0, 1, 2), (1, 3, 0), (2, 0, 5), (2, 2, 6)]:
        expected[c, r, k] = True
    assert torch.equal(faulty, expected)
    repaired = repair_columns(chip, "fc2", 5, "hybrid")  # stuck cells stay stuck
    assert repaired.columns["fc2"].tolist() == [[0, 1, 3, 4, 5], [1, 2, 3, 4, 5], [0, 1, 2, 3, 4]]
    assert repaired.faulty_pairs.tolist() == [1, 1, 2]
    assert bool((repaired.test_energy_j > 0).all())
    assert repaired.layout.array("fc2") == ArraySpec("fc2", 4, 5)
    assert repaired.layout.array("fc1") == LAYOUT.array("fc1")


def test_repaired_chip_reads_programs_and_multiplies_the_chosen_pairs():
    chip = _chip(1)
    columns = torch.tensor([[0, 2, 4, 6, 1], [6, 5, 4, 3, 2], [0, 1, 2, 3, 4]])
    repaired = RepairedChip(chip, {"fc2": columns})
    true_before = chip.arrays["fc2"].cells.g.clone()  # [chips, rows, cols, 2]
    levels = chip.levels
    g_plus = levels[torch.randint(0, 8, (3, 4, 5), generator=torch.Generator().manual_seed(0))]
    g_minus = torch.full_like(g_plus, float(levels[0]))
    repaired.program("fc2", g_plus, g_minus, strategy="hybrid")
    chosen = torch.zeros(3, 4, 7, dtype=torch.bool)
    chosen.scatter_(2, columns.unsqueeze(1).expand(3, 4, 5), True)
    # the chosen pairs hold their targets (within the verify band and read noise) ...
    read_p, _ = repaired.read_conductances("fc2")
    assert (read_p - g_plus).abs().max() < 12e-6
    # ... and the other pairs were not touched (their true conductances are unchanged; two
    # reads would differ by read noise alone, >= 1 % of g_max each)
    true_after = chip.arrays["fc2"].cells.g
    assert torch.equal(true_after[~chosen], true_before[~chosen])
    written_p, _ = repaired.write_counts("fc2")
    all_p, _ = chip.write_counts("fc2")
    assert int(written_p.sum()) == int(all_p.sum()) > 0  # every write went to a chosen pair
    volts = torch.rand(3, 2, 4) * chip.read_voltage
    gen_state = chip.generator.get_state()
    full = chip.multiply("fc2", volts)
    chip.generator.set_state(gen_state)
    part = repaired.multiply("fc2", volts)
    assert torch.equal(part, full.gather(2, columns.unsqueeze(1).expand(3, 2, 5)))


def test_spares_fill_the_tile():
    layout = ChipLayout((ArraySpec("fc1", 32, 16), ArraySpec("fc2", 16, 5)))
    assert tile_spares(layout, "fc2") == 11 and tile_spares(layout, "fc1") == 0
    wide = with_spares(layout, "fc2", 11)
    assert wide.array("fc2") == ArraySpec("fc2", 16, 16) and wide.array("fc1").cols == 16
    assert 2 * 16 * 16 + 2 * 32 * 16 <= 2048  # still the reference chip's 2 kbit of cells
    with pytest.raises(ValueError, match="spare pairs must be >= 0"):
        with_spares(layout, "fc2", -1)
    with pytest.raises(KeyError, match="unknown array 'fc3'"):
        with_spares(layout, "fc3", 1)


def test_output_layout_and_repair_output():
    model = ChipLayout((ArraySpec("fc1", 32, 16), ArraySpec("fc2", 16, 5)))
    assert output_layout(model).array("fc2").cols == 16  # the tile's 11 spares by default
    assert output_layout(model, 0) == model
    plain = SimulatedChip(2, preset="hfo2-mlc", layout=model, levels=8, seed=0)
    assert repair_output(plain, model, "hybrid") is plain  # no spares: nothing to repair
    wide = SimulatedChip(2, preset="hfo2-mlc", layout=output_layout(model, 3), levels=8, seed=0)
    repaired = repair_output(wide, model, "hybrid")
    assert isinstance(repaired, RepairedChip) and repaired.layout == model
