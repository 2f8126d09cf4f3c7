"""The run folder of ``memlearn continual``: a checkpoint after every task, resume, refusal.

A folder holds a run once any of ``RUN_FILES`` is in it; a new run refuses such a folder unless
asked to resume it (``--resume``: the checkpoint decides where to continue) or to overwrite it
(``--overwrite``: the old run's files go first).  The checkpoint (``checkpoint.pt``, written
atomically after each task) holds the whole learner (its memories, write counters, ledgers,
optimiser, saved batch norms), the generator's state, the accuracy rows and curves so far and
the run's config; a resumed run gives the same result, bit for bit, as one never interrupted.
It is a pickle: load only checkpoints you wrote.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from memlearn import runfolder
from memlearn.errors import MemlearnError
from memlearn.io import atomic_write

CHECKPOINT_FILE = "checkpoint.pt"
RESULT_FILE = "result.json"
FIGURE_FILE = "accuracy.png"
RUN_FILES = (CHECKPOINT_FILE, RESULT_FILE, FIGURE_FILE)


@dataclass
class RunState:
    """Where a run stands: the next task to learn, steps done, results so far."""

    config: dict[str, Any]
    learner: Any
    generator: torch.Generator
    accuracy: torch.Tensor
    next_task: int = 0
    step: int = 0
    curves: list[torch.Tensor] = field(default_factory=list)
    curve_steps: list[int] = field(default_factory=list)


def check_run_dir(run_dir: Path | None, resume: bool, overwrite: bool) -> None:
    """Refuse ``run_dir`` when it cannot take the run asked for; changes nothing on disk."""
    if run_dir is None:
        if resume and overwrite:
            raise MemlearnError("--resume and --overwrite exclude each other: choose one")
        if resume or overwrite:
            raise MemlearnError("--resume and --overwrite need --run-dir (the run's folder)")
        return
    runfolder.check_folder(
        run_dir, RUN_FILES, resume, overwrite,
        resume_file=CHECKPOINT_FILE, option="--run-dir", what="run folder",
    )  # fmt: skip


def clear_run_dir(run_dir: Path) -> None:
    """Remove a previous run's files from ``run_dir``."""
    runfolder.clear(run_dir, RUN_FILES)


def save_state(path: Path, state: RunState) -> None:
    """Write ``state`` to ``path`` atomically (nothing half-written)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    with atomic_write(path, "wb") as f:
        f.write(buffer.getvalue())


def load_state(path: Path, config: dict[str, Any]) -> RunState:
    """The state saved at ``path``; ``MemlearnError`` if it was made with another config."""
    state = torch.load(path, weights_only=False)
    if not isinstance(state, RunState):
        raise MemlearnError(f"{path} is not a memlearn continual checkpoint")
    differ = sorted(k for k in {*config, *state.config} if config.get(k) != state.config.get(k))
    if differ:
        raise MemlearnError(
            f"--resume: the config differs from the one {path.parent} was run with "
            f"({', '.join(differ)}); use the same options, or --overwrite"
        )
    return state
