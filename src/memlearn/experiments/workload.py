"""The tasks every reference study learns: a checkpoint's head deployed as ``memlearn adapt``
deploys it (:func:`memlearn.onchip.deploy.prepare`), its tasks as features of the deployed
extractor, and the calibration tasks each sweep point sets its full scale on."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch

from memlearn.chip.base import ChipLayout
from memlearn.data.augment import DEFAULT_SUPPORT_COPIES
from memlearn.devices.preset import DevicePreset
from memlearn.errors import MemlearnError
from memlearn.nn.rates import Rates
from memlearn.onchip.policies import DEFAULT_POLICY as ONCHIP_DEFAULT_POLICY

# Update policy of the studies: `memlearn adapt`'s default (memlearn.onchip.policies), so that a
# study measures the loop users run.  Each sweep point calibrates its own full scale on the
# level statistics of its device (Workload.calibrated_weight_max).
DEFAULT_POLICY = ONCHIP_DEFAULT_POLICY


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

    def without_copies(self) -> Workload:
        """The same tasks with the shots alone in the support sets (the distorted copies come
        after the shots: :func:`memlearn.data.augment.with_support_copies`)."""
        n = self.ways * self.shots
        if self.support_x.shape[1] % n:
            raise MemlearnError(
                f"support sets of {self.support_x.shape[1]} images are not copies of "
                f"{self.ways} x {self.shots} shots"
            )
        return replace(
            self,
            support_x=self.support_x[:, :n],
            support_y=self.support_y[:, :n],
            info={**self.info, "support_copies": 0},
        )

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
    from memlearn.onchip.run import calibration_tasks, deployed_levels, head_weights

    if steps < 1:
        raise MemlearnError(f"steps must be >= 1, got {steps}")
    config = DeployConfig(
        checkpoint=checkpoint, tasks=tasks, shots=shots, steps=steps, split=split, seed=seed,
        root=root, support_copies=support_copies,
    )  # fmt: skip
    d = prepare(config)
    net, info, lrs = d.net, d.info, d.inner_lrs
    ways = int(net.fc2.weight.shape[0])
    calib = calibration_tasks(ways, shots, seed=seed, root=root, support_copies=support_copies)
    calibration = _features(net, calib)
    stored = [float(w) for w in info.get("weight_max") or []] or None
    sx, sy, qx, qy = _features(net, d.tasks)
    weights = head_weights(net)
    software, _ = head.software_adapt(HeadTasks(sx, sy, qx, qy), weights, lrs, steps)
    # Uniform levels give the same weight grid in any window: the window here is immaterial.
    model_levels = uniform_levels(10e-6, 150e-6, deployed_levels(info))
    weight_max = weight_max_for(
        HeadTasks(*calibration), weights, lrs, steps, model_levels, DEFAULT_POLICY, start=stored
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
        layout=d.layout,
        steps=steps,
        ways=ways,
        shots=shots,
        software_accuracy=software,
        info=_record(d, ways, list(weight_max)),
        calibration=calibration,
        checkpoint_weight_max=stored,
    )


def _features(net: Any, tasks: Any) -> tuple[torch.Tensor, ...]:
    """Support features, support labels, query features, query labels of a TaskBatch."""
    from memlearn.onchip.run import head_tasks

    f = head_tasks(net, tasks)
    return f.support_x, f.support_y, f.query_x, f.query_y


def _record(d: Any, ways: int, weight_max: list[float]) -> dict[str, Any]:
    """The workload's ``info`` for the prepared deployment ``d``: what it deployed, and where
    its full scale came from."""
    from memlearn.onchip.run import CALIBRATION_TASKS, QUERIES, deployed_levels

    source = (
        f"accuracy rule on {CALIBRATION_TASKS} within-alphabet training tasks, {DEFAULT_POLICY} "
        "policy, noise-free levels (each sweep point recalibrates on its device's levels)"
    )
    config = d.config
    return {
        "checkpoint": d.info.get("path"),
        "split": d.split,
        "tasks": config.tasks,
        "ways": ways,
        "shots": config.shots,
        "queries_per_class": QUERIES,
        "steps": config.steps,
        "task_seed": config.seed,
        "inner_lrs": d.inner_lrs,
        "weight_max": weight_max,
        "weight_max_source": source,
        "model_levels": deployed_levels(d.info),
    }
