"""Study 2: memory window × number of levels → accuracy after the on-chip updates (heatmap).

The window keeps the preset's lowest level ``G_min`` and spans a fraction of the preset's
window (or given spans); the chips are built from :func:`memlearn.devices.variants.with_window`
copies of the preset, so the levels are programmed into the narrower window pulse by pulse with
the preset's own spread.

The narrowest window of the default grid is 1 % of the preset's: its level spacing lies below
the per-level spread, so the levels collapse into one another (the sweep checks that it reaches
σ/Δ ≥ 1 there).  When the gain does not show for a level count,
:mod:`memlearn.experiments.attribution` switches the loop's mechanisms off one at a time at its
widest and narrowest windows.

Published (REFERENCE.md §1): a wider memory window raises accuracy, and more levels slightly
relax the window needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from memlearn.devices.programming import check_strategy
from memlearn.devices.variants import spread_ratio, with_window
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
    paired_claim,
    pct,
    pyplot,
    save_data,
    save_figure,
)
from memlearn.experiments.report import StudyOutcome

KEY = "window"
TITLE = "Memory window x number of levels"
PUBLISHED = "a wider memory window raises accuracy; more levels slightly relax the window needed"
NEEDED_FRACTION = 0.9  # "window needed": smallest span reaching 90 % of the best accuracy [E]
COLLAPSE_RATIO = 1.0  # the narrowest window must reach σ/Δ ≥ 1: levels no longer apart
SPREAD_CELLS = 200  # cells per level measuring σ/Δ of the narrowest window [E]
INFO = StudyInfo(KEY, TITLE, PUBLISHED)


def window_variant(point: dict[str, Any]):
    """The preset of a window point: ``[g_min, g_min + span_us]``."""
    g_min = point["preset"].window[0]
    return with_window(point["preset"], g_min, g_min + point["span_us"] * 1e-6)


def window_point(point: dict[str, Any], seed: int) -> dict[str, Any]:
    """Adapt on chips whose window is ``[g_min, g_min + span_us]``; with ``measure_spread`` the
    result also holds the measured σ/Δ of that window."""
    preset = window_variant(point)
    out = adapt_point({**point, "preset": preset}, seed)
    if point.get("measure_spread"):
        out["sigma_over_spacing"] = spread_ratio(
            preset, point["levels"], point["strategy"], SPREAD_CELLS, seed
        )
    return out


def spans_from_fractions(run: StudyRun, fractions: Sequence[float]) -> list[float]:
    """Window spans (µS) as fractions of the preset's window."""
    if not fractions or min(fractions) <= 0 or max(fractions) > 1:
        raise MemlearnError(f"window fractions must be in (0, 1], got {list(fractions)}")
    lo, hi = run.preset.window
    return [round(f * (hi - lo) * 1e6, 3) for f in sorted(fractions)]


def window_study(
    run: StudyRun,
    *,
    levels: Sequence[int] = (4, 8, 16),
    spans_us: Sequence[float] | None = None,
    fractions: Sequence[float] = (0.01, 0.05, 0.2, 0.5, 1.0),
    strategy: str = "hybrid",
    tasks: int = 64,
    attribution: bool = True,
) -> StudyOutcome:
    """Accuracy for every (levels, window span); spans in µS, default from ``fractions``; with
    ``attribution``, the loop's mechanisms switched off where the gain does not show."""
    spans = sorted(float(s) for s in spans_us) if spans_us else spans_from_fractions(run, fractions)
    if len(spans) < 2 or min(spans) <= 0:
        raise MemlearnError(f"give at least two window spans > 0 µS, got {spans}")
    if not levels or min(levels) < 2:
        raise MemlearnError(f"levels must be integers >= 2, got {list(levels)}")
    check_strategy(strategy)
    g_min = run.preset.window[0]
    for span in spans:  # fail before any point runs
        with_window(run.preset, g_min, g_min + span * 1e-6)
    wl = run.workload(tasks)
    points = [
        run.point(wl, strategy, n, span_us=sp, measure_spread=sp == spans[0])
        for n in levels
        for sp in spans
    ]
    results = run.sweep(KEY, window_point, points)
    for r in results:
        r["g_min_us"], r["g_max_us"] = g_min * 1e6, g_min * 1e6 + r["span_us"]
    settings = {"levels": list(levels), "spans_us": spans, "strategy": strategy, "tasks": tasks}
    data = save_data(run, KEY, results, _COLUMNS, settings, results, wl)
    figure = _plot(run, results, list(levels), spans)

    checks, observed, numbers, relaxes = window_checks(results, levels)
    notes = (
        f"Secondary trend (more levels relax the window needed, the smallest span reaching "
        f"{NEEDED_FRACTION:.0%} of the best accuracy of the grid): "
        f"{'seen' if relaxes else 'not seen'}. G_min stays at {g_min * 1e6:g} µS; strategy "
        f"{strategy}, policy {run.policy}; {tasks} tasks, one chip each."
    )
    failing = [n for n in levels if not checks.get(_gain_claim(n), False)]
    if failing and attribution:
        rows = []
        for n in failing:
            rows_n = [r for r in results if r["levels"] == n]
            wide, narrow = rows_n[-1], rows_n[0]
            pair = tuple(
                {**points[results.index(r)], "preset": window_variant(points[results.index(r)])}
                for r in (wide, narrow)
            )
            label = f"{n} levels, {wide['span_us']:g} vs {narrow['span_us']:g} µS"
            rows += attribute(run, KEY, label, wide, narrow, pair)  # type: ignore[arg-type]
        data.append(write_attribution(run, KEY, rows))
        numbers += attribution_numbers(rows)
        notes += " " + attribution_summary(rows) + "."
    return conclude(INFO, "; ".join(observed), checks, [figure.name], data, numbers, notes)


