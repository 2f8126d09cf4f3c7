"""The retention study's figure: accuracy and the cells' rms error over the drift sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from memlearn.experiments.common import StudyRun, pyplot, save_figure
from memlearn.onchip.plot import finish_accuracy_axes, plot_accuracy

TITLE = "Retention after a bake"
XLABEL = "drift factor k (relax_log x k)"


def plot_retention(
    run: StudyRun,
    points: dict[float, dict[str, dict[str, Any]]],
    hours: float,
    bake_celsius: float,
) -> Path:
    """Accuracy after the bake and the cells' rms error against the drift factor, per strategy
    (``points``: the study's results by factor, then by strategy); the published bake (k = 1)
    marked.  Returns the figure's path (``retention.png``)."""
    plt = pyplot()
    factors = list(points)
    strategies = list(dict.fromkeys(s for by in points.values() for s in by))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    for s in strategies:
        ks = [k for k in factors if s in points[k]]
        rows = [points[k][s] for k in ks]
        after = torch.tensor([r["accuracy_after_bake"] for r in rows], dtype=torch.float64)
        color = plot_accuracy(ax, ks, after.T, f"{s}, after")
        before = [100 * r["final_accuracy"] for r in rows]
        ax.plot(ks, before, ls="--", color=color, label=f"{s}, before")
        bx.plot(ks, [100 * r["error_over_window"] for r in rows], ls="--", marker=".",
                color=color, label=f"{s}, as programmed")  # fmt: skip
        bx.plot(ks, [100 * r["error_over_window_after_bake"] for r in rows], marker="o",
                color=color, label=f"{s}, after the bake")  # fmt: skip
    for a in (ax, bx):
        a.axvline(1.0, color="grey", ls=":", lw=1)
        a.set_xscale("log")
    ax.annotate(f"published: {hours:g} h at {bake_celsius:g} °C", (1.0, 5), fontsize=8,
                rotation=90, ha="right", va="bottom")  # fmt: skip
    finish_accuracy_axes(ax, XLABEL, top=105, legend_size=7)
    bx.set_xlabel(XLABEL)
    bx.grid(alpha=0.3)
    bx.set_ylabel("cells' rms error (% of the window)")
    bx.legend(fontsize=7)
    fig.suptitle(
        f"{TITLE}: {hours:g} h at {bake_celsius:g} °C ({run.preset.name}, "
        f"{next(iter(points[factors[0]].values()))['levels']} levels)",
        fontsize=10,
    )
    fig.tight_layout()
    return save_figure(fig, run.path("retention.png"))
