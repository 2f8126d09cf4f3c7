from __future__ import annotations

import base64
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from memlearn.experiments.provenance import provenance, write_json  # noqa: E402
from memlearn.experiments.report import StudyOutcome, write_report  # noqa: E402


def test_report_renders_every_study_and_embeds_figures(tmp_path: Path) -> None:
    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    fig.savefig(tmp_path / "curve.png")
    plt.close(fig)
    outcomes = [
        StudyOutcome(
            key="a",
            title="Overlap | accuracy",
            reference="more overlap, lower accuracy",
            observed="accuracy fell from 98 % to 60 %",
            reproduced=True,
            figures=["curve.png"],
            numbers=[("accuracy at σ/Δ = 0.1", "0.98")],
        ),
        StudyOutcome(
            key="b", title="Retention", reference="hybrid > 90 %", observed="80 %", reproduced=False
        ),
    ]
    info = provenance({"quick": True, "seed": 0})
    md, page = write_report(tmp_path, outcomes, info)
    text = md.read_text()
    assert "1 of 2 published trends reproduced" in text
    assert "Overlap \\| accuracy" in text  # table cells escape the pipe
    assert "## Retention" in text and "![Overlap | accuracy](curve.png)" in text
    body = page.read_text()
    png = base64.b64encode((tmp_path / "curve.png").read_bytes()).decode()
    assert f"data:image/png;base64,{png}" in body  # self-contained
    assert "<table>" in body and 'src="curve.png"' not in body
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curve.png", "report.html", "report.md"]


def test_provenance_records_versions_and_writes_atomically(tmp_path: Path) -> None:
    info = provenance({"seed": 5})
    assert info["config"] == {"seed": 5}
    assert {"python", "memlearn", "torch", "numpy"} <= set(info["versions"])
    path = write_json(tmp_path / "run.json", info)
    assert '"seed": 5' in path.read_text()
