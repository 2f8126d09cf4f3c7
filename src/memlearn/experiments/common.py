"""What every reference study shares: the settings of a run, the sweep point that adapts a
batch of simulated chips, statistics and file output (the tasks to learn: ``workload``).

The tasks are drawn once per run (held-out alphabets, the default evaluation split) and their
head features computed once: every point of every study learns the *same* tasks (common random
numbers), so the differences between points are those of the devices, not of the tasks, and
they are compared task by task (:func:`paired_difference`).  Each point is batched Monte
Carlo: one simulated chip per task, seeded from the point's seed.
"""

from __future__ import annotations

import csv
import io
import math
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memlearn.data.augment import DEFAULT_SUPPORT_COPIES
from memlearn.devices.preset import DevicePreset, load_preset
from memlearn.errors import MemlearnError
from memlearn.experiments.provenance import write_json
from memlearn.experiments.report import StudyOutcome
from memlearn.experiments.sweep import run_sweep
from memlearn.experiments.workload import DEFAULT_POLICY, Workload, load_workload
from memlearn.io import atomic_write
from memlearn.stats import ci95

CHANCE_MARGIN = 0.05  # how far from 1/ways the accuracy of the deployed head may be [E]
# CSV columns of an adapt_point result that every accuracy sweep writes after its own
POINT_COLUMNS = [
    "final_accuracy",
    "final_ci95",
    "writes_per_adaptation",
    "energy_per_adaptation_j",
    "preset",
    "strategy",
    "policy",
    "seed",
]


def study_preset(preset: str | DevicePreset) -> DevicePreset:
    """Load ``preset`` and check that the studies can use it (multi-level, resistive)."""
    p = load_preset(preset)
    if p.technology.states is not None:  # a cell of fixed states, not a continuum of levels
        raise MemlearnError(
            f"the reference studies need a multi-level resistive (rram) preset; {p.name!r} is "
            f"{p.kind}"
        )
    return p


@dataclass
class StudyRun:
    """Settings shared by the studies of one run, and the tasks they learn (loaded once)."""

    out_dir: Path
    preset: DevicePreset
    seed: int = 0
    backend: str = "local"
    ray_address: str | None = None
    progress: bool = True
    checkpoint: Path | None = None
    root: Path | None = None
    steps: int = 5
    policy: str = DEFAULT_POLICY
    support_copies: int = DEFAULT_SUPPORT_COPIES
    workload_: Workload | None = None

    def __post_init__(self) -> None:
        from memlearn.onchip.policies import POLICIES

        if self.policy not in POLICIES:
            raise MemlearnError(
                f"unknown update policy {self.policy!r}; allowed: {', '.join(POLICIES)}"
            )
        self.out_dir = Path(self.out_dir)
        self.preset = study_preset(self.preset)
        if self.seed < 0:
            raise MemlearnError(f"seed must be >= 0, got {self.seed}")

    def workload(self, tasks: int) -> Workload:
        """The first ``tasks`` tasks of the run: the tasks ``memlearn adapt --tasks N --seed``
        learns with the run's seed, N the largest number asked for so far (a larger request
        draws the tasks anew)."""
        if self.workload_ is None or self.workload_.n_tasks < tasks:
            self.workload_ = load_workload(
                self.checkpoint, tasks=tasks, steps=self.steps, seed=self.seed, root=self.root,
                support_copies=self.support_copies,
            )  # fmt: skip
        return self.workload_.take(tasks)

    def study_seed(self, key: str) -> int:
        """The base seed of one study's sweep: a function of the run's seed and the study."""
        state = np.random.SeedSequence([self.seed, zlib.crc32(key.encode())]).generate_state(1)
        return int(state[0] >> np.uint32(1))

    def sweep(
        self, key: str, fn: Callable[[dict[str, Any], int], dict[str, Any]], points: list[dict]
    ) -> list[dict[str, Any]]:
        """Run the points of study ``key`` on the run's backend."""
        return run_sweep(
            fn,
            points,
            seed=self.study_seed(key),
            backend=self.backend,
            ray_address=self.ray_address,
            description=key,
            progress=self.progress,
        )

    def path(self, name: str) -> Path:
        return self.out_dir / name

    def point(self, workload: Workload, strategy: str, levels: int, **extra: Any) -> dict:
        """A sweep point of :func:`adapt_point` on the run's preset and policy."""
        return {"workload": workload, "preset": self.preset, "strategy": strategy,
                "levels": int(levels), "policy": self.policy, **extra}  # fmt: skip


