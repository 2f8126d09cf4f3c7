"""Reading level measurements of resistive cells from a CSV file (``memlearn device fit``).

Two layouts (UTF-8, a byte-order mark accepted, comma-separated, header first):

- reads: ``level`` (integer index of the programmed level), ``conductance`` (S), and
  optionally ``time`` (s since programming) and ``temperature`` (°C spent that time at); one
  row per cell read;
- statistics (what papers publish): ``level``, ``mean`` and ``std`` (S) of the level's
  conductance, optionally ``n`` (cells), ``time`` and ``temperature``.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from memlearn.errors import CorruptDataError, MemlearnError

REQUIRED_COLUMNS = ("level", "conductance")
STATISTICS_COLUMNS = ("level", "mean", "std")
OPTIONAL_COLUMNS = ("time", "temperature", "n")
NEGATIVE_READ_S = 10e-6
"""[E] Most negative conductance read accepted (S): read noise around 0 S, not a sign error."""


@dataclass
class Measurements:
    """Columns of a measurement file as float64 arrays (S, s, °C).  In the statistics layout
    ``conductance`` holds the level means, ``std`` their standard deviations and ``n`` the cell
    counts (NaN when not given); in the reads layout ``std`` is ``None``."""

    level: np.ndarray
    conductance: np.ndarray
    time: np.ndarray
    temperature: np.ndarray
    has_time: bool
    has_temperature: bool
    source: str = ""
    std: np.ndarray | None = None
    n: np.ndarray | None = None


def _csv_rows(p: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with p.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise CorruptDataError(f"{p.name}: not a text CSV file ({exc})") from exc
    return header, rows


def _column(p: Path, rows: list[dict[str, str]], col: str) -> np.ndarray:
    out = []
    for number, row in enumerate(rows, start=2):
        text = row.get(col)
        if text is None or not text.strip():
            raise CorruptDataError(f"{p.name} line {number}: column {col!r} is empty")
        try:
            value = float(text)
        except ValueError as exc:
            raise CorruptDataError(
                f"{p.name} line {number}: column {col!r} value {text!r} is not a number"
            ) from exc
        if not math.isfinite(value):
            raise CorruptDataError(f"{p.name} line {number}: {col} = {text!r} is not finite")
        out.append(value)
    return np.asarray(out)


def read_measurements(path: str | os.PathLike[str]) -> Measurements:
    """Read and validate a measurement CSV (see the module docstring for the layouts)."""
    p = Path(path)
    if not p.is_file():
        raise MemlearnError(f"measurement file {str(p)!r} does not exist")
    header, rows = _csv_rows(p)
    stats = all(c in header for c in STATISTICS_COLUMNS)
    needed = STATISTICS_COLUMNS if stats else REQUIRED_COLUMNS
    missing = [c for c in needed if c not in header]
    if missing:
        raise CorruptDataError(
            f"{p.name}: missing column(s) {missing}; need {list(REQUIRED_COLUMNS)} (reads) or "
            f"{list(STATISTICS_COLUMNS)} (statistics), optionally {list(OPTIONAL_COLUMNS)}, "
            f"found {header}"
        )
    if not rows:
        raise CorruptDataError(f"{p.name}: no data rows")
    level = _column(p, rows, "level")
    g = _column(p, rows, "mean" if stats else "conductance")
    bad = np.flatnonzero((level != np.round(level)) | (level < 0))
    if bad.size:
        raise CorruptDataError(
            f"{p.name} line {bad[0] + 2}: 'level' must hold non-negative integers, got "
            f"{level[bad[0]]:g}"
        )
    # a read of a cell near 0 S may come out slightly negative (read noise); far below is not
    bad = np.flatnonzero(g < -NEGATIVE_READ_S)
    if bad.size:
        raise CorruptDataError(
            f"{p.name} line {bad[0] + 2}: conductances must be >= {-NEGATIVE_READ_S:g} siemens "
            f"(a unit or sign error?), got {g[bad[0]]:g}"
        )
    if np.median(g) > 1.0:
        raise CorruptDataError(
            f"{p.name}: conductances look like microsiemens (median {np.median(g):g}); "
            "the file's conductances are in siemens"
        )
    has_time, has_temp = "time" in header, "temperature" in header
    t = _column(p, rows, "time") if has_time else np.zeros_like(g)
    temp = _column(p, rows, "temperature") if has_temp else np.full_like(g, np.nan)
    if has_time and np.any(t < 0):
        raise CorruptDataError(f"{p.name}: 'time' must be >= 0 seconds")
    if has_temp and np.any(temp <= -273.15):
        raise CorruptDataError(f"{p.name}: 'temperature' must be above -273.15 °C")
    if len(np.unique(level)) < 2:
        raise CorruptDataError(f"{p.name}: need at least 2 distinct levels")
    std = n = None
    if stats:
        std = _column(p, rows, "std")
        if np.any(std <= 0):
            raise CorruptDataError(f"{p.name}: 'std' must be > 0 siemens")
        n = _column(p, rows, "n") if "n" in header else np.full_like(g, np.nan)
        if np.any(n < 2):
            raise CorruptDataError(f"{p.name}: 'n' (cells per level) must be >= 2")
    return Measurements(level.astype(int), g, t, temp, has_time, has_temp, str(p), std, n)
