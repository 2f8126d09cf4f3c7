"""Characterising a programming strategy: program ``cells`` fresh cells per level, read them,
and report per-level statistics, the level error rate, pulses, energy and failures, before and
(optionally) after a bake.  Every read has the read noise of the cells' age
(:func:`~memlearn.devices.physics.read_age`): ``settle_s`` after programming, that plus the
bake's effective seconds after it, as a chip's reads.

``level_error_rate``: the fraction of cells whose (noisy) read decodes, by nearest level, to a
level other than their target; ``healthy_error_rate`` the same over the cells that are not
stuck (what the strategy controls).  Per-level mean and std are over cells that are not stuck
(stuck cells are counted in ``failed_fraction`` and in the error rate); ``sigma_over_spacing``
is the mean per-level std over the mean level spacing (sigma/Delta).  Without an explicit
window, levels are placed in the preset's; ``levels.strategy_window`` gives the window a
strategy reaches (hybrid's opens lower), as ``memlearn device characterize`` uses by default.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from memlearn.bounds import check_celsius, check_hours
from memlearn.devices.cells import STUCK_NONE
from memlearn.devices.levels import check_window, level_conductances, nearest_level
from memlearn.devices.physics import read, read_age
from memlearn.devices.preset import DevicePreset, load_preset
from memlearn.devices.programming import check_strategy, program
from memlearn.devices.retention import celsius, equivalent_seconds, relax
from memlearn.errors import MemlearnError


@dataclass
class LevelStats:
    """Conductance statistics of the cells of each level (S): ``samples [levels, cells]`` the
    true conductances, ``reads`` the noisy reads the error rate was decoded from,
    ``healthy_error_rate`` the error rate of the cells that are not stuck."""

    targets: torch.Tensor
    means: torch.Tensor
    stds: torch.Tensor
    error_rate: float
    samples: torch.Tensor
    reads: torch.Tensor | None = None
    healthy_error_rate: float = float("nan")

    @property
    def sigma_over_spacing(self) -> float:
        """Mean per-level std over the mean level spacing (sigma/Delta)."""
        spacing = float(self.targets.diff().mean())
        return float(self.stds.mean()) / spacing

    def as_json(self) -> list[dict[str, float]]:
        return [
            {
                "target_us": round(t * 1e6, 6),
                "mean_us": round(m * 1e6, 6),
                "std_us": round(s * 1e6, 6),
            }
            for t, m, s in zip(
                self.targets.tolist(), self.means.tolist(), self.stds.tolist(), strict=True
            )
        ]


@dataclass
class Characterization:
    """Result of ``characterize``: as-programmed and (optionally) baked level statistics."""

    preset: str
    strategy: str
    programmed: LevelStats
    baked: LevelStats | None
    pulses_per_cell: float
    energy_per_cell_j: float
    failed_fraction: float
    bake_hours: float
    bake_celsius: float
    settle_s: float = 1.0
    healthy_failed_fraction: float = float("nan")

    def as_json(self) -> dict[str, Any]:
        """The ``memlearn device characterize --json`` object, exactly the keys of the issue's
        schema: ``preset``, ``strategy``, ``levels`` (``target_us``, ``mean_us``, ``std_us``),
        ``level_error_rate``, ``pulses_per_cell``, ``energy_per_cell_j``, ``failed_fraction``.
        After a bake the level figures are the baked ones (the as-programmed ones are those of
        the same command without the bake: the same seed programs the same cells)."""
        final = self.baked if self.baked is not None else self.programmed
        return {
            "preset": self.preset,
            "strategy": self.strategy,
            "levels": final.as_json(),
            "level_error_rate": float(final.error_rate),
            "pulses_per_cell": float(self.pulses_per_cell),
            "energy_per_cell_j": float(self.energy_per_cell_j),
            "failed_fraction": float(self.failed_fraction),
        }


def _stats(
    preset: DevicePreset,
    g: torch.Tensor,
    age: torch.Tensor,
    healthy: torch.Tensor,
    targets: torch.Tensor,
    generator: torch.Generator,
) -> LevelStats:
    """The statistics of conductances ``g [levels, cells]`` (S), read once each with the read
    noise of its age (``age``: effective s since it was programmed, like ``g``;
    :func:`~memlearn.devices.physics.read_age`)."""
    n, m = g.shape
    reads = read(preset, g, generator, read_age(preset, age))
    wrong = nearest_level(reads, targets) != torch.arange(n)[:, None]
    error = float(wrong.float().mean())
    healthy_error = float(wrong[healthy].float().mean()) if bool(healthy.any()) else 0.0
    w = healthy.float()
    count = w.sum(1).clamp_min(1)
    mean = (g * w).sum(1) / count
    var = (((g - mean[:, None]) ** 2) * w).sum(1) / (count - 1).clamp_min(1)
    return LevelStats(targets, mean, var.sqrt(), error, g.clone(), reads, healthy_error)


def characterize(
    preset: str | DevicePreset,
    strategy: str = "hybrid",
    levels: int = 8,
    cells: int = 1000,
    window: tuple[float, float] | None = None,
    bake_hours: float = 0.0,
    bake_celsius: float = 150.0,
    seed: int = 0,
) -> Characterization:
    """Program ``cells`` cells per level of ``levels`` in ``window`` (S; default the preset's)
    and measure them."""
    p = load_preset(preset)
    check_strategy(strategy)
    if isinstance(cells, bool) or not isinstance(cells, int) or cells < 2:
        raise MemlearnError(f"cells must be an integer >= 2, got {cells!r}")
    check_hours(bake_hours, "bake hours")
    check_celsius(bake_celsius, "bake temperature")
    states = p.technology.states
    if states is not None and levels != states:
        raise MemlearnError(
            f"{p.name} stores {states} states per cell: levels must be {states}, got {levels}"
        )
    win = check_window(window) if window is not None else p.window
    targets = level_conductances(levels, win)
    generator = torch.Generator().manual_seed(int(seed))
    result = program(p, targets.repeat_interleave(cells), strategy, generator=generator)
    g = result.conductance.view(levels, cells)
    healthy = (result.cells.stuck == STUCK_NONE).view(levels, cells)
    programmed = _stats(p, g, result.cells.age_s.view(levels, cells), healthy, targets, generator)
    baked = None
    if bake_hours > 0:
        seconds = equivalent_seconds(p, bake_hours * 3600.0, celsius(bake_celsius))
        relax(p, result.cells, seconds, generator)
        state = result.cells
        baked = _stats(
            p, state.g.view(levels, cells), state.age_s.view(levels, cells), healthy, targets,
            generator,
        )  # fmt: skip
    return Characterization(
        preset=p.name,
        strategy=strategy,
        programmed=programmed,
        baked=baked,
        pulses_per_cell=float(result.pulses.float().mean()),
        energy_per_cell_j=float(result.energy_j.double().mean()),
        failed_fraction=float(result.failed.float().mean()),
        healthy_failed_fraction=float(result.failed.view(levels, cells)[healthy].float().mean())
        if bool(healthy.any())
        else 0.0,
        bake_hours=float(bake_hours),
        bake_celsius=float(bake_celsius),
        settle_s=p.values["settle_s"],
    )


def plot_characterization(ch: Characterization, path: str) -> None:
    """Histogram of conductances per level (µS), before and after the bake when there is one;
    written atomically as PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from memlearn.io import atomic_write

    panels = [("after programming", ch.programmed)]
    if ch.baked is not None:
        title = f"after {ch.bake_hours:g} h at {ch.bake_celsius:g} °C"
        panels.append((title, ch.baked))
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3.2 * len(panels)), squeeze=False)
    all_g = torch.cat([s.samples.flatten() for _, s in panels]) * 1e6
    lo = float(torch.quantile(all_g, 0.001)) - 5
    hi = float(torch.quantile(all_g, 0.999)) + 5
    bins = torch.linspace(lo, hi, 160).numpy()
    cmap = plt.get_cmap("viridis")
    for ax, (title, stats) in zip(axes[:, 0], panels, strict=True):
        n = stats.samples.shape[0]
        for i in range(n):
            ax.hist(
                (stats.samples[i] * 1e6).numpy(), bins=bins, alpha=0.6,
                color=cmap(i / max(n - 1, 1)), histtype="stepfilled",
            )  # fmt: skip
            ax.axvline(float(stats.targets[i]) * 1e6, color="k", lw=0.5, ls=":")
        ax.set_title(
            f"{ch.preset}, {ch.strategy}: {title} — level error rate {stats.error_rate:.1%}"
        )
        ax.set_xlabel("conductance (µS)")
        ax.set_ylabel("cells")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getvalue())


def write_measurements_csv(ch: Characterization, path: str) -> None:
    """Write the characterised cells' reads (with read noise, as a bench measures them) as
    ``level,conductance,time,temperature`` rows (S, s, °C), the input format of ``memlearn
    device fit``; baked cells follow at the bake's time and temperature.  Written atomically."""
    from memlearn.io import atomic_write

    stages = [(ch.programmed, ch.settle_s, 25.0)]
    if ch.baked is not None:
        stages.append((ch.baked, ch.settle_s + ch.bake_hours * 3600.0, ch.bake_celsius))
    with atomic_write(path) as handle:
        handle.write("level,conductance,time,temperature\n")
        for stats, seconds, temp in stages:
            values = stats.reads if stats.reads is not None else stats.samples
            n = values.shape[0]
            for level in range(n):
                handle.writelines(
                    f"{level},{g:.6e},{seconds:g},{temp:g}\n" for g in values[level].tolist()
                )