def adapt_point(point: dict[str, Any], seed: int) -> dict[str, Any]:
    """A sweep point: one chip per task of ``point["workload"]``, programmed with
    ``point["preset"]`` and ``point["strategy"]`` on ``point["levels"]`` levels, adapts with the
    computer in the loop (update ``point["policy"]``); optionally baked (``bake_hours`` at
    ``bake_celsius``).  ``point["weight_max"]``, when given, is the full scale per layer;
    otherwise the point calibrates its own on its device (``Workload.calibrated_weight_max``).

    Every other key of the point is passed through to the result, which holds the per-task
    accuracy by step (``accuracy``, ``[T][K+1]``), its mean and std by step, the per-task
    accuracy after the bake, the full scale used, and writes, pulses and energy per adaptation
    (J, by category; ``system_energy_j``: :mod:`memlearn.crossbar.system_energy`).
    """
    return run_point(point, seed)


def run_point(
    point: dict[str, Any],
    seed: int,
    *,
    chip_class: type | None = None,
    config_changes: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """:func:`adapt_point` on chips of ``chip_class`` (a ``SimulatedChip`` subclass; default
    ``SimulatedChip``) with ``config_changes`` applied to the loop's ``AdaptConfig``."""
    from memlearn.chip.simulated import SimulatedChip
    from memlearn.onchip.config import AdaptConfig
    from memlearn.onchip.loop import adapt_on_chip, chip_levels
    from memlearn.onchip.run import summarise

    started = time.perf_counter()
    wl: Workload = point["workload"]
    preset = load_preset(point["preset"])
    levels = int(point.get("levels") or wl.levels)
    bake_hours = float(point.get("bake_hours", 0.0))
    cls = chip_class or SimulatedChip
    chip = cls(wl.n_tasks, preset=preset, layout=wl.layout, levels=levels, seed=seed)
    policy = point.get("policy", DEFAULT_POLICY)
    weight_max = point.get("weight_max") or wl.calibrated_weight_max(
        chip_levels(chip, levels), policy, preset, point["strategy"]
    )
    settings = {
        "steps": wl.steps,
        "strategy": point["strategy"],
        "policy": policy,
        "levels": levels,
        "weight_max": list(weight_max),
        "bake_seconds": bake_hours * 3600.0,
        "bake_kelvin": float(point.get("bake_celsius", 150.0)) + 273.15,
        "seed": (seed + 1) % 2**63,
    }
    config = AdaptConfig(**{**settings, **(config_changes or {})})
    result = adapt_on_chip(chip, wl, wl.weights, wl.inner_lrs, config)
    summary = summarise(result, preset)
    labels = {k: v for k, v in point.items() if k not in ("workload", "preset")}
    out = {
        **labels,
        "preset": preset.name,
        "levels": levels,
        "weight_max": [float(w) for w in weight_max],
        "accuracy": result.accuracy.tolist(),
        "accuracy_by_step": summary["accuracy_by_step"],
        "accuracy_std_by_step": [float(s) for s in result.accuracy.std(dim=0)],
        "final_accuracy": summary["accuracy_by_step"][-1],
        "final_ci95": summary["accuracy_ci95"],
        "writes_per_adaptation": summary["writes_per_adaptation"],
        "pulses_per_adaptation": summary["pulses_per_adaptation"],
        "energy_per_adaptation_j": summary["energy_per_adaptation_j"],
        "energy_breakdown_j": summary["energy_breakdown_j"],
        "system_energy_j": summary.get("system_energy_j"),
        "seed": seed,
        "seconds": time.perf_counter() - started,
    }
    if result.accuracy_after_bake is not None:
        out["accuracy_after_bake"] = result.accuracy_after_bake.tolist()
        out["final_accuracy_after_bake"] = float(result.accuracy_after_bake.mean())
    return out


# -- statistics -------------------------------------------------------------------------------


def error_over_window(stats: Any, window: tuple[float, float]) -> float:
    """The cells' rms distance from their level target (spread and mean shift of each level,
    stuck cells left out as ``characterize`` leaves them), as a fraction of the conductance
    ``window``: the weight noise the network sees, whatever the number of levels."""
    offset = stats.means.double() - stats.targets.double()
    rms = torch.sqrt((stats.stds.double() ** 2 + offset**2).mean())
    return float(rms) / (window[1] - window[0])


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """Mean and half-width of its normal 95 % confidence interval."""
    x = np.asarray(values, dtype=float)
    return float(x.mean()), ci95(torch.from_numpy(x))


def paired_difference(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Mean of ``a - b`` over the same tasks, and the half-width of its 95 % CI."""
    if len(a) != len(b):
        raise ValueError(f"paired samples must have the same length, got {len(a)} and {len(b)}")
    return mean_ci(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))


def final_accuracies(result: dict[str, Any]) -> list[float]:
    """Per-task query accuracy after the last update, from an :func:`adapt_point` result."""
    return [row[-1] for row in result["accuracy"]]


def clearly_greater(a: Sequence[float], b: Sequence[float]) -> tuple[bool, float, float]:
    """Whether ``a`` beats ``b`` on the same tasks beyond the 95 % CI of the paired difference;
    also returns the difference and the CI half-width."""
    diff, half = paired_difference(a, b)
    return bool(diff > 0 and (math.isnan(half) or diff > half)), diff, half


def paired_claim(
    checks: dict[str, bool], claim: str, better: dict[str, Any], worse: dict[str, Any]
) -> str:
    """Check that the :func:`adapt_point` result ``better`` beats ``worse`` on the same tasks
    beyond the 95 % CI of the paired difference, record it in ``checks`` under ``claim`` and
    return the difference in points (:func:`pts`)."""
    ok, diff, half = clearly_greater(final_accuracies(better), final_accuracies(worse))
    checks[f"{claim} (95 % CI, paired)"] = ok
    return pts(diff, half)


def pct(x: float) -> str:
    """A fraction as a percentage: ``0.973`` → ``97.3 %``."""
    return f"{100 * x:.1f} %"


def pts(diff: float, half: float) -> str:
    """A difference of fractions and its CI half-width in percentage points."""
    return f"{100 * diff:+.1f} ± {100 * half:.1f} points"


# -- files ------------------------------------------------------------------------------------


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig: Any, path: Path) -> Path:
    """Write ``fig`` as PNG atomically and close it."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    pyplot().close(fig)
    with atomic_write(path, "wb") as handle:
        handle.write(buffer.getvalue())
    return path


def write_csv(path: Path, rows: list[dict[str, Any]], columns: list[str]) -> Path:
    """Write ``rows`` (dicts) with ``columns`` as a CSV file, atomically."""
    with atomic_write(path) as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _cell(row.get(k)) for k in columns})
    return path


