"""Fitting a preset's spread, stability law and drift to measured (or published) level data.

Input: a CSV file with a header, in one of two layouts (UTF-8, a byte-order mark accepted):

- reads: ``level`` (integer index of the programmed level), ``conductance`` (S), and
  optionally ``time`` (s since programming) and ``temperature`` (°C spent that time at); one
  row per cell read;
- statistics (what papers publish): ``level``, ``mean`` and ``std`` (S) of the level's
  conductance, optionally ``n`` (cells; weights the fit) and ``time`` / ``temperature``.

Model (the one ``memlearn.devices.retention`` simulates).  The spread right after programming
(the earliest time of each level) is what the write strategy itself leaves (verify band, read
noise: simulated with the base preset, relaxation spread off) plus the fast relaxation of a
state of stability factor ``h`` (``retention.stability_factor``, from the SET compliance and
RESET depth the simulated cells record):

    std_l^2 = S0_l^2 + relax_fast^2 (1 - exp(-t_l / tau)) <h^2>_l

``relax_fast`` is a weighted least-squares fit at each ``relax_icc_exp`` of a grid, the best
exponent kept (three or more levels; otherwise the base's exponent).  With two or more times,
the means and variances over time give the mean drift ``m`` and the log-spread growth ``s``:

    mean_l(t) = mu0_l - m L(t),     var_l(t) = V0_l + s^2 <h^2>_l L(t)^2,   L = ln(1 + t / t0)

at effective time ``t * AF(T; Ea)``, ``Ea`` fitted on a grid when two or more temperatures are
present and one of them has two or more times.  Read groups are robust: reads more than 6
robust standard deviations from the group median (stuck or failed cells) are dropped.

The result is a new preset: the base preset with the window set to the lowest and highest
level means and the fitted parameters replaced, each with a source naming the file.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch

from memlearn.devices.cells import STUCK_NONE
from memlearn.devices.measurements import Measurements, read_measurements
from memlearn.devices.physics import read_sigma
from memlearn.devices.preset import DevicePreset, load_preset
from memlearn.devices.programming import program
from memlearn.devices.retention import acceleration_factor, celsius, stability_factor
from memlearn.devices.rram import require_resistive
from memlearn.devices.strategies import check_strategy
from memlearn.errors import CorruptDataError

__all__ = ["FIT_CELLS", "FitResult", "fit_measurements", "read_measurements"]

FIT_CELLS = 2000
"""Cells per level the fit simulates to learn what the write strategy itself leaves."""


@dataclass
class FitResult:
    """Fitted values; ``levels`` holds per-level (index, initial mean S, initial std S);
    ``spread_check`` per level (mean S, measured std S, std of the fitted preset S)."""

    preset: DevicePreset
    levels: list[tuple[int, float, float]]
    drift_mean: float | None
    drift_sigma: float | None
    ea_ev: float | None
    fast_sigma: float | None
    icc_exp: float | None
    dropped_outliers: int
    rows: int
    strategy: str
    spread_check: list[tuple[float, float, float]] = field(default_factory=list)


def _robust(values: np.ndarray) -> tuple[np.ndarray, int]:
    med = np.median(values)
    mad = np.median(np.abs(values - med)) * 1.4826
    if mad == 0:
        return values, 0
    keep = np.abs(values - med) <= 6 * mad
    return values[keep], int((~keep).sum())


def _groups(
    m: Measurements, t_ref_k: float, settle_s: float
) -> tuple[list[tuple[int, float, float, float, float, float]], int]:
    """Per (level, time, temperature) group: level, time (s), kelvin, mean, var, n."""
    temps = np.where(np.isnan(m.temperature), t_ref_k - 273.15, m.temperature)
    times = m.time if m.has_time else np.full_like(m.conductance, settle_s)
    if m.std is not None:
        n = np.where(np.isnan(m.n), 100.0, m.n)  # unknown counts: equal weights
        rows = zip(m.level, times, temps, m.conductance, m.std, n, strict=True)
        return [(int(lv), float(t), celsius(c), mu, sd * sd, k) for lv, t, c, mu, sd, k in rows], 0
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


@dataclass
class _Simulated:
    """What the write strategy itself leaves per level (relaxation spread off): the variance
    ``s0`` (S^2, read noise included) and the cells' SET compliance (A) and RESET depth."""

    s0: np.ndarray
    icc: list[torch.Tensor]
    depth: list[torch.Tensor]
    std_fitted: np.ndarray | None = None


