"""A run's folder: which of a run's files it holds, and whether a new run may use it.

A folder holds a run once any of the run's files is in it.  A new run refuses such a folder
unless asked to resume it or to overwrite it (the old run's files go first); ``meta-train``,
``snn train`` and ``continual`` share these rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from memlearn.errors import MemlearnError


def present(folder: Path, names: Sequence[str]) -> list[str]:
    """The run files of ``names`` present in ``folder``."""
    return [name for name in names if (folder / name).exists()] if folder.is_dir() else []


def check_folder(
    folder: Path,
    names: Sequence[str],
    resume: bool,
    overwrite: bool,
    *,
    resume_file: str | None = None,
    option: str = "--out",
    what: str = "output folder",
) -> None:
    """Refuse ``folder`` when it cannot take the run asked for; changes nothing on disk.

    ``resume_file``: the file a resumed run continues from (``None``: any run file will do,
    a run killed before its first save then starts afresh).
    """
    if resume and overwrite:
        raise MemlearnError("--resume and --overwrite exclude each other: choose one")
    if folder.exists() and not folder.is_dir():
        raise MemlearnError(f"{what} {folder} is a file")
    found = present(folder, names)
    if resume and (not found if resume_file is None else resume_file not in found):
        missing = folder / (resume_file or names[0])
        raise FileNotFoundError(f"--resume: no training state at {missing}")
    if found and not (resume or overwrite):
        raise MemlearnError(
            f"{folder} already holds a run ({', '.join(found)}): continue it with --resume, "
            f"or start afresh with --overwrite (removes those files), or choose another {option}"
        )


def clear(folder: Path, names: Sequence[str]) -> None:
    """Remove a previous run's files (and their stale temporary files) from ``folder``."""
    for name in names:
        (folder / name).unlink(missing_ok=True)
    stems = {Path(n).stem for n in names}
    for tmp in folder.glob(".*.tmp"):
        if tmp.name[1:].split(".")[0] in stems:
            tmp.unlink(missing_ok=True)
