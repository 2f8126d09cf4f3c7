"""Where data sets and processed caches live.

Data root, in order: the explicit ``root`` argument, then the ``MEMLEARN_DATA`` environment
variable, then the per-user directory ``<user cache>/memlearn/data`` (platformdirs). Inside a
data root each data set has its own folder: ``omniglot/`` (the official zips or their extracted
folders) and ``mnist/`` (the four official ``.gz`` files).

Processed arrays (the 28x28 Omniglot cache) are never written beside the data, which may be
read-only: they go to ``MEMLEARN_CACHE`` or ``<user cache>/memlearn/processed``.
"""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs

from memlearn.errors import DataNotFoundError

DATA_ENV = "MEMLEARN_DATA"
CACHE_ENV = "MEMLEARN_CACHE"

# Folder names accepted for each data set inside a data root (the first is the one written by
# ``memlearn data fetch``; the others are common layouts, e.g. torchvision's).
DATASET_DIRS: dict[str, tuple[str, ...]] = {
    "omniglot": ("omniglot", "omniglot-py"),
    "mnist": ("mnist", "MNIST/raw"),
}

# The official files (or extracted folders) whose presence marks a data set in a folder.
DATASET_MARKERS: dict[str, tuple[str, ...]] = {
    "omniglot": (
        "images_background",
        "images_evaluation",
        "images_background_small1",
        "images_background_small2",
        "all_runs",
    ),
    "mnist": (
        "train-images-idx3-ubyte",
        "train-labels-idx1-ubyte",
        "t10k-images-idx3-ubyte",
        "t10k-labels-idx1-ubyte",
    ),
}

FETCH_HINT: dict[str, str] = {
    "omniglot": (
        "get it with `memlearn data fetch omniglot [--root DIR]`, or put the official files "
        "(images_background.zip, images_evaluation.zip, images_background_small1.zip, "
        "images_background_small2.zip, all_runs.zip from github.com/brendenlake/omniglot, "
        "zipped or extracted) in <data root>/omniglot/"
    ),
    "mnist": (
        "get it with `memlearn data fetch mnist [--root DIR]`, or put the four official files "
        "(train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz, "
        "t10k-labels-idx1-ubyte.gz) in <data root>/mnist/"
    ),
}


def user_data_dir() -> Path:
    """The per-user default data root: ``<platformdirs user cache>/memlearn/data``."""
    return Path(platformdirs.user_cache_dir("memlearn")) / "data"


def data_root_candidates(root: str | os.PathLike[str] | None = None) -> list[Path]:
    """The data roots searched, in order: ``[root]`` if given, else ``MEMLEARN_DATA`` (if set)
    followed by the per-user directory."""
    if root is not None:
        return [Path(root).expanduser()]
    found: list[Path] = []
    env = os.environ.get(DATA_ENV)
    if env:
        found.append(Path(env).expanduser())
    found.append(user_data_dir())
    return found


def resolve_data_root(
    root: str | os.PathLike[str] | None = None, dataset: str | None = None
) -> Path:
    """The data root to use.

    Without ``dataset``: the first candidate (explicit ``root``, else ``MEMLEARN_DATA``, else the
    per-user directory), whether or not it exists yet (``memlearn data fetch`` writes there).
    With ``dataset`` (``"omniglot"`` or ``"mnist"``): the first candidate that holds that data
    set; :class:`DataNotFoundError` naming every directory tried and how to get the data if none.
    """
    candidates = data_root_candidates(root)
    if dataset is None:
        return candidates[0]
    if dataset not in DATASET_DIRS:
        raise ValueError(f"unknown data set {dataset!r}; known: {', '.join(DATASET_DIRS)}")
    tried: list[Path] = []
    for cand in candidates:
        for sub in DATASET_DIRS[dataset]:
            folder = cand / sub
            tried.append(folder)
            if any(_present(folder, marker) for marker in DATASET_MARKERS[dataset]):
                return cand
    raise missing_error(dataset, tried)


def _present(folder: Path, marker: str) -> bool:
    return any((folder / f"{marker}{ext}").exists() for ext in ("", ".zip", ".gz"))


def dataset_dirs(dataset: str, root: str | os.PathLike[str] | None = None) -> list[Path]:
    """Every folder where ``dataset`` may live, over all candidate roots, in search order."""
    out: list[Path] = []
    for cand in data_root_candidates(root):
        out.extend(cand / sub for sub in DATASET_DIRS[dataset])
    return out


def missing_error(what: str, tried: list[Path], dataset: str | None = None) -> DataNotFoundError:
    """A :class:`DataNotFoundError` naming what is missing, the paths tried and how to get it."""
    hint = FETCH_HINT[dataset or what]
    lines = "\n".join(f"  - {p}" for p in tried)
    return DataNotFoundError(
        f"{what} not found. Tried:\n{lines}\n"
        f"Set MEMLEARN_DATA or pass --root to point at a data root, or {hint}."
    )


def cache_dir() -> Path:
    """Where processed arrays are written: ``MEMLEARN_CACHE``, else
    ``<user cache>/memlearn/processed``."""
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_cache_dir("memlearn")) / "processed"
