"""Study 6: energy and writes per adaptation (the K on-chip updates of one task) vs levels and
strategy: the array ledger's breakdown by category (programming pulses, verify reads, array
reads, DAC, ADC) and the system-level estimate around it (:mod:`memlearn.crossbar.
system_energy`: voltage generation, level shifting, gate DAC, line charging, control logic,
static bias over the serial latency), judged against the < 10 µJ of the reference work.

Published (REFERENCE.md §1): < 10 µJ for the 2 kbit array (≈ 1 nJ per cell and update [I]), a
figure of the whole chip; the verdict compares the system estimate with it, like with like.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from memlearn.crossbar.system_energy import LINES
from memlearn.devices.programming import STRATEGIES, check_strategy
from memlearn.errors import MemlearnError
from memlearn.experiments.common import (
    StudyInfo,
    StudyRun,
    adapt_point,
    conclude,
    pyplot,
    save_data,
    save_figure,
)
from memlearn.experiments.report import StudyOutcome

KEY = "energy"
TITLE = "Energy and writes per adaptation"
PUBLISHED = "< 10 µJ per adaptation for the 2 kbit array"
BOUND_J = 10e-6  # REFERENCE.md §1 [P]
CATEGORIES = ("program", "verify", "read", "dac", "adc")
INFO = StudyInfo(KEY, TITLE, PUBLISHED)


def energy_study(
    run: StudyRun,
    *,
    levels: Sequence[int] = (4, 8, 16),
    strategies: Sequence[str] = STRATEGIES,
    tasks: int = 32,
) -> StudyOutcome:
    """Energy, pulses and cells written per adaptation for every (strategy, levels)."""
    for s in strategies:
        check_strategy(s)
    if not levels or min(levels) < 2:
        raise MemlearnError(f"levels must be integers >= 2, got {list(levels)}")
    wl = run.workload(tasks)
    points = [run.point(wl, s, n) for s in strategies for n in levels]
    results = run.sweep(KEY, adapt_point, points)
    cells = wl.layout.cells
    for r in results:
        r["energy_uj"] = 1e6 * r["energy_per_adaptation_j"]
        r["energy_per_cell_update_j"] = r["energy_per_adaptation_j"] / (cells * wl.steps)
        for cat in CATEGORIES:
            r[f"{cat}_uj"] = 1e6 * r["energy_breakdown_j"].get(cat, 0.0)
        system = r.get("system_energy_j") or {}
        r["system_uj"] = 1e6 * system.get("total", float("nan"))
        for line in LINES[1:]:
            r[f"system_{line}_uj"] = 1e6 * system.get(line, float("nan"))
    settings = {
        "levels": list(levels),
        "strategies": list(strategies),
        "tasks": tasks,
        "cells_per_chip": cells,
        "steps": wl.steps,
    }
    data = save_data(run, KEY, results, _COLUMNS, settings, results, wl)
    figure = _plot(run, results, list(levels), list(strategies))
    checks, observed = energy_checks(results)
    numbers = [
        (
            f"{r['strategy']}, {r['levels']} levels",
            f"system {r['system_uj']:.3g} µJ ("
            + ", ".join(f"{x.replace('_', ' ')} {r[f'system_{x}_uj']:.2g}" for x in LINES[1:])
            + f"); array {r['energy_uj']:.3g} µJ ("
            + ", ".join(f"{c} {r[f'{c}_uj']:.2g}" for c in CATEGORIES)
            + f"), {r['writes_per_adaptation']:.0f} cells written, "
            f"{r['pulses_per_adaptation']:.0f} pulses",
        )
        for r in results
    ]
    notes = (
        f"An adaptation is the {wl.steps} updates of one task; the deployment of the "
        f"meta-trained weights is not counted. The simulated chip holds {cells} cells "
        f"({', '.join(f'{a.name} {a.rows}x{a.cols} pairs' for a in wl.layout.arrays)}); the "
        f"reference array has 2048. Pulse energies are the preset's [E] estimates; the system "
        f"lines' constants and their sources are those of memlearn.crossbar.system_energy "
        f"(static bias counts the ledger's serial latency only). "
        f"Mean over {tasks} tasks, one chip each; policy {run.policy}."
    )
    return conclude(INFO, observed, checks, [figure.name], data, numbers, notes)


def energy_checks(results: list[dict[str, Any]]) -> tuple[dict[str, bool], str]:
    """The verdict on :func:`energy_study`'s points (each with ``system_energy_j`` and
    ``energy_per_adaptation_j``, J): the system estimate of every point below the reference's
    system figure; a point without a system estimate fails.  Returns the checks and what was
    observed."""
    name = f"system estimate below {BOUND_J * 1e6:g} µJ for every strategy and number of levels"
    if not results:
        return {name: False}, "no points"
    system = [(r.get("system_energy_j") or {}).get("total", math.nan) for r in results]
    worst = max(
        range(len(results)), key=lambda i: -math.inf if math.isnan(system[i]) else system[i]
    )
    w, array_worst = results[worst], max(r["energy_per_adaptation_j"] for r in results)
    ok = bool(results) and all(e < BOUND_J for e in system)  # NaN fails
    checks = {
        f"system estimate below {BOUND_J * 1e6:g} µJ for every strategy and number of levels": ok
    }
    observed = (
        f"system estimate at most {system[worst] * 1e6:.3g} µJ per adaptation ({w['strategy']}, "
        f"{w['levels']} levels), {BOUND_J / system[worst]:.3g}x below the bound; the arrays and "
        f"converters alone at most {array_worst * 1e6:.3g} µJ"
    )
    return checks, observed


_COLUMNS = [
    "strategy",
    "levels",
    "system_uj",
    *[f"system_{x}_uj" for x in LINES[1:]],
    "energy_uj",
    *[f"{c}_uj" for c in CATEGORIES],
    "energy_per_cell_update_j",
    "writes_per_adaptation",
    "pulses_per_adaptation",
    "final_accuracy",
    "preset",
    "seed",
]


def _plot(run: StudyRun, results: list[dict[str, Any]], levels: list[int], strategies: list[str]):
    plt = pyplot()
    fig, (ax, bx, cx) = plt.subplots(1, 3, figsize=(15, 4.4))
    for s in strategies:
        rows = [r for r in results if r["strategy"] == s]
        (line,) = ax.plot(levels, [r["system_uj"] for r in rows], "o-", label=f"{s}, system")
        ax.plot(levels, [r["energy_uj"] for r in rows], "s:", color=line.get_color(),
                label=f"{s}, arrays only")  # fmt: skip
        cx.plot(levels, [r["writes_per_adaptation"] for r in rows], "o-", label=s)
    ax.axhline(BOUND_J * 1e6, color="tab:red", ls="--", label="reference: < 10 µJ")
    ax.set_yscale("log")
    ax.set_xscale("log", base=2)
    ax.set_xticks(levels, [str(n) for n in levels])
    ax.set_xlabel("levels per cell")
    ax.set_ylabel("energy per adaptation (µJ)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3, which="both")
    # breakdown: one group of bars per strategy, one bar per number of levels
    width = 0.8 / len(levels)
    x = np.arange(len(strategies))
    colors = plt.get_cmap("tab10")(range(len(CATEGORIES)))
    for j, n in enumerate(levels):
        bottom = np.zeros(len(strategies))
        for c, cat in enumerate(CATEGORIES):
            values = (
                np.array(
                    [
                        next(r for r in results if r["strategy"] == s and r["levels"] == n)[
                            f"{cat}_uj"
                        ]
                        for s in strategies
                    ]
                )
                * 1e3
            )
            bx.bar(
                x + (j - (len(levels) - 1) / 2) * width,
                values,
                width * 0.9,
                bottom=bottom,
                color=colors[c],
                label=cat if j == 0 else None,
            )
            bottom += values
    bx.set_xticks(x, strategies, fontsize=8)
    bx.set_ylabel("energy per adaptation (nJ)")
    bars = ", ".join(map(str, levels))
    bx.set_title(f"array ledger; bars left to right: {bars} levels", fontsize=9)
    bx.legend(fontsize=8)
    bx.grid(axis="y", alpha=0.3)
    cx.set_xscale("log", base=2)
    cx.set_xticks(levels, [str(n) for n in levels])
    cx.set_xlabel("levels per cell")
    cx.set_ylabel("cells written per adaptation")
    cx.set_ylim(bottom=0)
    cx.legend(fontsize=8)
    cx.grid(alpha=0.3)
    fig.suptitle(f"{TITLE} ({run.preset.name})", fontsize=10)
    fig.tight_layout()
    return save_figure(fig, run.path("energy.png"))
