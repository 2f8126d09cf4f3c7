"""Study 1: overlap between adjacent conductance states → accuracy after the on-chip updates.

For each number of levels, the preset's spread is scaled until the measured per-level spread σ,
relative to the level spacing Δ, reaches each target ratio
(:func:`memlearn.devices.variants.match_spread`); the chips are then built from that variant and
adapt the run's tasks.  A target beyond the largest spread factor the device model allows gets
that factor's spread.  The figure shows accuracy against the *measured* σ/Δ.

Published (REFERENCE.md §1): more overlap between adjacent states → lower accuracy; more
levels help slightly but raise the overlap risk.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memlearn.devices.characterize import characterize
from memlearn.devices.preset import DevicePreset
from memlearn.devices.programming import check_strategy
from memlearn.devices.variants import (
    SPREAD_FACTOR_RANGE,
    match_spread,
    scale_spread,
    spread_ratio,
)
from memlearn.errors import MemlearnError
from memlearn.experiments.common import (
    POINT_COLUMNS,
    StudyInfo,
    StudyRun,
    adapt_point,
    conclude,
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
INFO = StudyInfo(KEY, TITLE, PUBLISHED)


def spread_variant(
    preset: DevicePreset, ratio: float, levels: int, strategy: str, seed: int
) -> tuple[DevicePreset, float, float]:
    """The preset variant whose σ/Δ is ``ratio`` (or the widest the spread factors reach).

    Returns ``(variant, spread factor, measured σ/Δ)``.
    """
    widest = scale_spread(preset, SPREAD_FACTOR_RANGE[1])
    top = spread_ratio(widest, levels, strategy, CALIBRATION_CELLS, seed)
    if ratio >= top * (1 - CALIBRATION_RTOL):
        return widest, SPREAD_FACTOR_RANGE[1], top
    variant = match_spread(
        preset, ratio, levels, strategy, cells=CALIBRATION_CELLS, seed=seed, rtol=CALIBRATION_RTOL
    )
    return variant, float(variant.meta["spread_factor"]), float(variant.meta["spread_ratio"])


def reachable_targets(
    run: StudyRun, ratios: Sequence[float], levels: int, strategy: str
) -> list[float]:
    """The targets below the widest σ/Δ the spread factors reach for ``levels`` levels, then
    that widest one (so no two points of a level count land on the same variant)."""
    widest = scale_spread(run.preset, SPREAD_FACTOR_RANGE[1])
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
    )
    return out


def overlap_study(
    run: StudyRun,
    *,
    levels: Sequence[int] = (4, 8, 16),
    ratios: Sequence[float] = (0.05, 0.25, 0.75, 1.5, 3.0),
    strategy: str = "hybrid",
    tasks: int = 64,
) -> StudyOutcome:
    """Accuracy after the on-chip updates vs σ/Δ, for each number of levels."""
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

    by_levels = {
        n: sorted((r for r in results if r["levels"] == n), key=lambda r: r["sigma_over_spacing"])
        for n in levels
    }
    numbers: list[tuple[str, str]] = []
    drops, checks = [], {}
    for n, rows in by_levels.items():
        low, high = rows[0], rows[-1]
        drop = paired_claim(checks, f"{n} levels: least overlap beats most", low, high)
        drops.append(
            f"{n} levels: {pct(low['final_accuracy'])} at σ/Δ = "
            f"{low['sigma_over_spacing']:.2f} → {pct(high['final_accuracy'])} at "
            f"{high['sigma_over_spacing']:.2f}"
        )
        for r in rows:
            numbers.append(
                (
                    f"{n} levels, σ/Δ = {r['sigma_over_spacing']:.3f} (level errors "
                    f"{pct(r['level_error_rate'])})",
                    f"{pct(r['final_accuracy'])} ± {pct(r['final_ci95'])}",
                )
            )
        numbers.append((f"{n} levels: drop, most vs least overlap", drop))
    least = [rows[0] for rows in by_levels.values()]
    more_levels_help = least[-1]["final_accuracy"] >= least[0]["final_accuracy"]
    notes = (
        f"Secondary trend (more levels help slightly): at the least overlap, {least[-1]['levels']} "
        f"levels reach {pct(least[-1]['final_accuracy'])} vs {pct(least[0]['final_accuracy'])} "
        f"for {least[0]['levels']} levels — {'seen' if more_levels_help else 'not seen'}. "
        f"Strategy {strategy}, policy {run.policy}; {tasks} tasks, one chip each; spread "
        f"scaled with `memlearn.devices.variants.scale_spread`, σ/Δ measured on "
        f"{CALIBRATION_CELLS} cells per level; a target beyond the reach of the largest spread "
        f"factor (x{SPREAD_FACTOR_RANGE[1]:g}) gets that factor's spread."
    )
    return conclude(INFO, "; ".join(drops), checks, [figure.name], data, numbers, notes)


_COLUMNS = [
    "levels",
    "target_ratio",
    "spread_factor",
    "sigma_over_spacing",
    "level_error_rate",
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
