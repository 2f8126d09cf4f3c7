"""The run folder of ``meta-train``: its files, the append-only log, the saved training state.

A folder holds a run once any of :data:`RUN_FILES` is in it.  A new run refuses such a folder
unless asked to resume it (the saved state decides where to continue) or to overwrite it (the
old run's files go first).  The log is JSON lines, one ``os.write`` per record, appended only;
the saved state records how many bytes of it it covers, and a resumed run cuts the log back to
that length (a torn last line, written after the last save, goes with the rest).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from memlearn import runfolder
from memlearn.errors import CorruptDataError
from memlearn.io import atomic_write
from memlearn.meta.checkpoint import read_torch_file
from memlearn.meta.config import current_names

STATE_FILE = "state.pt"
LOG_FILE = "log.jsonl"
MODEL_FILE = "model.pt"
PLAIN_MODEL_FILE = "model_plain.pt"  # the MAML phase's model when a hardware phase follows
BASELINE_FILE = "baseline.pt"
SUMMARY_FILE = "summary.json"
RUN_FILES = (
    STATE_FILE,
    LOG_FILE,
    MODEL_FILE,
    PLAIN_MODEL_FILE,
    BASELINE_FILE,
    SUMMARY_FILE,
    "model.json",
    "model_plain.json",
    "baseline.json",
)


class RunLog:
    """Append-only JSON-lines log that can be cut back to a saved length on resume."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def size(self) -> int:
        """Bytes in the log (0 when there is none)."""
        return self.path.stat().st_size if self.path.exists() else 0

    def cut(self, size: int) -> None:
        """Drop every byte after ``size``; the log must hold at least that many."""
        have = self.size()
        if have < size:
            raise CorruptDataError(
                f"{self.path} holds {have} bytes but the saved state covers {size}: they are "
                "not from the same run (start afresh with --overwrite)"
            )
        with open(self.path, "r+b") as fh:
            fh.truncate(size)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as one line, in one write."""
        line = (json.dumps(record) + "\n").encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)

    def first(self) -> dict[str, Any] | None:
        """The first record, or None when the log holds no complete first line."""
        if not self.path.exists():
            return None
        with open(self.path, "rb") as fh:
            line = fh.readline()
        if not line.endswith(b"\n"):
            return None
        try:
            record = json.loads(line)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CorruptDataError(f"{self.path}: first line is not JSON: {exc}") from exc
        return record if isinstance(record, dict) else None


def run_files(out: Path) -> list[str]:
    """The files of a run present in ``out``."""
    return runfolder.present(out, RUN_FILES)


def check_run_folder(out: Path, resume: bool, overwrite: bool) -> None:
    """Refuse ``out`` when it cannot take the run asked for; changes nothing on disk."""
    runfolder.check_folder(out, RUN_FILES, resume, overwrite)


def clear_run(out: Path) -> None:
    """Remove the files of a previous run from ``out`` (and stale temporary files)."""
    runfolder.clear(out, RUN_FILES)


def read_state(out: Path, map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The saved training state of ``out`` (None when the run stopped before its first save)."""
    path = out / STATE_FILE
    if not path.exists():
        return None
    blob = read_torch_file(path, "training state", map_location)
    keys = ("config", "learner", "classifier", "pre_opt", "meta_opt", "state", "log_size")
    missing = [k for k in keys if not isinstance(blob, dict) or k not in blob]
    if missing:
        raise CorruptDataError(f"training state {path} lacks {missing}: not a meta-train state")
    return blob


def write_state(out: Path, blob: dict[str, Any]) -> None:
    """Write the training state atomically (a kill leaves the previous one in place)."""
    with atomic_write(out / STATE_FILE, "wb") as fh:
        torch.save(blob, fh)


def saved_config(out: Path) -> dict[str, Any] | None:
    """The config a run in ``out`` was started with: the saved state's, else the log's first
    record's (a run killed before its first save), else None."""
    blob = read_state(out)
    if blob is not None:
        return current_names(blob["config"])
    first = RunLog(out / LOG_FILE).first()
    if first is not None and first.get("event") == "start":
        return current_names(first["config"])
    return None
