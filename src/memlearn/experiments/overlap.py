"""Study 1: overlap between adjacent conductance states → accuracy after the on-chip updates.

For each number of levels, the preset's spread is scaled until the measured per-level spread σ,
relative to the level spacing Δ, reaches each target ratio (:func:`spread_variant`); the chips
are then built from that variant and adapt the run's tasks.  Up to the largest factor of
:func:`memlearn.devices.variants.scale_spread` every source of spread and the controller's
resolution scale together; beyond it (:func:`widen_spread`, up to :data:`WIDEST_FACTOR`) the
stochastic terms keep growing with the controller left at that resolution, so that the sweep
can reach σ/Δ ≥ 1 for every level count, 4 levels included (the verdict checks that it does).
A target beyond the widest factor gets that factor's spread.  The figure shows accuracy against
the *measured* σ/Δ.

When the drop does not show for a level count, :mod:`memlearn.experiments.attribution` switches
the loop's mechanisms off one at a time at its least and most overlapped points.

Published (REFERENCE.md §1): more overlap between adjacent states → lower accuracy; more
levels help slightly but raise the overlap risk.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from memlearn.devices.characterize import characterize
from memlearn.devices.preset import DevicePreset
from memlearn.devices.programming import check_strategy
from memlearn.devices.variants import (
    SPREAD_FACTOR_RANGE,
    SPREAD_PARAMETERS,
    scale_spread,
    spread_ratio,
)
from memlearn.errors import MemlearnError
from memlearn.experiments.attribution import (
    attribute,
    attribution_numbers,
    attribution_summary,
    write_attribution,
)
from memlearn.experiments.common import (
    POINT_COLUMNS,
    StudyInfo,
    StudyRun,
    adapt_point,
    conclude,
    error_over_window,
    paired_claim,
    pct,
    pyplot,
    save_data,
    save_figure,
)
from memlearn.experiments.report import StudyOutcome

KEY = "overlap"
TITLE = "Overlap between adjacent states"
PUBLISHED = (
    "more overlap between adjacent states → lower accuracy; more levels help slightly but "
    "raise the overlap risk"
)
CALIBRATION_CELLS = 200  # cells per level when measuring σ/Δ [E]: about ±5 % on σ
CALIBRATION_RTOL = 0.05  # measured σ/Δ within 5 % of the target [E]
CALIBRATION_ITER = 10  # fixed-point iterations of the spread factor
# [E] widest spread factor of the sweep, chosen so that the default preset's 4 levels reach
# σ/Δ ≥ 1 with a margin (tests/experiments/test_regime.py checks it at several seeds; README:
# the σ/Δ reached).
WIDEST_FACTOR = 15.0
REACHED_RATIO = 1.0  # the sweep must reach σ/Δ ≥ 1 for every level count (issue: the regime)
INFO = StudyInfo(KEY, TITLE, PUBLISHED)


def widen_spread(preset: DevicePreset, factor: float) -> DevicePreset:
    """``scale_spread(preset, factor)`` up to the largest factor it allows; beyond, that
    variant with the stochastic terms (``SPREAD_PARAMETERS``) times the rest of ``factor``
    (the controller's resolution stays), up to :data:`WIDEST_FACTOR`."""
    top = SPREAD_FACTOR_RANGE[1]
    if not 0 < factor <= max(top, WIDEST_FACTOR):
        raise MemlearnError(f"spread factor must be in (0, {WIDEST_FACTOR:g}], got {factor!r}")
    if factor <= top:
        return scale_spread(preset, factor)
    base = scale_spread(preset, top)
    rest = factor / top
    out = base.replace(**{k: base.values[k] * rest for k in SPREAD_PARAMETERS if k in base.values})
    meta = {**out.meta, "spread_factor": f"{factor:g}"}
    return dataclasses.replace(out, name=f"{preset.name}-spread{factor:g}", meta=meta)


def spread_variant(
    preset: DevicePreset, ratio: float, levels: int, strategy: str, seed: int
) -> tuple[DevicePreset, float, float]:
    """The :func:`widen_spread` variant whose measured σ/Δ is ``ratio`` within
    :data:`CALIBRATION_RTOL` (fixed-point iterations of the factor; the closest one found when
    they do not converge), or the widest variant when ``ratio`` is beyond its reach.

    Returns ``(variant, spread factor, measured σ/Δ)``.
    """
    widest = widen_spread(preset, WIDEST_FACTOR)
    top = spread_ratio(widest, levels, strategy, CALIBRATION_CELLS, seed)
    if ratio >= top * (1 - CALIBRATION_RTOL):
        return widest, WIDEST_FACTOR, top
    factor, best = 1.0, None
    for _ in range(CALIBRATION_ITER):
        variant = widen_spread(preset, factor)
        measured = spread_ratio(variant, levels, strategy, CALIBRATION_CELLS, seed)
        if best is None or abs(measured / ratio - 1) < abs(best[2] / ratio - 1):
            best = (variant, factor, measured)
        if abs(measured / ratio - 1) <= CALIBRATION_RTOL or measured <= 0:
            break
        factor = min(max(factor * ratio / measured, SPREAD_FACTOR_RANGE[0]), WIDEST_FACTOR)
    assert best is not None
    return best


def reachable_targets(
    run: StudyRun, ratios: Sequence[float], levels: int, strategy: str
) -> list[float]:
    """The targets below the widest σ/Δ the spread factors reach for ``levels`` levels, then
    that widest one (so no two points of a level count land on the same variant)."""
    widest = widen_spread(run.preset, WIDEST_FACTOR)
    top = spread_ratio(widest, levels, strategy, CALIBRATION_CELLS, run.study_seed(KEY))
    below = [r for r in ratios if r < top * (1 - 2 * CALIBRATION_RTOL)]
    return below + [top] if len(below) < len(ratios) else below


def overlap_point(point: dict[str, Any], seed: int) -> dict[str, Any]:
    """Find the spread for ``(levels, target_ratio)``, then adapt on that variant."""
    strategy, levels = point["strategy"], point["levels"]
    variant, factor, measured = spread_variant(
        point["preset"], point["target_ratio"], levels, strategy, seed
    )
    errors = characterize(variant, strategy, levels, CALIBRATION_CELLS, seed=seed)
    out = adapt_point({**point, "preset": variant}, seed)
    out.update(
        spread_factor=factor,
        sigma_over_spacing=measured,
        level_error_rate=errors.programmed.error_rate,
        error_over_window=error_over_window(errors.programmed, variant.window),
    )
    return out


def overlap_study(
    run: StudyRun,
    *,
    levels: Sequence[int] = (4, 8, 16),
    ratios: Sequence[float] = (0.05, 0.25, 0.75, 1.5, 3.0),
    strategy: str = "hybrid",
    tasks: int = 64,
    attribution: bool = True,
) -> StudyOutcome:
    """Accuracy after the on-chip updates vs σ/Δ, for each number of levels; with
    ``attribution``, the loop's mechanisms switched off where the drop does not show."""
    if len(ratios) < 2 or min(ratios) <= 0:
        raise MemlearnError(f"give at least two ratios σ/Δ > 0, got {list(ratios)}")
    if not levels or min(levels) < 2:
        raise MemlearnError(f"levels must be integers >= 2, got {list(levels)}")
    ratios = sorted(float(r) for r in ratios)
    check_strategy(strategy)
    wl = run.workload(tasks)
    points = [
        run.point(wl, strategy, n, target_ratio=r)
        for n in levels
        for r in reachable_targets(run, ratios, n, strategy)
    ]
    results = run.sweep(KEY, overlap_point, points)
    settings = {"levels": list(levels), "ratios": ratios, "strategy": strategy, "tasks": tasks}
    data = save_data(run, KEY, results, _COLUMNS, settings, results, wl)
    figure = _plot(run, results, wl.software_accuracy[:, -1].mean().item(), 1.0 / wl.ways)

    checks, drops, numbers = overlap_checks(results, levels)
    least = [min((r for r in results if r["levels"] == n), key=_ratio) for n in levels]
    more_levels_help = least[-1]["final_accuracy"] >= least[0]["final_accuracy"]
    notes = (
        f"Secondary trend (more levels help slightly): at the least overlap, {least[-1]['levels']} "
        f"levels reach {pct(least[-1]['final_accuracy'])} vs {pct(least[0]['final_accuracy'])} "
        f"for {least[0]['levels']} levels — {'seen' if more_levels_help else 'not seen'}. "
        f"Strategy {strategy}, policy {run.policy}; {tasks} tasks, one chip each; spread "
        f"scaled with `memlearn.devices.variants.scale_spread` up to x{SPREAD_FACTOR_RANGE[1]:g}, "
        f"beyond it the stochastic terms alone (up to x{WIDEST_FACTOR:g}); σ/Δ measured on "
        f"{CALIBRATION_CELLS} cells per level; a target beyond the widest spread gets it."
    )
    failing = [n for n in levels if not checks.get(_drop_claim(n), False)]
    if failing and attribution:
        rows = _attribute(run, results, points, failing)
        data.append(write_attribution(run, KEY, rows))
        numbers += attribution_numbers(rows)
        notes += " " + attribution_summary(rows) + "."
    return conclude(INFO, "; ".join(drops), checks, [figure.name], data, numbers, notes)


def _attribute(
    run: StudyRun, results: list[dict[str, Any]], points: list[dict[str, Any]], levels: list[int]
) -> list[dict[str, Any]]:
    """The attribution rows of each level count in ``levels``: its least vs most overlapped
    points, on their devices, with each mechanism of the loop switched off."""
    rows = []
    for n in levels:
        low, high = _ends(results, n)
        pair = tuple(
            {**points[results.index(r)], "preset": widen_spread(run.preset, r["spread_factor"])}
            for r in (low, high)
        )
        label = f"{n} levels, σ/Δ {_ratio(low):.2g} vs {_ratio(high):.2g}"
        rows += attribute(run, KEY, label, low, high, pair)  # type: ignore[arg-type]
    return rows


def _ratio(r: dict[str, Any]) -> float:
    return float(r["sigma_over_spacing"])


def _ends(results: list[dict[str, Any]], n: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """The least and the most overlapped results of ``n`` levels."""
    rows = sorted((r for r in results if r["levels"] == n), key=_ratio)
    return rows[0], rows[-1]


def _drop_claim(n: int) -> str:
    return f"{n} levels: least overlap beats most (95 % CI, paired)"


def overlap_checks(
    results: list[dict[str, Any]], levels: Sequence[int]
) -> tuple[dict[str, bool], list[str], list[tuple[str, str]]]:
    """The verdict on the overlap sweep's results (each with ``levels``,
    ``sigma_over_spacing``, per-task ``accuracy``): for every level count, the sweep reaches
    σ/Δ ≥ :data:`REACHED_RATIO` and the least overlapped point beats the most overlapped one
    beyond the 95 % CI of the paired difference.  Returns the checks, one observation per level
    count and the report's numbers."""
    checks: dict[str, bool] = {}
    drops: list[str] = []
    numbers: list[tuple[str, str]] = []
    for n in levels:
        rows = sorted((r for r in results if r["levels"] == n), key=_ratio)
        if len(rows) < 2:
            checks[_drop_claim(n)] = False
            continue
        low, high = rows[0], rows[-1]
        checks[f"{n} levels: the sweep reaches σ/Δ ≥ {REACHED_RATIO:g}"] = (
            _ratio(high) >= REACHED_RATIO
        )
        drop = paired_claim(checks, f"{n} levels: least overlap beats most", low, high)
        drops.append(
            f"{n} levels: {pct(low['final_accuracy'])} at σ/Δ = {_ratio(low):.2f} → "
            f"{pct(high['final_accuracy'])} at {_ratio(high):.2f}"
        )
        for r in rows:
            numbers.append(
                (
                    f"{n} levels, σ/Δ = {_ratio(r):.3f} (level errors "
                    f"{pct(r.get('level_error_rate', float('nan')))}, rms error "
                    f"{pct(r.get('error_over_window', float('nan')))} of the window)",
                    f"{pct(r['final_accuracy'])} ± {pct(r.get('final_ci95', float('nan')))}",
                )
            )
        numbers.append((f"{n} levels: drop, most vs least overlap", drop))
    return checks, drops, numbers


_COLUMNS = [
    "levels",
    "target_ratio",
    "spread_factor",
    "sigma_over_spacing",
    "level_error_rate",
    "error_over_window",
    *POINT_COLUMNS,
]


def _plot(run: StudyRun, results: list[dict[str, Any]], software: float, chance: float):
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for n in sorted({r["levels"] for r in results}):
        rows = sorted(
            (r for r in results if r["levels"] == n), key=lambda r: r["sigma_over_spacing"]
        )
        ax.errorbar(
            [r["sigma_over_spacing"] for r in rows],
            [100 * r["final_accuracy"] for r in rows],
            yerr=[100 * r["final_ci95"] for r in rows],
            marker="o",
            capsize=3,
            label=f"{n} levels",
        )
    ax.axhline(100 * software, color="black", ls="--", lw=1, label="ideal software")
    ax.axhline(100 * chance, color="grey", ls=":", lw=1, label="chance")
    ax.set_xscale("log")
    ax.set_xlabel("per-level spread / level spacing, σ/Δ (measured)")
    ax.set_ylabel("accuracy after the on-chip updates (%)")
    ax.set_ylim(0, 102)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"{TITLE} ({run.preset.name})", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, run.path("overlap.png"))
