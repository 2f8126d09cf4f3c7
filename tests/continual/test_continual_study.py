"""The ``continual`` reproduce study: verdicts from measured matrices (they fail on a planted
counter-example) and a tiny end-to-end run."""

from __future__ import annotations

import json

import pytest

from memlearn.errors import MemlearnError
from memlearn.experiments.common import StudyRun
from memlearn.experiments.continual import continual_study, verdicts
from memlearn.experiments.reproduce import STUDIES, study_settings


def _matrix(learned: float, kept: float, tasks: int = 3) -> list[list[float]]:
    """Task j reaches ``learned`` when learned and keeps ``kept`` of it per later task."""
    return [[learned * kept ** (i - j) if j <= i else 0.1 for j in range(tasks)]
            for i in range(tasks)]  # fmt: skip


def test_verdicts_hold_for_the_published_trend():
    checks = verdicts({0.0: _matrix(0.95, 0.6), 0.5: _matrix(0.95, 0.9), 1.35: _matrix(0.95, 1.0)})
    assert all(checks.values()), checks


def test_verdicts_fail_on_planted_counter_examples():
    # metaplasticity that does not help: the largest m forgets like m = 0
    same = verdicts({0.0: _matrix(0.95, 0.6), 1.35: _matrix(0.95, 0.6)})
    assert not any(v for k, v in same.items() if "m = 1.35" in k)
    # a trend that reverses: m = 0.5 keeps the first task better than m = 1.35
    reversed_ = verdicts(
        {0.0: _matrix(0.95, 0.6), 0.5: _matrix(0.95, 1.0), 1.35: _matrix(0.95, 0.85)}
    )
    assert not reversed_["the first task's final accuracy does not fall as m grows"]
    # nothing is forgotten at m = 0: no collapse to reproduce
    flat = verdicts({0.0: _matrix(0.95, 1.0), 1.35: _matrix(0.95, 1.0)})
    assert not flat["m = 0: the first task loses >= 20 points"]
    with pytest.raises(MemlearnError, match="at least two|>= 2"):
        verdicts({0.0: _matrix(0.95, 1.0)})


def test_registered_not_default_and_quick_differs_from_full():
    from memlearn.experiments import DEFAULT_STUDIES

    assert "continual" in STUDIES and "continual" not in DEFAULT_STUDIES
    quick, full = study_settings("continual", True), study_settings("continual", False)
    assert quick["metas"] == (0.0, 0.5, 1.0, 1.35) and quick != full


def test_study_runs_end_to_end(tmp_path, shared_data):
    run = StudyRun(out_dir=tmp_path, preset="hfo2-mlc", root=shared_data, progress=False)
    out = continual_study(
        run, metas=(0.0, 1.35), hidden=(16,), tasks=2, epochs=1, train_size=200, test_size=100
    )
    data = json.loads((tmp_path / "continual.json").read_text())
    assert [p["meta"] for p in data["points"]] == [0.0, 1.35]
    assert len(data["points"][0]["accuracy_matrix"]) == 2
    assert (tmp_path / "continual.png").stat().st_size > 1000
    assert "mean final within 5 points of learned" in out.notes
    assert out.reproduced == all(verdicts({p["meta"]: p["accuracy_matrix"]
                                           for p in data["points"]}).values())  # fmt: skip