def _cell(value: Any) -> Any:
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


def write_results(
    run: StudyRun,
    key: str,
    settings: dict[str, Any],
    results: list[dict[str, Any]],
    workload: Workload | None = None,
) -> Path:
    """``<key>.json``: the study's settings, the tasks' description and every point's result."""
    payload = {
        "study": key,
        "preset": run.preset.name,
        "policy": run.policy,
        "settings": settings,
        "tasks": workload.info if workload is not None else None,
        "sweep_seed": run.study_seed(key),
        "points": results,
    }
    return write_json(run.path(f"{key}.json"), payload)


def save_data(
    run: StudyRun,
    key: str,
    rows: list[dict[str, Any]],
    columns: list[str],
    settings: dict[str, Any],
    results: list[dict[str, Any]],
    workload: Workload,
) -> list[str]:
    """``<key>.csv`` (``rows``, ``columns``) and ``<key>.json`` (every point); their names."""
    return [
        write_csv(run.path(f"{key}.csv"), rows, columns).name,
        write_results(run, key, settings, results, workload).name,
    ]


@dataclass(frozen=True)
class StudyInfo:
    """What names a study in the report: key (file and sweep names), title, published trend."""

    key: str
    title: str
    published: str


def conclude(
    info: StudyInfo,
    observed: str,
    checks: dict[str, bool],
    figures: list[str],
    data: list[str],
    numbers: list[tuple[str, str]],
    notes: str,
) -> StudyOutcome:
    """A study's outcome: reproduced when it has checks and every one holds; the notes begin
    with each check and its result."""
    listed = "; ".join(f"{name}: {'yes' if ok else 'no'}" for name, ok in checks.items())
    return StudyOutcome(
        key=info.key,
        title=info.title,
        reference=info.published,
        observed=observed,
        reproduced=bool(checks) and all(checks.values()),
        figures=figures,
        data_files=data,
        numbers=numbers,
        notes=f"Checks: {listed}. {notes}",
    )
