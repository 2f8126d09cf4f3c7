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
        "split", "ways", "shots", "steps", "tasks", "accuracy_by_step", "accuracy_ci95",
        "accuracy_ci95_by_step", "config",
    ]  # fmt: skip
    assert len(out["accuracy_ci95_by_step"]) == 4 and out["accuracy_ci95_by_step"][0] == 0.0
    assert out["config"]["split"] == "val" and out["config"]["tasks"] == 30
    assert "torch" in out["config"]["versions"]
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


@pytest.mark.parametrize(
    ("args", "match"),
    [
        (["--preset", "hfo2-mcl"], "unknown preset 'hfo2-mcl'"),
        (["--strategy", "hybird"], "unknown strategy 'hybird'"),
        (["--torch-device", "gpu"], "unknown torch device 'gpu'"),
        (["--config", "SPLIT"], "unknown val_split 'vall'"),
        (["--config", "LEVELS"], "levels must be >= 2"),
        (["--resume", "--overwrite"], "exclude each other"),
        (["--resume"], "no training state"),
        (["--seed", "0"], "--root"),
    ],
)
def test_meta_train_rejects_options_before_any_work(tmp_path, args, match) -> None:
    """Each bad option is named before any data is read or any folder made."""
    files = {
        "SPLIT": tmp_path / "split.json",
        "LEVELS": tmp_path / "levels.json",
    }
    files["SPLIT"].write_text(json.dumps({"val_split": "vall"}))
    files["LEVELS"].write_text(json.dumps({"levels": 1}))
    args = [str(files.get(a, a)) for a in args]
    out = tmp_path / "run"
    res = CliRunner().invoke(
        app, ["meta-train", "--out", str(out), "--root", str(tmp_path / "no-data"), *args]
    )
    assert res.exit_code == 2, res.output
    assert res.stderr.startswith("error: ") and match in res.stderr
    assert not out.exists()


def _saved_run(out, tiny_splits, **change) -> dict:
    from memlearn.meta.config import TrainConfig
    from memlearn.meta.train import meta_train

    config = {"widths": [4, 4, 4, 4], "hidden": 8, "pretrain_epochs": 1, "val_tasks": 10,
              "baseline_tune_tasks": 8, "device_preset": None, **change}  # fmt: skip
    meta_train(TrainConfig.from_dict(config), *tiny_splits, out, progress=False, stop_after=1)
    return config


def test_meta_train_resume_reuses_the_saved_config(monkeypatch, tmp_path, tiny_splits) -> None:
    import memlearn.data
    import memlearn.meta.train

    out = tmp_path / "run"
    config = _saved_run(out, tiny_splits, seed=4)
    runs = []
    monkeypatch.setattr(memlearn.data, "load_split", lambda name, root=None: tiny_splits[0])
    monkeypatch.setattr(
        memlearn.meta.train, "meta_train", lambda cfg, *a, **kw: runs.append((cfg, kw)) or {}
    )
    runner = CliRunner()
    res = runner.invoke(app, ["meta-train", "--out", str(out), "--resume", "--no-progress"])
    assert res.exit_code == 0, res.output
    ((cfg, kw),) = runs
    assert kw["resume"] and all(getattr(cfg, k) == v for k, v in config.items())
    # an explicit option that contradicts the saved config is named, with both values
    res = runner.invoke(app, ["meta-train", "--out", str(out), "--resume", "--seed", "5"])
    assert res.exit_code == 2 and "seed (4 saved, 5 given)" in res.stderr
    res = runner.invoke(app, ["meta-train", "--out", str(out), "--resume", "--preset", "hfo2-mlc"])
    assert res.exit_code == 2 and "hardware_steps (0 saved, 250 given)" in res.stderr
    assert len(runs) == 1


def test_meta_train_refuses_a_folder_with_a_run(tmp_path, tiny_splits) -> None:
    out = tmp_path / "run"
    _saved_run(out, tiny_splits)
    log = (out / "log.jsonl").read_bytes()
    res = CliRunner().invoke(app, ["meta-train", "--out", str(out)])
    assert res.exit_code == 2 and "already holds a run" in res.stderr
    assert (out / "log.jsonl").read_bytes() == log


def test_meta_train_corrupt_state_is_one_error_line(tmp_path, tiny_splits) -> None:
    out = tmp_path / "run"
    _saved_run(out, tiny_splits)
    (out / "state.pt").write_bytes(b"")
    res = CliRunner().invoke(app, ["meta-train", "--out", str(out), "--resume"])
    assert res.exit_code == 2
    assert res.stderr.startswith("error: ") and "empty file" in res.stderr
    assert "Traceback" not in res.output
