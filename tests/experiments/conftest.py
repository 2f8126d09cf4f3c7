"""Fixtures of the study tests: a few held-out tasks of the real data, prepared once."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Sweep points are small tensor operations: one thread avoids OpenMP spin-waiting on
    shared cores (the same setting as ``memlearn reproduce``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


CALIBRATION_TASKS = 64  # of the workload's 256: each sweep point's full-scale search is 4x cheaper


@pytest.fixture(scope="session")
def tiny_workload(shared_data: Path):
    """12 tasks of the held-out split with the shipped model's head, seed 0; each point
    calibrates its full scale on the first :data:`CALIBRATION_TASKS` calibration tasks."""
    from memlearn.experiments.workload import load_workload

    wl = load_workload(tasks=12, seed=0, root=shared_data)
    assert wl.calibration is not None
    return replace(wl, calibration=tuple(t[:CALIBRATION_TASKS] for t in wl.calibration))


@pytest.fixture
def study_run(tmp_path: Path, tiny_workload, shared_data: Path):
    """A run on the default preset writing into a fresh directory, tasks already loaded."""
    from memlearn.experiments.common import StudyRun

    return StudyRun(
        out_dir=tmp_path,
        preset="hfo2-mlc",
        seed=0,
        progress=False,
        root=shared_data,
        workload_=tiny_workload,
    )
