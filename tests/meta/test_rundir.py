"""The run folder: a folder holding a run is refused unless resumed or overwritten; the log and
the saved state stay consistent through kills at any point (inside a save, inside a log write,
before the first save), and a resumed run continues exactly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import memlearn.meta.state as state_module
from memlearn.errors import CorruptDataError, MemlearnError
from memlearn.meta.config import TrainConfig
from memlearn.meta.rundir import LOG_FILE, STATE_FILE, read_state, write_state
from memlearn.meta.train import meta_train

# Pretraining (1 epoch) then 4 head steps: 5 steps, state saved at steps 1, 3, 5 (and at the
# end of pretraining); stopping at step 5 stays clear of the full-scale search.
SHORT = {
    "widths": [4, 4, 4, 4],
    "hidden": 8,
    "pretrain_epochs": 1,
    "pretrain_batch": 256,
    "head_steps": 4,
    "head_batch": 8,
    "meta_steps": 2,
    "meta_batch": 4,
    "inner_steps": 2,
    "hardware_steps": 0,
    "device_preset": None,
    "val_every": 2,
    "val_tasks": 10,
    "checkpoint_every": 2,
    "baseline_tune_tasks": 8,
}
STEPS = 5


class Killed(BaseException):
    """Stands for a kill: nothing after it runs."""


def _records(out: Path) -> list[dict]:
    raw = (out / LOG_FILE).read_bytes()
    assert b"\0" not in raw
    lines = raw.decode().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "elapsed_s"} for x in lines]


def _steps_done(out: Path) -> int:
    state = read_state(out)["state"]
    return state["step"] if state["phase"] == "pretrain" else 1 + state["step"]


def _assert_same_run(a: Path, b: Path) -> None:
    assert _records(a) == _records(b)
    sa, sb = read_state(a), read_state(b)
    for key, value in sa["learner"].items():
        assert torch.equal(value, sb["learner"][key]), key
    drop = {"elapsed_s"}
    assert {k: v for k, v in sa["state"].items() if k not in drop} == {
        k: v for k, v in sb["state"].items() if k not in drop
    }
    # each state covers its whole log (the byte counts differ with the wall times logged)
    assert sa["log_size"] == (a / LOG_FILE).stat().st_size
    assert sb["log_size"] == (b / LOG_FILE).stat().st_size


@pytest.fixture(scope="module")
def reference(tmp_path_factory, tiny_splits) -> Path:
    """The run stopped after STEPS steps, never killed."""
    out = tmp_path_factory.mktemp("reference")
    meta_train(TrainConfig.from_dict(SHORT), *tiny_splits, out, progress=False, stop_after=STEPS)
    return out


def test_a_folder_with_a_run_needs_resume_or_overwrite(tmp_path, tiny_splits) -> None:
    cfg = TrainConfig.from_dict(SHORT)
    meta_train(cfg, *tiny_splits, tmp_path, progress=False, stop_after=1)
    log = (tmp_path / LOG_FILE).read_bytes()
    with pytest.raises(MemlearnError, match=r"already holds a run .*--resume.*--overwrite"):
        meta_train(cfg, *tiny_splits, tmp_path, progress=False, stop_after=1)
    assert (tmp_path / LOG_FILE).read_bytes() == log  # refused before touching anything
    with pytest.raises(MemlearnError, match="exclude each other"):
        meta_train(cfg, *tiny_splits, tmp_path, resume=True, overwrite=True)
    (tmp_path / "summary.json").write_text("{}")  # a file of the old run
    seed1 = TrainConfig.from_dict({**SHORT, "seed": 1})
    meta_train(seed1, *tiny_splits, tmp_path, progress=False, stop_after=1, overwrite=True)
    assert not (tmp_path / "summary.json").exists()
    records = _records(tmp_path)
    assert [r["event"] for r in records] == ["start", "pretrain"]
    assert records[0]["config"]["seed"] == 1


@pytest.mark.parametrize("kill_at", [2, 3])
def test_kill_inside_a_save_resumes_exactly(
    monkeypatch, tmp_path, tiny_splits, reference, kill_at: int
) -> None:
    """Killed while writing the state (a half-written temporary file left behind) and while
    writing a log line (a torn line): the resumed run equals the one never killed."""
    saves = []

    def dying_write(out: Path, blob: dict) -> None:
        saves.append(1)
        if len(saves) == kill_at:
            (out / f".{STATE_FILE}.x1y2.tmp").write_bytes(b"PK\x03\x04half a state")
            with open(out / LOG_FILE, "ab") as fh:
                fh.write(b'{"event": "head", "st')
            raise Killed
        write_state(out, blob)

    monkeypatch.setattr(state_module, "write_state", dying_write)
    cfg = TrainConfig.from_dict(SHORT)
    with pytest.raises(Killed):
        meta_train(cfg, *tiny_splits, tmp_path, progress=False, stop_after=STEPS)
    monkeypatch.setattr(state_module, "write_state", write_state)
    left = STEPS - _steps_done(tmp_path)
    meta_train(cfg, *tiny_splits, tmp_path, progress=False, stop_after=left, resume=True)
    _assert_same_run(reference, tmp_path)


def test_killed_before_the_first_save(monkeypatch, tmp_path, tiny_splits, reference) -> None:
    """An old run overwritten, the new one killed before it saved anything: the resume starts
    the new run afresh (never the old state) and reuses no old log bytes."""
    old = TrainConfig.from_dict({**SHORT, "seed": 1})
    meta_train(old, *tiny_splits, tmp_path, progress=False, stop_after=3)

    def die(out: Path, blob: dict) -> None:
        raise Killed

    monkeypatch.setattr(state_module, "write_state", die)
    cfg = TrainConfig.from_dict(SHORT)
    with pytest.raises(Killed):
        meta_train(cfg, *tiny_splits, tmp_path, progress=False, overwrite=True)
    monkeypatch.setattr(state_module, "write_state", write_state)
    assert not (tmp_path / STATE_FILE).exists()
    with pytest.raises(ValueError, match=r"config differs .*\(options: seed\)"):
        meta_train(old, *tiny_splits, tmp_path, progress=False, resume=True)
    meta_train(cfg, *tiny_splits, tmp_path, progress=False, stop_after=STEPS, resume=True)
    _assert_same_run(reference, tmp_path)


def test_a_log_shorter_than_the_state_is_refused(tmp_path, tiny_splits) -> None:
    cfg = TrainConfig.from_dict(SHORT)
    meta_train(cfg, *tiny_splits, tmp_path, progress=False, stop_after=1)
    with open(tmp_path / LOG_FILE, "r+b") as fh:
        fh.truncate(10)
    with pytest.raises(CorruptDataError, match="not from the same run"):
        meta_train(cfg, *tiny_splits, tmp_path, progress=False, resume=True)
    assert (tmp_path / LOG_FILE).stat().st_size == 10  # no padding


def test_a_corrupt_state_is_one_clear_error(tmp_path, tiny_splits) -> None:
    cfg = TrainConfig.from_dict(SHORT)
    meta_train(cfg, *tiny_splits, tmp_path, progress=False, stop_after=1)
    (tmp_path / STATE_FILE).write_bytes(b"")
    with pytest.raises(CorruptDataError, match="empty file"):
        meta_train(cfg, *tiny_splits, tmp_path, progress=False, resume=True)
    (tmp_path / STATE_FILE).write_bytes(b"PK\x03\x04 truncated")
    with pytest.raises(CorruptDataError, match="cannot be read") as info:
        meta_train(cfg, *tiny_splits, tmp_path, progress=False, resume=True)
    assert "weights_only" not in str(info.value)
    torch.save({"weights": torch.zeros(2)}, tmp_path / STATE_FILE)
    with pytest.raises(CorruptDataError, match="not a meta-train state"):
        meta_train(cfg, *tiny_splits, tmp_path, progress=False, resume=True)


KILLER = """
import os, signal, sys
import torch
torch.set_num_threads({threads})  # as in this process: the sums must round alike
sys.path.insert(0, {tests!r})
from conftest import synthetic_classes
from memlearn.meta.config import TrainConfig
from memlearn.meta.train import meta_train

def on_event(record):
    if record.get("event") == "head" and record["step"] == {step}:
        os.kill(os.getpid(), signal.SIGKILL)

splits = synthetic_classes(40, "train", 0), synthetic_classes(20, "val", 1)
meta_train(TrainConfig.from_dict({config!r}), *splits, {out!r}, progress=False,
           on_event=on_event, stop_after={steps})
"""


@pytest.mark.parametrize("step", [2, 3])
def test_sigkill_resumes_exactly(tmp_path, tiny_splits, reference, step: int) -> None:
    """A process killed with SIGKILL right after a log record (step 2: just before its save;
    step 3: with the record not covered by any save) resumes exactly."""
    script = KILLER.format(
        tests=str(Path(__file__).parent),
        threads=torch.get_num_threads(),
        step=step,
        config=SHORT,
        out=str(tmp_path),
        steps=STEPS,
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-2000:]
    cfg = TrainConfig.from_dict(SHORT)
    left = STEPS - _steps_done(tmp_path)
    meta_train(cfg, *tiny_splits, tmp_path, progress=False, stop_after=left, resume=True)
    _assert_same_run(reference, tmp_path)
