"""The run folder of ``memlearn snn train``: checkpoint, metrics and a resumable training state.

A folder holds a run once any of ``RUN_FILES`` is in it: the checkpoint ``spirit-snn.pt``, its
metrics ``spirit-snn.json`` and ``state.pt`` (the training state, saved atomically after every
epoch).  A new run refuses such a folder unless asked to resume it (``state.pt`` says where to
continue) or to overwrite it (the old run's files go first), like ``meta-train``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from memlearn import runfolder
from memlearn.errors import CorruptDataError
from memlearn.io import atomic_write

MODEL_FILE = "spirit-snn.pt"
METRICS_FILE = "spirit-snn.json"
STATE_FILE = "state.pt"
RUN_FILES = (MODEL_FILE, METRICS_FILE, STATE_FILE)
STATE_KEYS = ("config", "phase", "epoch", "model", "opt", "sched", "gen", "done")


def run_files(out: Path) -> list[str]:
    """The files of a run present in ``out``."""
    return runfolder.present(out, RUN_FILES)


def check_run_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse ``out`` when it cannot take the run asked for; changes nothing on disk."""
    runfolder.check_folder(out, RUN_FILES, resume, overwrite, resume_file=STATE_FILE)


def clear_run(out: Path) -> None:
    """Remove the files of a previous run from ``out``."""
    runfolder.clear(out, RUN_FILES)


def read_state(out: Path) -> dict[str, Any]:
    """The saved training state of ``out``."""
    path = out / STATE_FILE
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is reported the same way
        raise CorruptDataError(f"training state {path} is unreadable: {exc}") from exc
    missing = [k for k in STATE_KEYS if not isinstance(blob, dict) or k not in blob]
    if missing:
        raise CorruptDataError(f"training state {path} lacks {missing}: not a snn train state")
    return blob


def write_state(out: Path, blob: dict[str, Any]) -> None:
    """Write the training state atomically (a kill leaves the previous one in place)."""
    with atomic_write(out / STATE_FILE, "wb") as handle:
        torch.save(blob, handle)