def _simulate(
    preset: DevicePreset, strategy: str, means: list[float], ages: list[float], seed: int
) -> _Simulated:
    """Program ``FIT_CELLS`` cells per level mean (S) with ``strategy`` and let them relax
    ``settle_s`` (preset's law); returns the per-level statistics of the healthy cells."""
    gen = torch.Generator().manual_seed(seed)
    target = torch.tensor(means, dtype=torch.float32).repeat_interleave(FIT_CELLS)
    res = program(preset, target, strategy, generator=gen)
    ok = (res.cells.stuck == STUCK_NONE) & ~res.failed
    s0, icc, depth = [], [], []
    for i, (mu, age) in enumerate(zip(means, ages, strict=True)):
        sel = ok[i * FIT_CELLS : (i + 1) * FIT_CELLS]
        g = res.cells.g[i * FIT_CELLS : (i + 1) * FIT_CELLS][sel].double()
        noise = float(read_sigma(preset, torch.tensor([mu], dtype=torch.float64), age)[0])
        s0.append(float(g.var()) + noise * noise)
        icc.append(res.cells.set_icc[i * FIT_CELLS : (i + 1) * FIT_CELLS][sel])
        depth.append(res.cells.reset_depth[i * FIT_CELLS : (i + 1) * FIT_CELLS][sel])
    return _Simulated(np.array(s0), icc, depth)


def _h2(preset: DevicePreset, sim: _Simulated, icc_exp: float) -> np.ndarray:
    """Per level, the mean squared stability factor ``<h^2>`` at exponent ``icc_exp``."""
    p = preset.replace(relax_icc_exp=icc_exp)
    out = []
    for icc, depth in zip(sim.icc, sim.depth, strict=True):
        cells = SimpleNamespace(set_icc=icc, reset_depth=depth)
        out.append(float(stability_factor(p, cells).double().square().mean()))
    return np.array(out)


def _spread_fit(
    preset: DevicePreset, sim: _Simulated, var: np.ndarray, n: np.ndarray, frac: np.ndarray,
    fit_exp: bool,
) -> tuple[float, float]:  # fmt: skip
    """``(relax_fast in S, relax_icc_exp)``: least squares of the excess variance over what the
    strategy leaves, ``var - s0 = relax_fast^2 frac <h^2>``, on a grid of exponents."""
    y = var - sim.s0
    w = 1.0 / (var * var * 2.0 / np.maximum(n - 1.0, 1.0))  # 1 / variance of a variance

    def solve(q: float) -> tuple[float, float]:
        x = frac * _h2(preset, sim, q)
        f2 = max(float(np.sum(w * x * y) / np.sum(w * x * x)), 0.0)
        return f2, float(np.sum(w * (y - f2 * x) ** 2))

    q = preset.values["relax_icc_exp"]
    if fit_exp:
        grid = np.round(np.arange(-0.5, 1.5001, 0.01), 2)
        q = float(grid[int(np.argmin([solve(float(g))[1] for g in grid]))])
    return math.sqrt(solve(q)[0]), q


