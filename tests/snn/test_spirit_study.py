"""The ``spirit`` reproduce study runs end to end on a tiny sweep and computes its verdicts."""

from __future__ import annotations

from memlearn.experiments.common import StudyRun
from memlearn.experiments.spirit import spirit_study


def test_spirit_study_small(tmp_path, shared_data) -> None:
    run = StudyRun(out_dir=tmp_path, preset="hfo2-mlc", root=shared_data, progress=False)
    out = spirit_study(
        run, chips=1, images=40, ratios=(2.0, 100.0), spreads=(1.0,),
        hours=(1 / 3600, 1.0, 24.0), reads=(0.0, 1e9),
    )  # fmt: skip
    assert (tmp_path / "spirit.png").is_file() and (tmp_path / "spirit.json").is_file()
    assert "chips >= 84 %" in out.notes and "input spikes within" in out.notes
    assert out.reproduced in (True, False)
