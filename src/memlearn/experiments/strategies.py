"""Study 3: the four programming strategies — level histograms, level error rate, pulses and
energy per cell (``memlearn device characterize``), and accuracy after the on-chip updates.

Published (REFERENCE.md §1): single-shot SET is fast but inaccurate; iterative SET precise but
slower; iterative RESET good for low-conductance states; hybrid best (less overlap between
adjacent states, wider window, less drift).

Each strategy is characterised in its own window (``levels.strategy_window``: hybrid's opens
lower); the overlap is compared as σ/Δ (mean per-level spread over the level spacing) and as
the level error rate, both over all cells and over the cells that are not stuck (what the
strategy controls).  The accuracy after the on-chip updates uses the preset's window for all.

When hybrid does not have the fewest level errors or the least overlap, the study re-measures
the same cells (same seed) with each stability mechanism of the device model switched off
(:data:`STABILITY_MECHANISMS`) and reports which one, off, lets hybrid lead
(``strategies_attribution.csv``): what makes the difference is then a property of the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from memlearn.devices.characterize import (
    Characterization,
    characterize,
    plot_characterization,
)
from memlearn.devices.levels import strategy_window
from memlearn.devices.preset import DevicePreset
from memlearn.devices.programming import STRATEGIES, check_strategy
from memlearn.experiments.common import (
    StudyInfo,
    StudyRun,
    adapt_point,
    conclude,
    final_accuracies,
    paired_difference,
    pct,
    pyplot,
    save_data,
    save_figure,
    write_csv,
)
from memlearn.experiments.report import StudyOutcome

KEY = "strategies"
TITLE = "Programming strategies"
PUBLISHED = (
    "single-shot SET fast but inaccurate; iterative SET precise but slower; iterative RESET "
    "good for low-conductance states; hybrid best (least overlap)"
)
INFO = StudyInfo(KEY, TITLE, PUBLISHED)
# What-if switches of the device model's stability (preset parameters set to 0): the
# relaxation in the settle time after verify, its compliance law (a state carved from a
# low-compliance SET relaxes more), its RESET-depth law, and the relaxation as a whole.
STABILITY_MECHANISMS: dict[str, dict[str, float]] = {
    "compliance law of the relaxation": {"relax_icc_exp": 0.0},
    "RESET-depth law of the relaxation": {"relax_reset_depth": 0.0},
    "relaxation after verify": {"relax_fast": 0.0, "relax_log": 0.0, "relax_mean": 0.0},
}


def characterize_strategies(
    run: StudyRun,
    strategies: Sequence[str],
    levels: int,
    cells: int,
    key: str,
    preset: DevicePreset | None = None,
) -> dict[str, Characterization]:
    """``characterize`` each strategy on ``preset`` (default the run's), in the strategy's
    window (seeded from the study's seed)."""
    seed = run.study_seed(key)
    p = preset if preset is not None else run.preset
    return {
        s: characterize(p, s, levels, cells, strategy_window(p, s), seed=seed) for s in strategies
    }


def low_half_sigma(ch: Characterization) -> float:
    """Mean per-level σ (S) over the lower half of the levels (the low-conductance states)."""
    stds = ch.programmed.stds
    return float(stds[: max(1, len(stds) // 2)].mean())


def strategies_study(
    run: StudyRun,
    *,
    strategies: Sequence[str] = STRATEGIES,
    levels: int | None = None,
    cells: int = 300,
    tasks: int = 64,
) -> StudyOutcome:
    """Characterise and adapt with each strategy on the run's preset."""
    for s in strategies:
        check_strategy(s)
    wl = run.workload(tasks)
    levels = int(levels or wl.levels)
    chars = characterize_strategies(run, strategies, levels, cells, KEY)
    points = [run.point(wl, s, levels) for s in strategies]
    results = run.sweep(KEY, adapt_point, points)
    for r in results:
        ch = chars[r["strategy"]]
        r.update(
            level_error_rate=ch.programmed.error_rate,
            healthy_error_rate=ch.programmed.healthy_error_rate,
            sigma_over_spacing=ch.programmed.sigma_over_spacing,
            window_low_us=float(ch.programmed.targets[0]) * 1e6,
            low_half_sigma_us=low_half_sigma(ch) * 1e6,
            pulses_per_cell=ch.pulses_per_cell,
            energy_per_cell_j=ch.energy_per_cell_j,
            failed_fraction=ch.failed_fraction,
            healthy_failed_fraction=ch.healthy_failed_fraction,
        )
    settings = {"strategies": list(strategies), "levels": levels, "cells": cells, "tasks": tasks}
    figures = []
    for s, ch in chars.items():
        path = run.path(f"strategies_{s}.png")
        plot_characterization(ch, str(path))
        figures.append(path.name)
    figures.insert(0, _plot(run, results).name)
    data = save_data(run, KEY, results, _COLUMNS, settings, results, wl)
    checks, observed = _checks({r["strategy"]: r for r in results})
    numbers = [
        (
            r["strategy"],
            f"level errors {pct(r['level_error_rate'])} ({pct(r['healthy_error_rate'])} of "
            f"cells not stuck), σ/Δ {r['sigma_over_spacing']:.3f} from "
            f"{r['window_low_us']:.0f} µS, "
            f"{r['pulses_per_cell']:.1f} pulses and {r['energy_per_cell_j'] * 1e12:.1f} pJ per "
            f"cell, accuracy {pct(r['final_accuracy'])} ± {pct(r['final_ci95'])}",
        )
        for r in results
    ]
    notes = (
        f"{levels} levels in each strategy's window, {cells} cells per level characterised; "
        f"accuracy on {tasks} tasks, one chip each (policy {run.policy}). Only the orderings "
        f"that the strategies run here allow are checked."
    )
    hybrid_behind = [k for k in _HYBRID_CLAIMS if checks.get(k) is False]
    if hybrid_behind:
        rows = stability_attribution(run, strategies, levels, cells)
        data.append(write_csv(run.path(f"{KEY}_attribution.csv"), rows, _ATTRIBUTION_COLUMNS).name)
        notes += " " + stability_summary(rows)
    return conclude(INFO, observed, checks, figures, data, numbers, notes)


def stability_attribution(
    run: StudyRun, strategies: Sequence[str], levels: int, cells: int
) -> list[dict[str, Any]]:
    """The same cells (the study's seed) characterised with each of
    :data:`STABILITY_MECHANISMS` that the preset has switched off; one row per mechanism and
    strategy (``mechanism``, ``strategy``, ``level_error_rate``, ``healthy_error_rate``,
    ``sigma_over_spacing``)."""
    rows = []
    for name, off in STABILITY_MECHANISMS.items():
        if not set(off) <= set(run.preset.values):
            continue
        chars = characterize_strategies(
            run, strategies, levels, cells, KEY, run.preset.replace(**off)
        )
        for s, ch in chars.items():
            rows.append(
                {
                    "mechanism": name,
                    "strategy": s,
                    "level_error_rate": ch.programmed.error_rate,
                    "healthy_error_rate": ch.programmed.healthy_error_rate,
                    "sigma_over_spacing": ch.programmed.sigma_over_spacing,
                }
            )
    return rows


def stability_summary(rows: list[dict[str, Any]]) -> str:
    """One sentence: per mechanism switched off, the strategy with the fewest level errors and
    the one with the least σ/Δ (the attribution names those that let hybrid lead)."""
    parts, leading = [], []
    for name in dict.fromkeys(r["mechanism"] for r in rows):
        by = {r["strategy"]: r for r in rows if r["mechanism"] == name}
        fewest = min(by, key=lambda s: by[s]["level_error_rate"])
        least = min(by, key=lambda s: by[s]["sigma_over_spacing"])
        parts.append(
            f"without the {name}: fewest level errors {fewest} "
            f"({pct(by[fewest]['level_error_rate'])}"
            + (f", hybrid {pct(by['hybrid']['level_error_rate'])}" if fewest != "hybrid" else "")
            + f"), least σ/Δ {least} ({by[least]['sigma_over_spacing']:.3f})"
        )
        if fewest == least == "hybrid":
            leading.append(name)
    lead = (
        "with the " + " or the ".join(leading) + " switched off"
        if leading
        else "with no single one switched off"
    )
    return (
        "Attribution (the device model's stability mechanisms switched off one at a time, the "
        f"same cells): hybrid has the fewest level errors and the least σ/Δ {lead}; "
        + "; ".join(parts)
        + "."
    )


_HYBRID_CLAIMS = ("hybrid fewest level errors", "hybrid least overlap (σ/Δ)")
_ATTRIBUTION_COLUMNS = [
    "mechanism",
    "strategy",
    "level_error_rate",
    "healthy_error_rate",
    "sigma_over_spacing",
]


def _checks(by: dict[str, dict[str, Any]]) -> tuple[dict[str, bool], str]:
    """The published orderings that the strategies present allow to check."""
    checks: dict[str, bool] = {}
    err = {s: r["level_error_rate"] for s, r in by.items()}
    pulses = {s: r["pulses_per_cell"] for s, r in by.items()}
    if "single-set" in by and len(by) > 1:
        checks["single-shot SET fewest pulses"] = pulses["single-set"] == min(pulses.values())
        checks["single-shot SET most level errors"] = err["single-set"] == max(err.values())
    if {"single-set", "iterative-set"} <= set(by):
        checks["iterative SET more precise and slower than single-shot"] = (
            err["iterative-set"] < err["single-set"]
            and pulses["iterative-set"] > pulses["single-set"]
        )
    if {"iterative-reset", "iterative-set"} <= set(by):
        checks["iterative RESET tighter low-conductance states than iterative SET"] = (
            by["iterative-reset"]["low_half_sigma_us"] < by["iterative-set"]["low_half_sigma_us"]
        )
    if "hybrid" in by and len(by) > 1:
        checks["hybrid fewest level errors"] = err["hybrid"] == min(err.values())
        sod = {s: r["sigma_over_spacing"] for s, r in by.items()}
        checks["hybrid least overlap (σ/Δ)"] = sod["hybrid"] == min(sod.values())
        others = [s for s in by if s != "hybrid"]
        behind = []
        for s in others:
            diff, half = paired_difference(final_accuracies(by[s]), final_accuracies(by["hybrid"]))
            behind.append(diff <= half)
        checks["hybrid accuracy not beaten beyond the 95 % CI"] = all(behind)
    ranked = sorted(by, key=lambda s: err[s])
    observed = "level error rate, lowest first: " + ", ".join(
        f"{s} {pct(err[s])} (not stuck {pct(by[s]['healthy_error_rate'])}, σ/Δ "
        f"{by[s]['sigma_over_spacing']:.3f}, {pulses[s]:.1f} pulses/cell)"
        for s in ranked
    )
    return checks, observed


_COLUMNS = [
    "strategy",
    "levels",
    "level_error_rate",
    "healthy_error_rate",
    "sigma_over_spacing",
    "window_low_us",
    "low_half_sigma_us",
    "pulses_per_cell",
    "energy_per_cell_j",
    "failed_fraction",
    "healthy_failed_fraction",
    "final_accuracy",
    "final_ci95",
    "writes_per_adaptation",
    "energy_per_adaptation_j",
    "preset",
    "seed",
]


def _plot(run: StudyRun, results: list[dict[str, Any]]):
    plt = pyplot()
    names = [r["strategy"] for r in results]
    panels = [
        ("level error rate (%)", [100 * r["level_error_rate"] for r in results], None),
        ("... of cells not stuck (%)", [100 * r["healthy_error_rate"] for r in results], None),
        ("σ/Δ", [r["sigma_over_spacing"] for r in results], None),
        ("pulses per cell", [r["pulses_per_cell"] for r in results], None),
        ("energy per cell (pJ)", [1e12 * r["energy_per_cell_j"] for r in results], None),
        (
            "accuracy after the on-chip updates (%)",
            [100 * r["final_accuracy"] for r in results],
            [100 * r["final_ci95"] for r in results],
        ),
    ]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.4 * len(panels), 3.8))
    colors = plt.get_cmap("tab10")(range(len(names)))
    for ax, (label, values, err) in zip(axes, panels, strict=True):
        ax.bar(range(len(names)), values, yerr=err, color=colors, capsize=3)
        ax.set_xticks(range(len(names)), names, rotation=25, ha="right", fontsize=8)
        ax.set_title(label, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle(f"{TITLE} ({run.preset.name}, {results[0]['levels']} levels)", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, run.path("strategies.png"))
