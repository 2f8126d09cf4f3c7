"""The learning-curve figure of an on-chip adaptation run (PNG, written atomically)."""

from __future__ import annotations

from collections.abc import Sequence
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
    plot_accuracy(ax, steps, result.accuracy, "on chip (mean, 95 % CI)", "tab:blue", band=True)
    if result.software_accuracy is not None:
        soft = 100 * result.software_accuracy.mean(dim=0)
        ax.plot(steps, soft, "s--", color="black", lw=1.5, label="ideal software, same tasks")
    ways = summary["ways"]
    ax.axhline(100 / ways, color="grey", lw=0.8, ls=":", label=f"chance ({100 / ways:.0f} %)")
    ax.set_xticks(steps.tolist())
    finish_accuracy_axes(ax, "on-chip gradient updates", top=102, legend_size=8)
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


def plot_accuracy(
    ax: Any,
    x: Sequence[float] | torch.Tensor,
    accuracy: torch.Tensor,
    label: str,
    color: str | None = None,
    *,
    band: bool = False,
) -> str:
    """Draw on ``ax`` the mean query accuracy (%) over tasks against ``x``, with its 95 % CI
    (none for a single task): a shaded band under a line (``band``), else error bars.

    ``accuracy``: fractions, ``[tasks, len(x)]``.  ``color``: ``None`` takes the axes' next
    colour (error bars only: a band needs one).  Returns the colour drawn, for lines that go
    with this one.
    """
    if band and color is None:
        raise ValueError("plot_accuracy: a band needs a color (error bars may take None)")
    mean = (100 * accuracy).mean(dim=0)
    half = 100 * torch.tensor(
        [_ci(accuracy[:, k]) for k in range(accuracy.shape[1])], dtype=mean.dtype
    )
    if band:
        ax.fill_between(x, mean - half, mean + half, color=color, alpha=0.2, lw=0)
        return ax.plot(x, mean, "o-", color=color, lw=2, label=label)[0].get_color()
    style = {} if color is None else {"color": color}
    bars = ax.errorbar(x, mean, yerr=half, marker="o", capsize=3, label=label, **style)
    return bars[0].get_color()


def finish_accuracy_axes(ax: Any, xlabel: str, *, top: float, legend_size: int) -> None:
    """Label ``ax`` as a query-accuracy panel (0 to ``top`` %, grid, legend lower right)."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel("query accuracy (%)")
    ax.set_ylim(0, top)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=legend_size)


def _ci(values: torch.Tensor) -> float:
    """:func:`memlearn.stats.ci95`, 0 for a single task (an error bar of no width)."""
    return 0.0 if values.numel() < 2 else ci95(values)