def _drift_fit(
    groups: list, ea: float, t_ref_k: float, t0: float, h2: dict[int, float]
) -> tuple[list[int], np.ndarray, np.ndarray, float]:
    """Linear fits of means and variances at a given Ea (eV), ``h2`` the levels' ``<h^2>``;
    returns (levels, mean parameters, variance parameters, weighted residual)."""
    levels = sorted({g[0] for g in groups})
    col = {lvl: i for i, lvl in enumerate(levels)}
    n_l = len(levels)
    t_eff = np.array([g[1] * acceleration_factor(g[2], ea, t_ref_k) for g in groups])
    ell = np.log1p(t_eff / t0)
    means = np.array([g[3] for g in groups])
    var = np.array([g[4] for g in groups])
    counts = np.array([g[5] for g in groups], dtype=float)
    a_mean = np.zeros((len(groups), n_l + 1))
    a_var = np.zeros((len(groups), n_l + 1))
    for i, g in enumerate(groups):
        a_mean[i, col[g[0]]] = 1.0
        a_var[i, col[g[0]]] = 1.0
    a_mean[:, n_l] = -ell
    a_var[:, n_l] = np.array([h2[g[0]] for g in groups]) * ell**2
    # weights: standard errors of a mean (sigma / sqrt n) and of a variance (var sqrt(2/(n-1)))
    w_mean = np.sqrt(counts) / np.sqrt(np.maximum(var, 1e-30))
    w_var = 1.0 / (np.maximum(var, 1e-30) * np.sqrt(2.0 / np.maximum(counts - 1, 1)))
    p_mean, *_ = np.linalg.lstsq(a_mean * w_mean[:, None], means * w_mean, rcond=None)
    p_var, *_ = np.linalg.lstsq(a_var * w_var[:, None], var * w_var, rcond=None)
    p_var[n_l] = max(p_var[n_l], 0.0)
    res = np.sum(((a_mean @ p_mean - means) * w_mean) ** 2) + np.sum(
        ((a_var @ p_var - var) * w_var) ** 2
    )
    return levels, p_mean, p_var, float(res)


def _grid_min(f: Callable[[float], float], lo: float, hi: float, step: float, fine: float) -> float:
    """Argmin of ``f`` on a grid ``lo..hi`` by ``step``, refined by ``fine`` around the best."""
    grid = np.arange(lo, hi + step / 2, step)
    best = float(grid[int(np.argmin([f(float(x)) for x in grid]))])
    grid = np.arange(max(best - step, lo), best + step + fine / 2, fine)
    return float(grid[int(np.argmin([f(float(x)) for x in grid]))])


