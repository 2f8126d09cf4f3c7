"""The on-chip gap attribution: its switches, its oracle chip and the study's rows."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "onchip"))
from test_loop import LAYOUT, LRS, synthetic_tasks  # noqa: E402

from memlearn.devices.preset import load_preset  # noqa: E402
from memlearn.experiments.onchip_gap import (  # noqa: E402
    NON_IDEALITIES,
    OracleProgrammingChip,
    attribute_gap,
    make_chip,
)

PRESET = load_preset("hfo2-mlc")


def test_switches_turn_off_what_they_name():
    chip = make_chip(2, PRESET, LAYOUT, 8, 0, frozenset(NON_IDEALITIES))
    assert isinstance(chip, OracleProgrammingChip)
    arr = chip.arrays["fc1"]
    assert arr.adc_bits is None and arr.dac_bits is None and arr.read_noise is False
    assert chip.preset.values["stuck_low_rate"] == 0 == chip.preset.values["relax_log"]
    real = make_chip(2, PRESET, LAYOUT, 8, 0)
    assert type(real).__name__ == "SimulatedChip" and real.arrays["fc1"].adc_bits == 8
    assert real.preset.values["relax_log"] > 0
    with pytest.raises(ValueError, match="unknown non-ideality \\['noise'\\]"):
        make_chip(2, PRESET, LAYOUT, 8, 0, frozenset({"noise"}))


def test_oracle_programming_lands_on_target_but_pays_the_real_pulses():
    oracle = make_chip(3, PRESET, LAYOUT, 8, 4, frozenset({"programming", "relaxation"}))
    plain = make_chip(3, PRESET, LAYOUT, 8, 4, frozenset({"relaxation"}))
    target = oracle.levels[torch.randint(8, (3, 12, 8), generator=torch.Generator().manual_seed(0))]
    low = torch.full_like(target, float(oracle.levels[0]))
    r_oracle = oracle.program("fc1", target, low)
    r_plain = plain.program("fc1", target, low)
    g_oracle, _ = oracle.true_conductances("fc1")
    g_plain, _ = plain.true_conductances("fc1")
    healthy = oracle.arrays["fc1"].cells.stuck[..., 0] == 0
    assert torch.equal(g_oracle[healthy], target[healthy])
    assert (g_plain[healthy] - target[healthy]).abs().max() > 1e-6  # real cells scatter
    assert torch.equal(r_oracle.set_pulses, r_plain.set_pulses)
    torch.testing.assert_close(r_oracle.energy_j, r_plain.energy_j)
    # with relaxation on, the oracle's cells relax from their targets like programmed cells
    relaxing = make_chip(3, PRESET, LAYOUT, 8, 4, frozenset({"programming"}))
    relaxing.program("fc1", target, low)
    g_relaxed, _ = relaxing.true_conductances("fc1")
    assert 0 < (g_relaxed[healthy] - target[healthy]).abs().mean() < 5e-6


def test_study_rows_and_their_consistency():
    sx, sy, qx, qy, ws = synthetic_tasks(8, seed=41)
    study = attribute_gap(
        sx, sy, qx, qy, ws, LRS, LAYOUT, weight_max=[1.0, 1.5], peak_weight_max=[2.0, 3.0],
        steps=2, seed=1,
    )  # fmt: skip
    names = [r.name for r in study.rows]
    assert names[:4] == [
        "ideal software (float)",
        "float on the levels (no device)",
        "ideal chip",
        "the chip",
    ]
    assert [f"without {p}" for p in NON_IDEALITIES] == names[4:9]
    assert [f"only {p}" for p in NON_IDEALITIES] == names[9:14]
    assert names[14:] == [
        "nearest rounding (verify)",
        "peak full scale",
        "former loop: peak + nearest",
    ]
    # the ideal chip is the float model of the loop: same levels, rounding and draws
    assert (study.row("ideal chip").accuracy - study.rows[1].accuracy).abs().mean() < 0.02
    real = study.row("the chip")
    row = study.row("without stuck cells")
    diff = row.accuracy[:, -1] - real.accuracy[:, -1]
    assert row.delta == pytest.approx(float(diff.mean()))
    assert all(r.accuracy.shape == (8, 3) for r in study.rows)
    assert real.energy_j > 0 and real.writes > 0
    d = study.as_dict()
    assert d["info"]["tasks"] == 8 and len(d["rows"]) == 17


def test_design_rows_that_repeat_the_chip_are_left_out():
    sx, sy, qx, qy, ws = synthetic_tasks(4, seed=42)
    study = attribute_gap(
        sx, sy, qx, qy, ws, LRS, LAYOUT, weight_max=[2.0, 3.0], peak_weight_max=[2.0, 3.0],
        policy="verify", steps=1, seed=1,
    )  # fmt: skip
    assert [r.name for r in study.rows if r.group.startswith("design")] == []
