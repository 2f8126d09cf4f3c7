"""One deployment of a meta-trained model into chips, the same for every caller.

``memlearn adapt``/``demo``/``adapt-gap``, the reference studies and ``bench/adapt.py`` describe
a deployment with one :class:`DeployConfig` (:mod:`memlearn.onchip.deploy_config`: every
option checked when it is made, before any data or model is loaded) and set it up here: :func:`deploy` loads the checkpoint, samples the
tasks (:func:`sample_tasks`: the same seed gives the same tasks everywhere), builds the chip
(simulated, or a bench behind ``HOST:PORT``) on the model's layout with spare pairs beside its
output array and repairs it (:func:`build_chip`), and resolves the full-scale weight
(:func:`deployment_weight_max`).  The :class:`Deployment` it returns owns the chip: use it in
``with``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from memlearn.bounds import check_spare_pairs
from memlearn.chip.base import Chip, ChipLayout
from memlearn.chip.layout import output_layout, tile_spares
from memlearn.chip.repair import RepairedChip, repair_output
from memlearn.data.sampler import TaskBatch, TaskSampler
from memlearn.meta.inner import HeadTasks
from memlearn.nn.rates import Rates
from memlearn.onchip.config import AdaptConfig
from memlearn.onchip.deploy_config import DeployConfig, bench_address
from memlearn.onchip.features import sampled_head_tasks
from memlearn.onchip.run import (
    QUERIES,
    deployed_levels,
    head_layout,
    inner_lrs_from,
    resolve_weight_max,
    with_copies,
)


@dataclass
class Deployment:
    """A model deployed by :func:`deploy` (or prepared by :func:`prepare`: no chip yet).

    ``levels``: the level count; ``level_conductances``: the chip's levels (S); ``weight_max``
    and ``weight_max_source``: the full scale per layer and where it came from; ``preset``: the
    chip's preset name.  Closing the deployment closes its chip.
    """

    config: DeployConfig
    net: nn.Module
    info: dict[str, Any]
    inner_lrs: Rates
    layout: ChipLayout
    levels: int
    split: str
    tasks: TaskBatch | HeadTasks
    spare_pairs: int
    preset: str | None
    chip: Chip | None = None
    level_conductances: torch.Tensor | None = None
    weight_max: list[float] | None = None
    weight_max_source: str | None = None

    def adapt_config(self) -> AdaptConfig:
        """The loop's settings for this deployment."""
        c = self.config
        return AdaptConfig(
            steps=c.steps,
            strategy=c.strategy,
            policy=c.policy,
            levels=self.level_conductances,
            weight_max=self.weight_max,
            bake_seconds=c.bake_hours * 3600.0,
            bake_kelvin=c.bake_celsius + 273.15,
            seed=c.seed,
        )

    def close(self) -> None:
        if self.chip is not None:
            self.chip.close()

    def __enter__(self) -> Deployment:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def task_sampler(config: DeployConfig, ways: int) -> tuple[str, TaskSampler]:
    """The split (``config.split``, default: the evaluation alphabets if present, else val) and
    the sampler of ``ways``-way ``config.shots``-shot tasks with :data:`QUERIES` queries."""
    from memlearn.data import default_eval_split, load_split

    split = config.split or default_eval_split(config.root)
    classes = load_split(split, config.root, rotations=False)
    return split, TaskSampler(classes, ways, config.shots, QUERIES, seed=config.seed)


def sample_tasks(config: DeployConfig, ways: int) -> tuple[str, TaskBatch]:
    """The split and the ``config.tasks`` tasks to learn (:func:`task_sampler`), each support
    image with ``config.support_copies`` distorted copies."""
    split, sampler = task_sampler(config, ways)
    return split, with_copies(sampler.sample(config.tasks), config.support_copies, config.seed)


def sample_features(config: DeployConfig, net: nn.Module) -> tuple[str, HeadTasks]:
    """The split and the tasks of :func:`sample_tasks` as ``net``'s head sees them, bit for bit,
    without holding a large batch's images at once (:func:`~memlearn.onchip.features.
    sampled_head_tasks`)."""
    split, sampler = task_sampler(config, int(net.fc2.weight.shape[0]))
    return split, sampled_head_tasks(sampler, config.tasks, net, config.support_copies, config.seed)


def prepare(config: DeployConfig, features: bool = False) -> Deployment:
    """Load the checkpoint and sample the tasks (no chip, no full scale yet): their images, or
    with ``features`` their features (:func:`sample_features`)."""
    from memlearn.meta.checkpoint import load_checkpoint

    net, info = load_checkpoint(config.checkpoint)
    ways = int(net.fc2.weight.shape[0])
    if config.ways is not None and config.ways != ways:
        raise ValueError(f"the checkpoint is a {ways}-way model; ways {config.ways} does not fit")
    lrs = inner_lrs_from(info)
    layout = head_layout(net)
    free = tile_spares(layout, layout.arrays[-1].name)
    spares = free if config.spare_pairs is None else check_spare_pairs(config.spare_pairs, free)
    split, tasks = sample_features(config, net) if features else sample_tasks(config, ways)  # last
    return Deployment(
        config, net, info, lrs, layout, deployed_levels(info, config.levels), split, tasks,
        spares, None if config.bench else config.preset_name,
    )  # fmt: skip