def fit_measurements(
    path: str | os.PathLike[str],
    base: str | DevicePreset = "hfo2-mlc",
    strategy: str = "hybrid",
    name: str | None = None,
    seed: int = 0,
) -> FitResult:
    """Fit ``base`` to the measurements in ``path`` written with ``strategy``; ``seed`` seeds
    the simulation of what the strategy itself leaves.  See the module docstring."""
    check_strategy(strategy)
    preset = load_preset(base)
    require_resistive(preset, "fitting")
    m = read_measurements(path)
    v = preset.values
    groups, dropped = _groups(m, v["t_ref_k"], v["settle_s"])
    levels = sorted({g[0] for g in groups})
    if len(levels) < 2:
        raise CorruptDataError(f"{Path(path).name}: need at least 2 levels with >= 2 reads each")
    first = [min((g for g in groups if g[0] == lv), key=lambda g: (g[1], g[2])) for lv in levels]
    ages = [g[1] * acceleration_factor(g[2], v["ea_ev"], v["t_ref_k"]) for g in first]
    means = [g[3] for g in first]
    # what the strategy itself leaves, in the data's window (the read noise scales with g_max)
    quiet = preset.replace(g_min=min(means), g_max=max(means), relax_fast=0.0, relax_log=0.0)
    sim = _simulate(quiet, strategy, means, ages, seed)
    frac = 1.0 - np.exp(-np.array(ages) / v["relax_tau_s"])
    var0 = np.array([g[4] for g in first])
    n0 = np.array([g[5] for g in first], dtype=float)
    fast, q = _spread_fit(preset, sim, var0, n0, frac, fit_exp=len(levels) >= 3)
    label = f"[P] fit to {Path(path).name} ({len(m.level)} rows) by memlearn device fit"
    changes: dict[str, float] = {"g_min": min(means), "g_max": max(means), "relax_fast": fast}
    sources = {k: f"{label}: lowest / highest level mean" for k in ("g_min", "g_max")}
    sources["relax_fast"] = f"{label}: fast relaxation beyond what {strategy} leaves"
    if len(levels) >= 3:
        changes["relax_icc_exp"] = q
        sources["relax_icc_exp"] = f"{label}: spread law in the SET compliance"
    drift_mean = drift_sigma = ea = None
    if len({(g[1], g[2]) for g in groups}) >= 2:
        drift_mean, drift_sigma, ea = _fit_drift(preset.replace(relax_icc_exp=q), groups, sim)
        changes.update(relax_mean=drift_mean, relax_log=drift_sigma)
        sources["relax_mean"] = f"{label}: mean drift per ln(t)"
        sources["relax_log"] = f"{label}: spread growth per ln(t) at I_ref"
        if ea is not None:
            changes["ea_ev"] = ea
            sources["ea_ev"] = f"{label}: Arrhenius activation energy"
    fitted = _fitted_preset(preset, changes, sources, str(path), strategy, levels, name)
    check = _simulate(fitted, strategy, means, ages, seed)  # relaxation on: the fitted spread
    return FitResult(
        preset=fitted,
        levels=[(lv, g[3], math.sqrt(g[4])) for lv, g in zip(levels, first, strict=True)],
        drift_mean=drift_mean,
        drift_sigma=drift_sigma,
        ea_ev=ea,
        fast_sigma=fast,
        icc_exp=q if len(levels) >= 3 else None,
        dropped_outliers=dropped,
        rows=len(m.level),
        strategy=strategy,
        spread_check=[
            (g[3], math.sqrt(g[4]), math.sqrt(s)) for g, s in zip(first, check.s0, strict=True)
        ],
    )


def _fit_drift(
    preset: DevicePreset, groups: list, sim: _Simulated
) -> tuple[float, float, float | None]:
    """``(relax_mean S, relax_log S, Ea eV or None)`` from groups at two or more times; Ea is
    fitted when two temperatures are present and one of them has two or more times."""
    v = preset.values
    levels = sorted({g[0] for g in groups})
    h2 = dict(zip(levels, _h2(preset, sim, v["relax_icc_exp"]), strict=True))
    times_per_temp: dict[float, set[float]] = {}
    for g in groups:
        times_per_temp.setdefault(g[2], set()).add(g[1])
    fit_ea = len(times_per_temp) >= 2 and max(len(t) for t in times_per_temp.values()) >= 2

    def residual(e: float) -> float:
        return _drift_fit(groups, e, v["t_ref_k"], v["relax_t0_s"], h2)[3]

    ea = _grid_min(residual, 0.2, 3.0, 0.02, 0.002) if fit_ea else v["ea_ev"]
    _, p_mean, p_var, _ = _drift_fit(groups, ea, v["t_ref_k"], v["relax_t0_s"], h2)
    n_l = len(levels)
    return float(p_mean[n_l]), math.sqrt(float(p_var[n_l])), ea if fit_ea else None


def _fitted_preset(
    preset: DevicePreset,
    changes: dict[str, float],
    sources: dict[str, str],
    path: str,
    strategy: str,
    levels: list[int],
    name: str | None,
) -> DevicePreset:
    """The base preset with the fitted ``changes`` (their ``sources``) and a record of the fit
    in its meta table."""
    new = preset.replace(**changes)
    merged_sources = dict(new.sources)
    merged_sources.update(sources)
    meta = dict(preset.meta)
    meta.update(fitted_from=path, base_preset=preset.name, fit_strategy=strategy)
    meta["fit_levels"] = json.dumps(levels)
    return DevicePreset(
        name=name or f"{preset.name}-fit",
        kind=preset.kind,
        description=f"{preset.description} (fitted to {Path(path).name})",
        values=new.values,
        sources=merged_sources,
        origin=path,
        meta=meta,
    )
