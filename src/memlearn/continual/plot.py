"""The figure of a continual run: test accuracy on every task over training."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from memlearn.io import atomic_write


def accuracy_figure(path: str | Path, summary: dict[str, Any], title: str) -> Path:
    """Write a PNG of ``summary['curves']`` (one line per task, task boundaries dashed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = summary["curves"]["steps"]
    acc = summary["curves"]["accuracy"]  # [points][tasks]
    per_task = summary["steps_per_task"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for j in range(len(acc[0])):
        ax.plot(steps, [100 * row[j] for row in acc], marker=".", label=f"task {j + 1}")
    for k in range(1, len(acc[0])):
        ax.axvline(k * per_task, color="grey", lw=0.5, ls="--")
    ax.set_xlabel("training step")
    ax.set_ylabel("test accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)
    return path
