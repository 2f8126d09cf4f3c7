"""What every reference study shares: the tasks to learn, the settings of a run, the sweep
point that adapts a batch of simulated chips, statistics and file output.

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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from memlearn.chip.base import ChipLayout
from memlearn.data.augment import DEFAULT_SUPPORT_COPIES
from memlearn.devices.preset import DevicePreset, load_preset
from memlearn.errors import MemlearnError
from memlearn.experiments.provenance import write_json
from memlearn.experiments.report import StudyOutcome
from memlearn.experiments.sweep import run_sweep
from memlearn.io import atomic_write
from memlearn.nn.rates import Rates
from memlearn.onchip.policies import DEFAULT_POLICY as ONCHIP_DEFAULT_POLICY
from memlearn.stats import ci95

CHANCE_MARGIN = 0.05  # how far from 1/ways the accuracy of the deployed head may be [E]
# Update policy of the studies: `memlearn adapt`'s default (memlearn.onchip.policies), so that a
# study measures the loop users run.  Each sweep point calibrates its own full scale on the
# level statistics of its device (Workload.calibrated_weight_max).
DEFAULT_POLICY = ONCHIP_DEFAULT_POLICY
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


@dataclass
class Workload:
    """The tasks every point learns, as the deployed extractor's features (``[T, B, F]``), with
    the head to deploy and its ideal-software learning curve on the same tasks."""

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    weights: list[torch.Tensor]
    inner_lrs: Rates
    weight_max: list[float]
    levels: int
    layout: ChipLayout
    steps: int
    ways: int
    shots: int
    software_accuracy: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)
    # Features and labels (support x, support y, query x, query y) of calibration tasks from the
    # *training* alphabets: the full-scale weight of each point is calibrated on them.
    calibration: tuple[torch.Tensor, ...] | None = None
    checkpoint_weight_max: list[float] | None = None

    def calibrated_weight_max(
        self,
        levels: torch.Tensor,
        policy: str,
        preset: DevicePreset | str | None = None,
        strategy: str | None = None,
    ) -> list[float]:
        """Full-scale weight per layer for a chip with these ``levels`` (S) and update
        ``policy``, as ``memlearn adapt --weight-max accuracy`` picks it: the accuracy rule on
        the calibration tasks, starting from the checkpoint's value, scored on the level
        statistics of ``preset`` programmed with ``strategy`` when both are given;
        :attr:`weight_max` without calibration tasks."""
        if self.calibration is None:
            return list(self.weight_max)
        from memlearn.meta.inner import HeadTasks
        from memlearn.onchip.calibration import device_level_samples, weight_max_for

        samples = None
        if preset is not None and strategy is not None:
            samples = device_level_samples(preset, strategy, levels)
        return weight_max_for(
            HeadTasks(*self.calibration), self.weights, self.inner_lrs, self.steps, levels,
            policy, start=self.checkpoint_weight_max, level_samples=samples,
        )  # fmt: skip

    @property
    def n_tasks(self) -> int:
        return int(self.support_x.shape[0])

    def take(self, n: int) -> Workload:
        """The first ``n`` tasks."""
        if not 1 <= n <= self.n_tasks:
            raise MemlearnError(f"tasks must be in [1, {self.n_tasks}], got {n}")
        return replace(
            self,
            support_x=self.support_x[:n],
            support_y=self.support_y[:n],
            query_x=self.query_x[:n],
            query_y=self.query_y[:n],
            software_accuracy=self.software_accuracy[:n],
            info={**self.info, "tasks": n},
        )


def load_workload(
    checkpoint: str | Path | None = None,
    *,
    tasks: int,
    shots: int = 1,
    steps: int = 5,
    split: str | None = None,
    seed: int = 0,
    root: str | Path | None = None,
    support_copies: int = DEFAULT_SUPPORT_COPIES,
) -> Workload:
    """Sample ``tasks`` held-out tasks and prepare the checkpoint's head for them.

    The model and the tasks are those of :func:`memlearn.onchip.deploy.prepare`, the deployment
    ``memlearn adapt`` makes (the same seed gives the same tasks; levels, inner learning rates,
    ``support_copies`` distorted copies of each support image); ``split`` defaults to the
    evaluation alphabets when present, else ``val``.  The full scale is calibrated here on
    noise-free levels; each sweep point recalibrates it on its device
    (:meth:`Workload.calibrated_weight_max`).
    """
    from memlearn.meta.inner import HeadTasks
    from memlearn.onchip import head
    from memlearn.onchip.calibration import weight_max_for
    from memlearn.onchip.deploy import DeployConfig, prepare
    from memlearn.onchip.mapping import uniform_levels
    from memlearn.onchip.run import (
        CALIBRATION_TASKS,
        QUERIES,
        calibration_tasks,
        deployed_levels,
        head_weights,
        task_features,
    )

    if steps < 1:
        raise MemlearnError(f"steps must be >= 1, got {steps}")
    config = DeployConfig(
        checkpoint=checkpoint, tasks=tasks, shots=shots, steps=steps, split=split, seed=seed,
        root=root, support_copies=support_copies,
    )  # fmt: skip
    d = prepare(config)
    net, info, lrs, split, layout = d.net, d.info, d.inner_lrs, d.split, d.layout
    ways = int(net.fc2.weight.shape[0])
    calib = calibration_tasks(ways, shots, seed=seed, root=root, support_copies=support_copies)
    calibration = (
        task_features(net, calib.support_x), calib.support_y.long(),
        task_features(net, calib.query_x), calib.query_y.long(),
    )  # fmt: skip
    stored = [float(w) for w in info.get("weight_max") or []] or None
    sx, qx, sy, qy = d.tasks.support_x, d.tasks.query_x, d.tasks.support_y, d.tasks.query_y
    sx, qx = task_features(net, sx), task_features(net, qx)
    sy, qy = sy.long(), qy.long()
    weights = head_weights(net)
    software, _ = head.software_adapt(HeadTasks(sx, sy, qx, qy), weights, lrs, steps)
    # Uniform levels give the same weight grid in any window: the window here is immaterial.
    model_levels = uniform_levels(10e-6, 150e-6, deployed_levels(info))
    weight_max = weight_max_for(
        HeadTasks(*calibration), weights, lrs, steps, model_levels, DEFAULT_POLICY, start=stored
    )
    source = (
        f"accuracy rule on {CALIBRATION_TASKS} within-alphabet training tasks, {DEFAULT_POLICY} "
        "policy, noise-free levels (each sweep point recalibrates on its device's levels)"
    )
    return Workload(
        support_x=sx,
        support_y=sy,
        query_x=qx,
        query_y=qy,
        weights=weights,
        inner_lrs=lrs,
        weight_max=list(weight_max),
        levels=deployed_levels(info),
        layout=layout,
        steps=steps,
        ways=ways,
        shots=shots,
        software_accuracy=software,
        info={
            "checkpoint": info.get("path"),
            "split": split,
            "tasks": tasks,
            "ways": ways,
            "shots": shots,
            "queries_per_class": QUERIES,
            "steps": steps,
            "task_seed": seed,
            "inner_lrs": lrs,
            "weight_max": list(weight_max),
            "weight_max_source": source,
            "model_levels": deployed_levels(info),
        },
        calibration=calibration,
        checkpoint_weight_max=stored,
    )


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
    ``bake_celsius``).

    Every other key of the point is passed through to the result, which holds the per-task
    accuracy by step (``accuracy``, ``[T][K+1]``), its mean and std by step, the per-task
    accuracy after the bake, and writes, pulses and energy per adaptation (J, by category).
    """
    from memlearn.chip.simulated import SimulatedChip
    from memlearn.onchip.loop import AdaptConfig, adapt_on_chip, chip_levels
    from memlearn.onchip.run import summarise

    started = time.perf_counter()
    wl: Workload = point["workload"]
    preset = load_preset(point["preset"])
    levels = int(point.get("levels") or wl.levels)
    bake_hours = float(point.get("bake_hours", 0.0))
    chip = SimulatedChip(wl.n_tasks, preset=preset, layout=wl.layout, levels=levels, seed=seed)
    policy = point.get("policy", DEFAULT_POLICY)
    config = AdaptConfig(
        steps=wl.steps,
        strategy=point["strategy"],
        policy=policy,
        levels=levels,
        weight_max=wl.calibrated_weight_max(
            chip_levels(chip, levels), policy, preset, point["strategy"]
        ),
        bake_seconds=bake_hours * 3600.0,
        bake_kelvin=float(point.get("bake_celsius", 150.0)) + 273.15,
        seed=(seed + 1) % 2**63,
    )
    result = adapt_on_chip(chip, wl, wl.weights, wl.inner_lrs, config)
    summary = summarise(result)
    labels = {k: v for k, v in point.items() if k not in ("workload", "preset")}
    out = {
        **labels,
        "preset": preset.name,
        "levels": levels,
        "accuracy": result.accuracy.tolist(),
        "accuracy_by_step": summary["accuracy_by_step"],
        "accuracy_std_by_step": [float(s) for s in result.accuracy.std(dim=0)],
        "final_accuracy": summary["accuracy_by_step"][-1],
        "final_ci95": summary["accuracy_ci95"],
        "writes_per_adaptation": summary["writes_per_adaptation"],
        "pulses_per_adaptation": summary["pulses_per_adaptation"],
        "energy_per_adaptation_j": summary["energy_per_adaptation_j"],
        "energy_breakdown_j": summary["energy_breakdown_j"],
        "seed": seed,
        "seconds": time.perf_counter() - started,
    }
    if result.accuracy_after_bake is not None:
        out["accuracy_after_bake"] = result.accuracy_after_bake.tolist()
        out["final_accuracy_after_bake"] = float(result.accuracy_after_bake.mean())
    return out


# -- statistics -------------------------------------------------------------------------------


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
