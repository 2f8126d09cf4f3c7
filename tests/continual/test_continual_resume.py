"""Resumable runs: a run stopped after a task and resumed equals one never interrupted; a run
folder already holding a run is refused unless resumed or overwritten."""

from __future__ import annotations

import pytest
import torch

from memlearn.continual import ContinualConfig, run_continual
from memlearn.continual.checkpoint import CHECKPOINT_FILE, check_run_dir
from memlearn.errors import MemlearnError


class Stop(Exception):
    pass


def _config(**kw) -> ContinualConfig:
    base = dict(tasks=3, train_size=200, test_size=100, batch=50, chips=2, curve_points=2,
                curve_images=50, seed=3)  # fmt: skip
    return ContinualConfig(**{**base, **kw})


def _counters(result) -> list[torch.Tensor]:
    return [t for s in result.learner.stores for t in (s.feram.writes, s.oxram.writes)]


def test_a_resumed_run_equals_an_uninterrupted_one(shared_data, tmp_path):
    whole = run_continual(_config(), run_dir=tmp_path / "a")
    seen: list[tuple[int, int]] = []

    def stop_in_task_two(step: int, total: int) -> None:
        seen.append((step, total))
        if step == 5:  # 4 steps per task: the second task's first step
            raise Stop

    with pytest.raises(Stop):
        run_continual(_config(), progress=stop_in_task_two, run_dir=tmp_path / "b")
    assert seen[-1] == (5, 12)  # the progress total: 3 tasks x 4 steps
    resumed = run_continual(_config(), run_dir=tmp_path / "b", resume=True)
    assert torch.equal(whole.accuracy, resumed.accuracy)
    assert torch.equal(whole.curves, resumed.curves)
    assert whole.curve_steps == resumed.curve_steps and resumed.steps == 12
    for a, b in zip(_counters(whole), _counters(resumed), strict=True):
        assert torch.equal(a, b)


def test_resume_refuses_another_config(shared_data, tmp_path):
    run_continual(_config(tasks=1, memory="software"), run_dir=tmp_path)
    with pytest.raises(MemlearnError, match="meta"):
        run_continual(_config(tasks=1, memory="software", meta=0.5), run_dir=tmp_path, resume=True)


def test_run_folder_refusals(tmp_path):
    check_run_dir(tmp_path, resume=False, overwrite=False)  # empty folder: fine
    with pytest.raises(FileNotFoundError, match="no training state"):
        check_run_dir(tmp_path, resume=True, overwrite=False)
    (tmp_path / CHECKPOINT_FILE).write_bytes(b"x")
    with pytest.raises(MemlearnError, match="already holds a run"):
        check_run_dir(tmp_path, resume=False, overwrite=False)
    check_run_dir(tmp_path, resume=False, overwrite=True)
    with pytest.raises(MemlearnError, match="exclude each other"):
        check_run_dir(tmp_path, resume=True, overwrite=True)
    with pytest.raises(MemlearnError, match="need --run-dir"):
        check_run_dir(None, resume=True, overwrite=False)
