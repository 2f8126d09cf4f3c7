"""The ``spirit`` reproduce study: runs end to end on a tiny sweep, and every verdict fails on a
planted counter-example."""

from __future__ import annotations

import copy
import json

import pytest

from memlearn.experiments.common import StudyRun
from memlearn.experiments.spirit import spirit_study, verdicts


def test_spirit_study_small(tmp_path, shared_data) -> None:
    run = StudyRun(out_dir=tmp_path, preset="hfo2-mlc", root=shared_data, progress=False)
    out = spirit_study(
        run, chips=1, images=40, ratios=(2.0, 100.0), spreads=(1.0,),
        hours=(1 / 3600, 1.0, 24.0), reads=(0.0, 7.5e8), delta_s=(10,),
    )  # fmt: skip
    assert (tmp_path / "spirit.png").is_file() and (tmp_path / "spirit.json").is_file()
    assert "chips >= 84 %" in out.notes and "input spikes within" in out.notes
    assert out.reproduced in (True, False)
    rows = json.loads((tmp_path / "spirit.json").read_text())["rows"]
    (h,) = rows["hidden"]  # the 144-32-10 network's point, on the same chips and images
    assert h["hidden"] == 32 and 0.0 < h["accuracy"] <= 1.0 and h["input_spikes_per_image"] > 0
    assert any("144-32-10" in name for name, _ in out.numbers)


def _row(x: float, acc: float = 0.88, **kw) -> dict:
    return {"x": x, "accuracy": acc, "energy_per_event_j": 3e-12, "input_spikes_per_image": 140.0,
            "disturbed_cells": 0.0, **kw}  # fmt: skip


HEALTHY = {
    "ratio": [_row(2.0, 0.80), _row(100.0, 0.88)],
    "hours": [_row(1 / 3600), _row(1.0), _row(24.0), _row(8760.0, 0.875)],
    "reads": [_row(0.0), _row(7.5e8)],
    "delta_s": [_row(6, input_spikes_per_image=90.0), _row(10)],
}

PLANTS = [
    ("ideal quantised layer >= 88 %", None, None, None, 0.87),
    ("chips >= 84 %", "hours", "all", {"accuracy": 0.838}, 0.875),  # ideal fails too: 0.875
    ("chips within 4 points of ideal", "hours", "all", {"accuracy": 0.85}, 0.90),
    ("energy per event within 2x of 3.6 pJ", "hours", 1, {"energy_per_event_j": 8e-12}, 0.9),
    ("input spikes within ±25 % of 136 at ΔS = 10", "delta_s", 1,
     {"input_spikes_per_image": 226.0}, 0.9),
    ("1 day after programming within 1 point of 1 s", "hours", 0, {"accuracy": 0.90}, 0.9),
    ("relaxation settled by 1 h (later points within 1 point)", "hours", 3,
     {"accuracy": 0.86}, 0.9),
    ("7.5e8 reads at 100 mV: no flipped cell, within 1 point of none", "reads", 1,
     {"disturbed_cells": 3.0}, 0.9),
    ("7.5e8 reads at 100 mV: no flipped cell, within 1 point of none", "reads", 1,
     {"accuracy": 0.85}, 0.9),
    ("narrowest window below widest", "ratio", 0, {"accuracy": 0.89}, 0.9),
]  # fmt: skip


def test_verdicts_hold_on_healthy_rows() -> None:
    assert all(verdicts(HEALTHY, 0.90).values())


@pytest.mark.parametrize(("name", "key", "index", "plant", "ideal"), PLANTS)
def test_each_verdict_fails_on_its_planted_counter_example(name, key, index, plant, ideal):
    rows = copy.deepcopy(HEALTHY)
    for i in range(len(rows[key])) if index == "all" else [index] if key else []:
        rows[key][i].update(plant)
    got = verdicts(rows, ideal)
    assert got[name] is False
    also = {"ideal quantised layer >= 88 %"} if ideal < 0.88 else set()
    assert {k for k, ok in got.items() if not ok} == {name} | also