def repaired_chip(
    make: Callable[[ChipLayout], Chip], layout: ChipLayout, spare_pairs: int, strategy: str
) -> Chip:
    """``make(physical)`` on the model's ``layout`` with ``spare_pairs`` more pairs beside its
    output array (:func:`~memlearn.chip.layout.output_layout`), repaired when it has some
    (:func:`~memlearn.chip.repair.repair_output`); closed again if the repair fails."""
    chip = make(output_layout(layout, spare_pairs))
    with _closed_on_error(chip):
        return repair_output(chip, layout, strategy)


def build_chip(config: DeployConfig, layout: ChipLayout, levels: int, spare_pairs: int) -> Chip:
    """The repaired chip of a deployment: ``config.n_chips`` simulated chips of
    ``config.preset`` on ``levels`` levels, or the bench at ``config.bench``."""

    def make(physical: ChipLayout) -> Chip:
        if config.bench:
            return _bench_chip(config, physical)
        from memlearn.chip.simulated import SimulatedChip

        return SimulatedChip(
            config.n_chips, preset=config.preset_name, layout=physical, levels=levels,
            seed=config.seed, device=config.torch_device, engine=config.engine,
        )  # fmt: skip

    from memlearn.chip.simulated import on_device

    device = config.torch_device
    with on_device(None if device is None or device == "cpu" else device):  # the repair's too
        return repaired_chip(make, layout, spare_pairs, config.strategy)


def _bench_chip(config: DeployConfig, physical: ChipLayout) -> Chip:
    from memlearn.chip.remote import RemoteChip

    chip = RemoteChip(*bench_address(str(config.bench)))
    with _closed_on_error(chip):
        if chip.layout.arrays != physical.arrays:
            raise ValueError(
                f"the bench's arrays {chip.layout.arrays} do not fit the model's "
                f"{physical.arrays} (the output array counts the spare pairs)"
            )
        theirs = {"preset": chip.preset_name, "chips": chip.n_chips, "levels": len(chip.levels)}
        for name, value in theirs.items():
            mine = getattr(config, name)
            if mine is not None and value is not None and mine != value:
                raise ValueError(
                    f"{name} {mine!r} differs from the bench's {value!r}: the bench decides "
                    f"its {name}; leave the option out with a bench"
                )
        if config.strategy not in chip.strategies:
            raise ValueError(
                f"the bench does not program with {config.strategy!r}; it offers "
                f"{', '.join(chip.strategies)}"
            )
    return chip


@contextlib.contextmanager
def _closed_on_error(chip: Chip) -> Iterator[None]:
    """Close ``chip`` when the block fails (it is the caller's otherwise)."""
    try:
        yield
    except BaseException:
        chip.close()
        raise


def deployment_weight_max(
    deployment: Deployment, levels: torch.Tensor, source: str | None = None
) -> tuple[list[float], str]:
    """The full-scale weight per layer for a chip with ``levels`` (S), and where it came from
    (:func:`~memlearn.onchip.run.resolve_weight_max` with ``source``, default the config's)."""
    c, d = deployment.config, deployment
    return resolve_weight_max(
        d.net, d.info, d.inner_lrs, steps=c.steps, levels=levels, policy=c.policy,
        ways=int(d.net.fc2.weight.shape[0]), shots=c.shots, source=source or c.weight_max,
        root=c.root, seed=c.seed, preset=d.preset, strategy=c.strategy,
        support_copies=c.support_copies,
    )  # fmt: skip


def deploy(config: DeployConfig, features: bool = False) -> Deployment:
    """Load the model, sample the tasks (their features with ``features``: :func:`prepare`),
    build and repair the chip, resolve the full scale."""
    d = prepare(config, features)
    d.chip = build_chip(config, d.layout, d.levels, d.spare_pairs)
    with _closed_on_error(d.chip):
        d.level_conductances = d.chip.levels.detach().float().flatten().cpu()
        d.levels = int(d.level_conductances.numel())
        if config.bench:
            d.preset = d.chip.preset_name
        d.weight_max, d.weight_max_source = deployment_weight_max(d, d.level_conductances)
    return d


def record(deployment: Deployment) -> dict[str, Any]:
    """What a run records of its deployment (JSON-ready): the options as resolved."""
    d, c = deployment, deployment.config
    repaired = d.chip if isinstance(d.chip, RepairedChip) else None
    return {
        "checkpoint": d.info.get("path"),
        "seed": c.seed,
        "split": d.split,
        "preset": d.preset,
        "strategy": c.strategy,
        "policy": c.policy,
        "levels": d.levels,
        "inner_lrs": d.inner_lrs,
        "weight_max": d.weight_max,
        "weight_max_source": d.weight_max_source,
        "support_copies": c.support_copies,
        "spare_pairs": d.spare_pairs,
        "repair_test_energy_j": _mean_or_none(repaired and repaired.test_energy_j),
        "repair_faulty_pairs": _mean_or_none(repaired and repaired.faulty_pairs),
        "bench": c.bench,
        **({"engine": c.engine} if c.engine else {}),  # recorded when chosen
    }


def _mean_or_none(values: torch.Tensor | None) -> float | None:
    return None if values is None else float(values.double().mean())
