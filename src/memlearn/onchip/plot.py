"""The learning-curve figure of an on-chip adaptation run (PNG, written atomically)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from memlearn.io import atomic_write
from memlearn.onchip.loop import AdaptResult
from memlearn.stats import ci95


def learning_curve_png(
    path: str | Path, result: AdaptResult, summary: dict[str, Any], info: dict[str, Any]
) -> Path:
    """Query accuracy vs update step (each task, mean ± 95 % CI, ideal software) and the
    energy and writes of each update step."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = torch.arange(result.accuracy.shape[1])
    acc = 100 * result.accuracy
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(11, 4.2), gridspec_kw={"width_ratios": [1.3, 1]})
    for row in acc:
        ax.plot(steps, row, color="tab:blue", alpha=0.15, lw=0.8)
    mean = acc.mean(dim=0)
    half = 100 * torch.tensor([_ci(result.accuracy[:, k]) for k in steps.tolist()])
    ax.fill_between(steps, mean - half, mean + half, color="tab:blue", alpha=0.2, lw=0)
    ax.plot(steps, mean, "o-", color="tab:blue", lw=2, label="on chip (mean, 95 % CI)")
    if result.software_accuracy is not None:
        soft = 100 * result.software_accuracy.mean(dim=0)
        ax.plot(steps, soft, "s--", color="black", lw=1.5, label="ideal software, same tasks")
    ways = summary["ways"]
    ax.axhline(100 / ways, color="grey", lw=0.8, ls=":", label=f"chance ({100 / ways:.0f} %)")
    ax.set_xlabel("on-chip gradient updates")
    ax.set_ylabel("query accuracy (%)")
    ax.set_ylim(0, 102)
    ax.set_xticks(steps.tolist())
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title(
        f"{ways}-way {summary['shots']}-shot, {summary['tasks']} tasks on {summary['chips']} "
        f"chips\n{summary['preset']}, {summary['strategy']}, split '{info['split']}'",
        fontsize=9,
    )

    k = torch.arange(1, result.accuracy.shape[1])
    bottom = torch.zeros(len(k), dtype=torch.float64)
    for cat, joules in result.energy_j.items():
        per_step = 1e9 * joules.mean(dim=0)
        bx.bar(k, per_step, bottom=bottom, label=cat, width=0.6)
        bottom += per_step
    bx.set_xlabel("update step")
    bx.set_ylabel("energy per chip and step (nJ)")
    bx.set_xticks(k.tolist())
    bx.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=6, fontsize=8, frameon=False)
    cx = bx.twinx()
    cx.plot(k, result.cells_written.double().mean(dim=0), "o-", color="tab:red", label="cells")
    cx.set_ylabel("cells written per chip", color="tab:red")
    cx.set_ylim(bottom=0)
    bx.set_title(
        f"{1e6 * summary['energy_per_adaptation_j']:.2f} µJ and "
        f"{summary['writes_per_adaptation']:.0f} cell writes per adaptation",
        fontsize=9,
    )
    fig.tight_layout()
    path = Path(path)
    with atomic_write(path, "wb") as handle:
        fig.savefig(handle, format="png", dpi=120)
    plt.close(fig)
    return path


def _ci(values: torch.Tensor) -> float:
    """:func:`memlearn.stats.ci95`, 0 for a single task (an error bar of no width)."""
    return 0.0 if values.numel() < 2 else ci95(values)