def _gain_claim(n: int) -> str:
    return f"{n} levels: widest window beats narrowest (95 % CI, paired)"


def window_checks(
    results: list[dict[str, Any]], levels: Sequence[int]
) -> tuple[dict[str, bool], list[str], list[tuple[str, str]], bool]:
    """The verdict on the window sweep's results (each with ``levels``, ``span_us``, per-task
    ``accuracy``; the narrowest of each level count with ``sigma_over_spacing``): for every
    level count the narrowest window collapses the levels (σ/Δ ≥ :data:`COLLAPSE_RATIO`) and
    the widest beats the narrowest beyond the 95 % CI of the paired difference.  Returns the
    checks, the observations, the report's numbers and whether more levels relax the window
    needed (the secondary trend, not a check)."""
    best = max((r["final_accuracy"] for r in results), default=math.nan)
    checks: dict[str, bool] = {}
    observed, numbers, needed = [], [], {}
    for n in levels:
        rows = sorted((r for r in results if r["levels"] == n), key=lambda r: r["span_us"])
        if len(rows) < 2:
            checks[_gain_claim(n)] = False
            continue
        narrow, wide = rows[0], rows[-1]
        ratio = narrow.get("sigma_over_spacing", math.nan)
        checks[f"{n} levels: the narrowest window collapses the levels (σ/Δ ≥ 1)"] = bool(
            ratio >= COLLAPSE_RATIO
        )
        gain = paired_claim(checks, f"{n} levels: widest window beats narrowest", wide, narrow)
        observed.append(
            f"{n} levels: {pct(narrow['final_accuracy'])} at {narrow['span_us']:g} µS "
            f"(σ/Δ {ratio:.2g}) → {pct(wide['final_accuracy'])} at {wide['span_us']:g} µS"
        )
        reach = [r["span_us"] for r in rows if r["final_accuracy"] >= NEEDED_FRACTION * best]
        needed[n] = min(reach) if reach else math.inf
        numbers.append((f"{n} levels: gain, widest vs narrowest window", gain))
        numbers.append(
            (
                f"{n} levels: window needed for {pct(NEEDED_FRACTION * best)}",
                f"{needed[n]:g} µS" if math.isfinite(needed[n]) else "not reached",
            )
        )
    ordered = [needed[n] for n in sorted(needed)]
    relaxes = all(a >= b for a, b in zip(ordered, ordered[1:], strict=False))
    return checks, observed, numbers, relaxes


_COLUMNS = [
    "levels",
    "span_us",
    "g_min_us",
    "g_max_us",
    "sigma_over_spacing",
    *POINT_COLUMNS,
]


def _plot(run: StudyRun, results: list[dict[str, Any]], levels: list[int], spans: list[float]):
    import numpy as np

    plt = pyplot()
    grid = np.array(
        [[100 * r["final_accuracy"] for r in results if r["levels"] == n] for n in levels]
    )
    fig, ax = plt.subplots(figsize=(1.2 * len(spans) + 3, 0.7 * len(levels) + 2.2))
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis", vmin=0, vmax=100)
    for i in range(len(levels)):
        for j in range(len(spans)):
            value = grid[i, j]
            ax.text(
                j,
                i,
                f"{value:.0f}",
                ha="center",
                va="center",
                color="white" if value < 60 else "black",
                fontsize=9,
            )
    ax.set_xticks(range(len(spans)), [f"{s:g}" for s in spans])
    ax.set_yticks(range(len(levels)), [str(n) for n in levels])
    ax.set_xlabel(f"memory window G_max − G_min (µS), G_min = {run.preset.window[0] * 1e6:g} µS")
    ax.set_ylabel("levels per cell")
    fig.colorbar(image, ax=ax, label="accuracy after the on-chip updates (%)")
    ax.set_title(f"{TITLE} ({run.preset.name})", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, run.path("window.png"))
