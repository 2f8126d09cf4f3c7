"""Fitting a preset's level statistics and drift parameters to measured conductances.

Input: a CSV file with a header and the columns ``level`` (integer index of the programmed
level), ``conductance`` (siemens), and optionally ``time`` (seconds since programming) and
``temperature`` (°C, the temperature the cells spent that time at).  One row per cell read.

Model (the one ``memlearn.devices.retention`` simulates), per level l with initial mean
``mu0_l`` and ``h_l = (mu0_l / g_ref)^p`` (``p = relax_g_exp``), at effective time
``t_eff = time * AF(T; Ea)``:

    mean_l(t) = mu0_l - m h_l L(t),     var_l(t) = V0_l + s^2 h_l^2 L(t)^2,   L = ln(1 + t / t0)

``mu0_l``, ``m``, ``V0_l`` and ``s^2`` are weighted linear least-squares fits of the group
means and variances.  The nonlinear parameters minimise the joint residual on grids: ``Ea``
when two or more temperatures are present and one of them has two or more times, ``p`` when
there are two or more times and three or more levels; otherwise the base preset's value is
kept.  Group statistics are robust: reads more than 6 robust standard deviations from the group
median (stuck or failed cells) are dropped and counted.

The result is a new preset: the base preset with the window set to the lowest and highest
level means, and the relaxation parameters of the strategy family that programmed the data
(``*_reset`` for hybrid / iterative RESET, ``*_set`` for SET-terminated strategies) replaced
by the fit, each with a source naming the file.  The fast-relaxation spread is the level
variance at t -> 0 less the verify band's (uniform, ``verify_tolerance^2 / 3``) and the base
preset's read noise (the reads in the file carry it).

The file is UTF-8 (a byte-order mark is accepted), comma-separated, header first.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import torch

from memlearn.devices.physics import read_sigma
from memlearn.devices.preset import DevicePreset, load_preset
from memlearn.devices.retention import acceleration_factor, celsius
from memlearn.devices.rram import require_resistive
from memlearn.devices.strategies import check_strategy, get_strategy
from memlearn.errors import CorruptDataError, MemlearnError

REQUIRED_COLUMNS = ("level", "conductance")
OPTIONAL_COLUMNS = ("time", "temperature")


@dataclass
class Measurements:
    """Columns of a measurement file as float64 arrays (time in s, temperature in °C)."""

    level: np.ndarray
    conductance: np.ndarray
    time: np.ndarray
    temperature: np.ndarray
    has_time: bool
    has_temperature: bool
    source: str = ""


@dataclass
class FitResult:
    """Fitted values; ``levels`` holds per-level (index, initial mean S, initial std S)."""

    preset: DevicePreset
    levels: list[tuple[int, float, float]]
    drift_mean: float | None
    drift_sigma: float | None
    ea_ev: float | None
    fast_sigma: float | None
    g_exp: float | None
    dropped_outliers: int
    rows: int
    family: str
    extra: dict[str, float] = field(default_factory=dict)


def read_measurements(path: str | os.PathLike[str]) -> Measurements:
    """Read and validate a measurement CSV (see the module docstring for the columns)."""
    p = Path(path)
    if not p.is_file():
        raise MemlearnError(f"measurement file {str(p)!r} does not exist")
    try:
        with p.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            header = [h.strip().lower() for h in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in header]
            if missing:
                raise CorruptDataError(
                    f"{p.name}: missing column(s) {missing}; need {list(REQUIRED_COLUMNS)} and "
                    f"optionally {list(OPTIONAL_COLUMNS)}, found {header}"
                )
            reader.fieldnames = header
            rows = list(reader)
    except UnicodeDecodeError as exc:
        raise CorruptDataError(f"{p.name}: not a text CSV file ({exc})") from exc
    if not rows:
        raise CorruptDataError(f"{p.name}: no data rows")
    has_time = "time" in header
    has_temp = "temperature" in header
    cols: dict[str, list[float]] = {c: [] for c in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)}
    for number, row in enumerate(rows, start=2):
        for col in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS):
            if col == "time" and not has_time or col == "temperature" and not has_temp:
                continue
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
            cols[col].append(value)
    level = np.asarray(cols["level"])
    g = np.asarray(cols["conductance"])
    bad = np.flatnonzero((level != np.round(level)) | (level < 0))
    if bad.size:
        raise CorruptDataError(
            f"{p.name} line {bad[0] + 2}: 'level' must hold non-negative integers, got "
            f"{level[bad[0]]:g}"
        )
    bad = np.flatnonzero(g < 0)
    if bad.size:  # an open cell may read 0 S; a negative read is a unit or sign error
        raise CorruptDataError(
            f"{p.name} line {bad[0] + 2}: 'conductance' must be >= 0 siemens, got {g[bad[0]]:g}"
        )
    if np.median(g) > 1.0:
        raise CorruptDataError(
            f"{p.name}: conductances look like microsiemens (median {np.median(g):g}); "
            "the 'conductance' column is in siemens"
        )
    t = np.asarray(cols["time"]) if has_time else np.zeros_like(g)
    temp = np.asarray(cols["temperature"]) if has_temp else np.full_like(g, np.nan)
    if has_time and np.any(t < 0):
        raise CorruptDataError(f"{p.name}: 'time' must be >= 0 seconds")
    if has_temp and np.any(temp <= -273.15):
        raise CorruptDataError(f"{p.name}: 'temperature' must be above -273.15 °C")
    if len(np.unique(level)) < 2:
        raise CorruptDataError(f"{p.name}: need at least 2 distinct levels")
    return Measurements(level.astype(int), g, t, temp, has_time, has_temp, str(p))


def _robust(values: np.ndarray) -> tuple[np.ndarray, int]:
    med = np.median(values)
    mad = np.median(np.abs(values - med)) * 1.4826
    if mad == 0:
        return values, 0
    keep = np.abs(values - med) <= 6 * mad
    return values[keep], int((~keep).sum())


def _groups(
    m: Measurements, t_ref_k: float, settle_s: float
) -> tuple[list[tuple[int, float, float, float, float, int]], int]:
    """Per (level, time, temperature) group: level, time (s), kelvin, mean, var, n."""
    temps = np.where(np.isnan(m.temperature), t_ref_k - 273.15, m.temperature)
    times = np.where(m.has_time, m.time, settle_s)
    keys = np.stack([m.level, times, temps], axis=1)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    out = []
    dropped = 0
    for i, (lvl, t, temp) in enumerate(uniq):
        vals, d = _robust(m.conductance[inverse.ravel() == i])
        dropped += d
        if len(vals) < 2:
            continue
        out.append((int(lvl), float(t), celsius(temp), vals.mean(), vals.var(ddof=1), len(vals)))
    return out, dropped


def _drift_fit(
    groups: list, ea: float, t_ref_k: float, t0: float, g_ref: float, g_exp: float
) -> tuple[list[int], np.ndarray, np.ndarray, float]:
    """Linear fits of means and variances at a given Ea (eV) and level exponent ``g_exp``;
    returns (levels, mean parameters, variance parameters, weighted residual)."""
    levels = sorted({g[0] for g in groups})
    col = {lvl: i for i, lvl in enumerate(levels)}
    n_l = len(levels)
    t_eff = np.array([g[1] * acceleration_factor(g[2], ea, t_ref_k) for g in groups])
    ell = np.log1p(t_eff / t0)
    means = np.array([g[3] for g in groups])
    var = np.array([g[4] for g in groups])
    counts = np.array([g[5] for g in groups], dtype=float)
    # first pass: per-level intercepts give h_l
    first = {}
    for g, lv in zip(groups, ell, strict=True):
        if g[0] not in first or lv < first[g[0]][0]:
            first[g[0]] = (lv, g[3])
    h = np.array([(max(first[g[0]][1], 0.0) / g_ref) ** g_exp for g in groups])
    a_mean = np.zeros((len(groups), n_l + 1))
    a_var = np.zeros((len(groups), n_l + 1))
    for i, g in enumerate(groups):
        a_mean[i, col[g[0]]] = 1.0
        a_var[i, col[g[0]]] = 1.0
    a_mean[:, n_l] = -h * ell
    a_var[:, n_l] = (h * ell) ** 2
    # weights: standard errors of a mean (sigma / sqrt n) and of a variance (var sqrt(2/(n-1)))
    w_mean = np.sqrt(counts) / np.sqrt(np.maximum(var, 1e-30))
    w_var = 1.0 / (np.maximum(var, 1e-30) * np.sqrt(2.0 / np.maximum(counts - 1, 1)))
    if len(np.unique(ell)) < 2:  # one time only: no drift term can be told apart
        a_mean[:, n_l] = 0.0
        a_var[:, n_l] = 0.0
    p_mean, *_ = np.linalg.lstsq(a_mean * w_mean[:, None], means * w_mean, rcond=None)
    p_var, *_ = np.linalg.lstsq(a_var * w_var[:, None], var * w_var, rcond=None)
    p_var[n_l] = max(p_var[n_l], 0.0)
    res = np.sum(((a_mean @ p_mean - means) * w_mean) ** 2) + np.sum(
        ((a_var @ p_var - var) * w_var) ** 2
    )
    return levels, p_mean, p_var, float(res)


def _grid_min(
    f: Callable[[float], float], lo: float, hi: float, step: float, fine: float, floor: float
) -> float:
    """Argmin of ``f`` on a grid ``lo..hi`` by ``step``, refined by ``fine`` around the best."""
    grid = np.arange(lo, hi + step / 2, step)
    best = float(grid[int(np.argmin([f(float(x)) for x in grid]))])
    grid = np.arange(max(best - step, floor), best + step + fine / 2, fine)
    return float(grid[int(np.argmin([f(float(x)) for x in grid]))])


def fit_measurements(
    path: str | os.PathLike[str],
    base: str | DevicePreset = "hfo2-mlc",
    strategy: str = "hybrid",
    name: str | None = None,
) -> FitResult:
    """Fit ``base`` to the measurements in ``path``; see the module docstring."""
    check_strategy(strategy)
    preset = load_preset(base)
    require_resistive(preset, "fitting")
    m = read_measurements(path)
    v = preset.values
    groups, dropped = _groups(m, v["t_ref_k"], v["settle_s"])
    if len({g[0] for g in groups}) < 2:
        raise CorruptDataError(f"{Path(path).name}: need at least 2 levels with >= 2 reads each")
    family = "reset" if get_strategy(strategy).ends_with_reset else "set"
    n_times = len({(g[1], g[2]) for g in groups})
    n_temps = len({g[2] for g in groups})
    # Ea is identifiable only with two temperatures and a time series at one of them at least
    times_per_temp = {}
    for g in groups:
        times_per_temp.setdefault(g[2], set()).add(g[1])
    fit_ea = n_temps >= 2 and max(len(t) for t in times_per_temp.values()) >= 2
    n_levels = len({g[0] for g in groups})
    fit_exp = n_times >= 2 and n_levels >= 3
    ea, g_exp = _search_nonlinear(groups, v, fit_ea, fit_exp)
    levels, p_mean, p_var, _ = _drift_fit(
        groups, ea, v["t_ref_k"], v["relax_t0_s"], v["g_ref"], g_exp
    )
    n_l = len(levels)
    stats = []
    for i, lvl in enumerate(levels):
        first = min((g for g in groups if g[0] == lvl), key=lambda g: (g[1], g[2]))
        stats.append((lvl, float(p_mean[i]), math.sqrt(max(first[4], 0.0))))
    label = f"[P] fit to {Path(path).name} ({len(m.level)} reads) by memlearn device fit"
    changes: dict[str, float] = {}
    sources: dict[str, str] = {}
    means = [s[1] for s in stats]
    changes["g_min"], changes["g_max"] = min(means), max(means)
    sources["g_min"] = sources["g_max"] = f"{label}: lowest / highest level mean"
    drift_mean = drift_sigma = fast = None
    if n_times >= 2:
        drift_mean = float(p_mean[n_l])
        drift_sigma = math.sqrt(float(p_var[n_l]))
        changes[f"relax_mean_{family}"] = drift_mean
        changes[f"relax_log_{family}"] = drift_sigma
        sources[f"relax_mean_{family}"] = f"{label}: mean drift per ln(t) at g_ref"
        sources[f"relax_log_{family}"] = f"{label}: spread growth per ln(t) at g_ref"
        if fit_ea:
            changes["ea_ev"] = ea
            sources["ea_ev"] = f"{label}: Arrhenius activation energy"
        else:
            ea = None
        if fit_exp:
            changes["relax_g_exp"] = g_exp
            sources["relax_g_exp"] = f"{label}: level exponent of the relaxation"
        fast = _fast_sigma(preset, [s[1] for s in stats], np.asarray(p_var[:n_l]), g_exp)
        changes[f"relax_fast_{family}"] = fast
        sources[f"relax_fast_{family}"] = f"{label}: initial spread beyond the verify band"
    else:
        ea = None
    if not fit_exp:
        g_exp = None
    return FitResult(
        preset=_fitted_preset(preset, changes, sources, str(path), strategy, stats, name),
        levels=stats,
        drift_mean=drift_mean,
        drift_sigma=drift_sigma,
        ea_ev=ea,
        fast_sigma=fast,
        g_exp=g_exp,
        dropped_outliers=dropped,
        rows=len(m.level),
        family=family,
    )


def _search_nonlinear(
    groups: list, v: dict[str, float], fit_ea: bool, fit_exp: bool
) -> tuple[float, float]:
    """``(Ea in eV, level exponent)``: coordinate descent on grids (Ea at the base exponent,
    the exponent at that Ea, Ea again); the base preset's value where one is not fitted."""
    ea = v["ea_ev"]
    g_exp = v.get("relax_g_exp", 0.5)

    def residual(e: float, x: float) -> float:
        return _drift_fit(groups, e, v["t_ref_k"], v["relax_t0_s"], v["g_ref"], x)[3]

    for _ in range(2 if fit_exp else 1):
        if fit_ea:
            ea = _grid_min(partial(residual, x=g_exp), 0.2, 3.0, 0.02, 0.002, floor=0.05)
        if fit_exp:
            g_exp = _grid_min(partial(residual, ea), 0.0, 1.5, 0.05, 0.005, floor=0.0)
    return ea, g_exp


