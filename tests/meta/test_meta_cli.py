"""``memlearn evaluate`` / ``baseline`` / ``meta-train``: exact JSON, clear errors."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from memlearn.cli.main import app
from memlearn.meta.checkpoint import save_checkpoint
from memlearn.nn import FewShotNet


@pytest.fixture()
def tiny_checkpoint(tmp_path):
    torch.manual_seed(0)
    net = FewShotNet(widths=(4, 4, 4, 4), hidden=8)
    with torch.no_grad():
        net.fc2.weight.zero_()
    return save_checkpoint(tmp_path / "tiny.pt", net, [0.5, 0.5])


def test_evaluate_json(tiny_checkpoint, shared_data) -> None:
    args = ["evaluate", "--checkpoint", str(tiny_checkpoint), "--split", "val", "--tasks", "30",
            "--steps", "3", "--root", str(shared_data), "--json"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert list(out) == [
        "split", "ways", "shots", "steps", "tasks", "accuracy_by_step", "accuracy_ci95"
    ]  # fmt: skip
    assert out["split"] == "val" and out["tasks"] == 30 and out["steps"] == 3
    assert len(out["accuracy_by_step"]) == 4
    assert out["accuracy_by_step"][0] == pytest.approx(0.2, abs=1e-6)  # zero FC2: all tied
    assert all(0.0 <= a <= 1.0 for a in out["accuracy_by_step"])
    assert out["accuracy_ci95"] > 0
    assert "split 'val'" in res.stderr


def test_evaluate_errors(tiny_checkpoint, tmp_path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["evaluate", "--checkpoint", str(tmp_path / "none.pt"), "--json"])
    assert res.exit_code == 2 and "does not exist" in res.stderr
    res = runner.invoke(
        app, ["evaluate", "--checkpoint", str(tiny_checkpoint), "--split", "nope", "--json"]
    )
    assert res.exit_code == 2 and "unknown split" in res.stderr
    res = runner.invoke(app, ["meta-train", "--config", str(tmp_path / "none.json")])
    assert res.exit_code == 2 and "does not exist" in res.stderr
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"meta_steps": -1}))
    res = runner.invoke(app, ["meta-train", "--config", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "meta_steps" in res.stderr


def test_evaluate_wrong_ways(tiny_checkpoint, shared_data) -> None:
    args = ["evaluate", "--checkpoint", str(tiny_checkpoint), "--split", "val", "--ways", "3",
            "--root", str(shared_data), "--json"]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "5 outputs" in res.stderr
