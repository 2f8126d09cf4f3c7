"""One deployment of a meta-trained model into chips, the same for every caller.

``memlearn adapt``/``demo``/``adapt-gap``, the reference studies and ``bench/adapt.py`` describe
a deployment with one :class:`DeployConfig` (every option checked when it is made, before any
data or model is loaded) and set it up here: :func:`deploy` loads the checkpoint, samples the
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
from pathlib import Path
from typing import Any

import torch
from torch import nn

from memlearn.bounds import check_celsius, check_hours, check_spare_pairs
from memlearn.chip.base import Chip, ChipLayout
from memlearn.chip.layout import output_layout, tile_spares
from memlearn.chip.repair import RepairedChip, repair_output
from memlearn.data.augment import DEFAULT_SUPPORT_COPIES
from memlearn.data.layout import DRAWERS
from memlearn.data.sampler import TaskBatch, TaskSampler
from memlearn.data.splits import SPLITS
from memlearn.devices.programming import ENGINES, STRATEGIES
from memlearn.meta.inner import HeadTasks
from memlearn.meta.state import pick_device
from memlearn.nn.rates import Rates
from memlearn.onchip.config import AdaptConfig
from memlearn.onchip.features import sampled_head_tasks
from memlearn.onchip.memory import parse_memory
from memlearn.onchip.policies import DEFAULT_POLICY, POLICIES
from memlearn.onchip.run import (
    MAX_SUPPORT_COPIES,
    QUERIES,
    WEIGHT_MAX_SOURCES,
    deployed_levels,
    head_layout,
    inner_lrs_from,
    resolve_weight_max,
    with_copies,
)

DEFAULT_PRESET = "hfo2-mlc"  # the reference device (REFERENCE.md)
DEFAULT_CHIPS = 100  # [E] simulated chips at once: tasks beyond them run in rounds
MAX_LEVELS = 64  # [E] 6 bits per cell, beyond any multi-level RRAM reported
MAX_BAKE_CELSIUS = 400.0  # [E] above back-end-of-line processing temperatures
TASK_SPLITS = tuple(s for s in SPLITS if s != "runs")  # the splits that hold classes


@dataclass(frozen=True)
class DeployConfig:
    """Every option of a deployment, checked on creation: a ``ValueError`` naming the option
    (an unknown preset: the preset loader's ``MemlearnError``, naming the shipped ones).

    ``preset``/``chips``/``levels``: ``None`` takes the default (:data:`DEFAULT_PRESET`,
    :data:`DEFAULT_CHIPS`, the checkpoint's levels) or, with ``bench``, the bench's own; an
    explicit value that differs from the bench's is refused when the bench answers.
    ``ways``: ``None`` takes the model's.  ``weight_max``: a source of
    :data:`~memlearn.onchip.run.WEIGHT_MAX_SOURCES`.  ``spare_pairs``: spare column pairs
    beside the output array (``None``: the rest of its tile; 0: no repair).  ``bake_hours`` at
    ``bake_celsius``: an optional bake after adaptation.  ``max_memory``: the budget (bytes, or
    a size such as ``"4G"``: :func:`~memlearn.onchip.memory.parse_memory`) within which the
    chips are simulated in rounds (:mod:`memlearn.onchip.rounds`; ``None``: a fraction of the
    machine's memory).  ``torch_device``: where the simulated chips live (``"cpu"``, the
    default, or ``"cuda"``, ``"cuda:1"`` ...).  ``engine``: the program-and-verify engine of
    the simulated chips (:data:`~memlearn.devices.programming.ENGINES`; ``None``: ``"torch"``;
    ``"fused"`` runs on the CPU only).
    """

    checkpoint: Path | str | None = None
    preset: str | None = None
    strategy: str = "hybrid"
    policy: str = DEFAULT_POLICY
    chips: int | None = None
    tasks: int = 100
    ways: int | None = None
    shots: int = 1
    steps: int = 5
    split: str | None = None
    levels: int | None = None
    weight_max: str = "auto"
    support_copies: int = DEFAULT_SUPPORT_COPIES
    spare_pairs: int | None = None
    seed: int = 0
    root: Path | str | None = None
    bench: str | None = None
    bake_hours: float = 0.0
    bake_celsius: float = 150.0
    max_memory: int | str | None = None
    torch_device: str | None = None
    engine: str | None = None

    def __post_init__(self) -> None:
        if self.max_memory is not None:  # normalised to bytes
            object.__setattr__(self, "max_memory", parse_memory(self.max_memory))
        if self.torch_device is not None:
            object.__setattr__(self, "torch_device", str(pick_device(self.torch_device)))
        _check_counts(self)
        _check_names(self)
        check_hours(self.bake_hours, "bake_hours")
        if not -273.15 < self.bake_celsius <= MAX_BAKE_CELSIUS:
            raise ValueError(
                f"bake_celsius must be in (-273.15, {MAX_BAKE_CELSIUS:g}], got {self.bake_celsius}"
            )
        check_celsius(self.bake_celsius, "bake_celsius")  # the shared lower bound
        if self.bench is not None:
            bench_address(self.bench)
        elif self.bake_hours > 0 and self.n_chips < self.tasks:
            raise ValueError(
                f"a bake ages every cell of a chip, so each task needs its own chip: give chips "
                f">= tasks with a bake (got chips {self.n_chips}, tasks {self.tasks})"
            )
        _check_paths(self)

    @property
    def n_chips(self) -> int:
        """Simulated chips built: ``chips`` (default :data:`DEFAULT_CHIPS`), at most ``tasks``."""
        return min(DEFAULT_CHIPS if self.chips is None else self.chips, self.tasks)

    @property
    def preset_name(self) -> str:
        """The preset of the simulated chips (``preset`` or :data:`DEFAULT_PRESET`)."""
        return self.preset or DEFAULT_PRESET


def _check_counts(c: DeployConfig) -> None:
    for name, low in (("tasks", 1), ("shots", 1), ("steps", 0), ("seed", 0)):
        if getattr(c, name) < low:
            raise ValueError(f"{name} must be >= {low}, got {getattr(c, name)}")
    if c.chips is not None and c.chips < 1:
        raise ValueError(f"chips (chips simulated at once) must be >= 1, got {c.chips}")
    if c.ways is not None and c.ways < 2:
        raise ValueError(f"ways must be >= 2, got {c.ways}")
    if c.shots + QUERIES > DRAWERS:
        raise ValueError(
            f"shots {c.shots} is too many: a task takes shots + {QUERIES} query images of each "
            f"class and an Omniglot class has {DRAWERS}, so shots must be in "
            f"[1, {DRAWERS - QUERIES}]"
        )
    if c.levels is not None and not 2 <= c.levels <= MAX_LEVELS:
        raise ValueError(f"levels must be in [2, {MAX_LEVELS}], got {c.levels}")
    if not 0 <= c.support_copies <= MAX_SUPPORT_COPIES:
        raise ValueError(
            f"support_copies must be in [0, {MAX_SUPPORT_COPIES}], got {c.support_copies}"
        )
    if c.spare_pairs is not None and c.spare_pairs < 0:
        raise ValueError(f"spare_pairs must be >= 0, got {c.spare_pairs}")


def _check_names(c: DeployConfig) -> None:
    from memlearn.devices.preset import load_preset

    for name, value, allowed in (
        ("strategy", c.strategy, STRATEGIES),
        ("policy", c.policy, POLICIES),
        ("weight_max", c.weight_max, WEIGHT_MAX_SOURCES),
    ):
        if value not in allowed:
            raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")
    if c.engine is not None and c.engine not in ENGINES:
        raise ValueError(f"unknown engine {c.engine!r}; allowed: {', '.join(ENGINES)}")
    if c.engine == "fused" and c.torch_device not in (None, "cpu"):
        raise ValueError(f"engine fused runs on the CPU, not torch_device {c.torch_device}")
    if c.split is not None and c.split not in TASK_SPLITS:
        raise ValueError(f"unknown split {c.split!r}; allowed: {', '.join(TASK_SPLITS)}")
    if c.preset is not None or c.bench is None:
        load_preset(c.preset_name)  # an unknown preset fails here, naming the presets


def _check_paths(c: DeployConfig) -> None:
    if c.checkpoint is not None and not Path(c.checkpoint).is_file():
        raise ValueError(f"checkpoint {c.checkpoint} does not exist (or is not a file)")
    if c.root is not None and not Path(c.root).is_dir():
        raise ValueError(f"root {c.root} is not a folder (the data root)")


def bench_address(bench: str) -> tuple[str, int]:
    """``HOST:PORT`` → ``(host, port)``; ``ValueError`` when it is not one."""
    host, sep, port = bench.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bench must be HOST:PORT (port 1-65535), got {bench!r}")
    return host, int(port)


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
