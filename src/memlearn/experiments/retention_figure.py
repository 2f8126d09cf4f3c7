"""The retention study's figure: accuracy and the cells' rms error over the drift sweep."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memlearn.experiments.common import StudyRun, pyplot, save_figure

TITLE = "Retention after a bake"


def plot_retention(
    run: StudyRun,
    points: dict[float, dict[str, dict[str, Any]]],
    hours: float,
    bake_celsius: float,
) -> Path:
    """Accuracy after the bake and the cells' rms error against the drift factor, per strategy
    (``points``: the study's results by factor, then by strategy); the published bake (k = 1)
    marked.  Returns the figure's path (``retention.png``)."""
    import numpy as np

    plt = pyplot()
    factors = list(points)
    strategies = list(dict.fromkeys(s for by in points.values() for s in by))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    for s in strategies:
        ks = [k for k in factors if s in points[k]]
        rows = [points[k][s] for k in ks]
        after = [np.asarray(r["accuracy_after_bake"], dtype=float) for r in rows]
        mean = [100 * a.mean() for a in after]
        err = [196 * a.std(ddof=1) / np.sqrt(len(a)) if len(a) > 1 else 0.0 for a in after]
        line = ax.errorbar(ks, mean, yerr=err, marker="o", capsize=3, label=f"{s}, after")
        before = [100 * r["final_accuracy"] for r in rows]
        ax.plot(ks, before, ls="--", color=line[0].get_color(), label=f"{s}, before")
        bx.plot(ks, [100 * r["error_over_window"] for r in rows], ls="--", marker=".",
                color=line[0].get_color(), label=f"{s}, as programmed")  # fmt: skip
        bx.plot(ks, [100 * r["error_over_window_after_bake"] for r in rows], marker="o",
                color=line[0].get_color(), label=f"{s}, after the bake")  # fmt: skip
    for a in (ax, bx):
        a.axvline(1.0, color="grey", ls=":", lw=1)
        a.set_xscale("log")
        a.set_xlabel("drift factor k (relax_log x k)")
        a.grid(alpha=0.3)
    ax.annotate(f"published: {hours:g} h at {bake_celsius:g} °C", (1.0, 5), fontsize=8,
                rotation=90, ha="right", va="bottom")  # fmt: skip
    ax.set_ylabel("query accuracy (%)")
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7, loc="lower right")
    bx.set_ylabel("cells' rms error (% of the window)")
    bx.legend(fontsize=7)
    fig.suptitle(
        f"{TITLE}: {hours:g} h at {bake_celsius:g} °C ({run.preset.name}, "
        f"{next(iter(points[factors[0]].values()))['levels']} levels)",
        fontsize=10,
    )
    fig.tight_layout()
    return save_figure(fig, run.path("retention.png"))
