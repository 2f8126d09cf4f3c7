"""``memlearn snn train``: run folder refused unless --resume/--overwrite, resumable bit for bit,
the shipped checkpoint's command recorded."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from memlearn.errors import MemlearnError
from memlearn.snn import rundir
from memlearn.snn.train import CHECKPOINT, SHIPPED_COMMAND, TrainConfig, train_layer, train_run


def _data(n: int, seed: int) -> SimpleNamespace:
    gen = torch.Generator().manual_seed(seed)
    images = (torch.rand(n, 28, 28, generator=gen) * 255).to(torch.uint8)
    return SimpleNamespace(images=images, labels=torch.randint(0, 10, (n,), generator=gen))


class _Kill(Exception):
    pass


def test_resume_is_bit_identical(tmp_path) -> None:
    train, test = _data(200, 0), _data(40, 1)
    cfg = TrainConfig(epochs=3, batch=64)
    whole = train_layer(train, test, cfg)
    saved: list[dict] = []

    def save_then_kill(state: dict) -> None:
        saved.append(state)
        if state["phase"] == "float" and state["epoch"] == 1:
            raise _Kill

    with pytest.raises(_Kill):
        train_layer(train, test, cfg, save=save_then_kill)
    assert len(saved) == cfg.epochs + 1  # 3 quantised epochs, then the first float one
    rundir.write_state(tmp_path, saved[-1])
    resumed = train_layer(train, test, cfg, state=rundir.read_state(tmp_path))
    assert torch.equal(resumed["weights"], whole["weights"])
    assert torch.equal(resumed["float_weights"], whole["float_weights"])
    assert resumed["float_test_accuracy"] == whole["float_test_accuracy"]
    # a state saved inside the quantised phase resumes it too
    mid = train_layer(train, test, cfg, state=saved[1])
    assert torch.equal(mid["weights"], whole["weights"])


def test_run_folder_refused_unless_resume_or_overwrite(tmp_path) -> None:
    train, test = _data(200, 0), _data(40, 1)
    cfg = TrainConfig(epochs=1, batch=100)
    out = tmp_path / "run"
    metrics = train_run(train, test, cfg, out, resume=False, overwrite=False, command="c")
    assert set(rundir.run_files(out)) == set(rundir.RUN_FILES)
    assert metrics["command"] == "c"
    before = (out / rundir.MODEL_FILE).read_bytes()
    with pytest.raises(MemlearnError, match="already holds a run"):
        train_run(train, test, cfg, out, resume=False, overwrite=False, command="c")
    with pytest.raises(MemlearnError, match="exclude each other"):
        train_run(train, test, cfg, out, resume=True, overwrite=True, command="c")
    with pytest.raises(MemlearnError, match="trained with"):
        train_run(train, test, TrainConfig(epochs=2), out, resume=True, overwrite=False,
                  command="c")  # fmt: skip
    train_run(train, test, cfg, out, resume=False, overwrite=True, command="c")
    assert (out / rundir.MODEL_FILE).read_bytes() == before  # same seed, same weights
    with pytest.raises(FileNotFoundError, match="no training state"):
        train_run(train, test, cfg, tmp_path / "empty", resume=True, overwrite=False,
                  command="c")  # fmt: skip


def test_train_cli_never_touches_the_shipped_checkpoint(tmp_path, monkeypatch) -> None:
    from memlearn.cli.main import app

    shipped = CHECKPOINT.read_bytes()
    (tmp_path / "runs" / "spirit-snn").mkdir(parents=True)
    (tmp_path / "runs" / "spirit-snn" / rundir.MODEL_FILE).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["snn", "train"])  # default --out holds a run: refused
    assert r.exit_code == 2 and "already holds a run" in r.output
    assert CHECKPOINT.read_bytes() == shipped


def test_shipped_checkpoint_records_its_command() -> None:
    meta = json.loads(CHECKPOINT.with_suffix(".json").read_text())
    assert meta["command"] == SHIPPED_COMMAND
    assert meta["config"] == {"epochs": 8, "batch": 128, "lr": 0.02, "seed": 0}
    assert CHECKPOINT.stat().st_size < 1_000_000


def test_train_cli_json_prints_one_object_and_its_bar_on_stderr(tmp_path, monkeypatch) -> None:
    import memlearn.data.mnist as mnist
    from memlearn.cli.main import app

    monkeypatch.setattr(
        mnist, "load_mnist", lambda split: _data(200 if split == "train" else 40, 0)
    )
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["snn", "train", "--epochs", "1", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    metrics = json.loads(r.stdout)  # exactly one JSON object on stdout
    assert metrics["config"]["epochs"] == 1 and (out / rundir.MODEL_FILE).is_file()
    assert "snn train" in r.stderr  # the progress bar, on stderr also with --json