def _fast_sigma(
    preset: DevicePreset, level_means: list[float], v0: np.ndarray, g_exp: float
) -> float:
    """The fast relaxation sigma at ``g_ref`` (S): the levels' intercept variances ``v0``
    (S^2) less the verify band's uniform share and the read noise, scaled to ``g_ref``."""
    v = preset.values
    band = v["verify_tolerance"] ** 2 / 3.0
    mu0 = np.array([max(m, 0.0) for m in level_means])
    noise = read_sigma(preset, torch.as_tensor(mu0, dtype=torch.float64)).numpy() ** 2
    h2 = (mu0 / v["g_ref"]) ** (2.0 * g_exp)
    fast_var = np.clip(v0 - band - noise, 0.0, None) / np.maximum(h2, 1e-12)
    return float(math.sqrt(float(np.mean(fast_var))))


def _fitted_preset(
    preset: DevicePreset,
    changes: dict[str, float],
    sources: dict[str, str],
    path: str,
    strategy: str,
    stats: list[tuple[int, float, float]],
    name: str | None,
) -> DevicePreset:
    """The base preset with the fitted ``changes`` (their ``sources``) and a record of the fit
    in its meta table."""
    new = preset.replace(**changes)
    merged_sources = dict(new.sources)
    merged_sources.update(sources)
    meta = dict(preset.meta)
    meta["fitted_from"] = path
    meta["base_preset"] = preset.name
    meta["fit_strategy"] = strategy
    meta["fit_levels"] = json.dumps([{"level": s[0], "mean_s": s[1], "std_s": s[2]} for s in stats])
    return DevicePreset(
        name=name or f"{preset.name}-fit",
        kind=preset.kind,
        description=f"{preset.description} (fitted to {Path(path).name})",
        values=new.values,
        sources=merged_sources,
        origin=path,
        meta=meta,
    )
