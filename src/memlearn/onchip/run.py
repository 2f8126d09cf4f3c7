"""From a few-shot network and a batch of tasks to on-chip and ideal-software learning curves.

:func:`head_weights` takes the FC weights in array orientation; :func:`run_adaptation` adapts
the tasks (as features: :mod:`memlearn.onchip.features`) on a chip with
:func:`memlearn.onchip.loop.adapt_on_chip` and, in the same run, in ideal float
(:func:`memlearn.onchip.head.software_adapt`); :func:`summarise` gives the figures of
``memlearn adapt --json``.  :func:`head_layout`, :func:`deployed_levels`, :func:`with_copies`
and :func:`resolve_weight_max` are the pieces :mod:`memlearn.onchip.deploy` sets up every
deployment with.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import nn

from memlearn.chip.base import ArraySpec, Chip, ChipLayout
from memlearn.crossbar.system_energy import Activity, system_energy
from memlearn.data.augment import with_support_copies
from memlearn.data.sampler import TaskBatch
from memlearn.devices.preset import DevicePreset, load_preset
from memlearn.meta.hardware import update_rule_name
from memlearn.meta.inner import HeadTasks
from memlearn.nn.rates import Rates, stored_rates
from memlearn.onchip import head
from memlearn.onchip.calibration import device_level_samples, weight_max_for
from memlearn.onchip.config import AdaptConfig
from memlearn.onchip.features import head_tasks
from memlearn.onchip.features import task_features as task_features  # re-exported
from memlearn.onchip.loop import AdaptResult, adapt_on_chip
from memlearn.onchip.policies import DEFAULT_POLICY
from memlearn.stats import ci95

DEFAULT_LEVELS = 8  # [E] a 3-bit cell, inside the 4-9 levels of Esmanhotto et al., IEDM 2020 [P]
MAX_SUPPORT_COPIES = 64  # bounds the support passes per update (each copy is one more image)
QUERIES = 15  # query images per class, as in MAML's Omniglot protocol (Finn et al., 2017)


def head_weights(net: nn.Module) -> list[torch.Tensor]:
    """The FC weights in array orientation ``[inputs, outputs]``: ``fc1.weightᵀ, fc2.weightᵀ``."""
    return [net.fc1.weight.detach().T.contiguous(), net.fc2.weight.detach().T.contiguous()]


def inner_lrs_from(info: Mapping[str, Any], layers: int = 2) -> list[float] | list[list[float]]:
    """Inner learning rates of a checkpoint's ``info["inner_lrs"]``.

    Accepts a list/tuple (one per FC layer, in order), a list of such lists (one per update: a
    per-step schedule, returned as it is), a mapping ``{"fc1": .., "fc2": ..}`` or a single
    number (shared).
    """
    lrs = info.get("inner_lrs")
    if lrs is None:
        raise ValueError("the checkpoint has no 'inner_lrs': cannot match the software inner loop")
    if isinstance(lrs, (int, float)):
        lrs = [float(lrs)] * layers
    elif isinstance(lrs, Mapping):
        try:
            lrs = [float(lrs[f"fc{i + 1}"]) for i in range(layers)]
        except KeyError as exc:
            raise ValueError(f"inner_lrs {dict(lrs)} lacks {exc}") from exc
    elif not isinstance(lrs, Sequence):
        raise ValueError(f"inner_lrs must be a number, list or mapping, got {type(lrs).__name__}")
    return stored_rates(lrs, layers)


def run_adaptation(
    chip: Chip,
    net: nn.Module,
    inner_lrs: Rates,
    tasks: Any,
    config: AdaptConfig | None = None,
    progress: Callable[[int], object] | None = None,
) -> AdaptResult:
    """Adapt ``tasks`` (a TaskBatch: ``support_x/y``, ``query_x/y``, or their features as
    :class:`~memlearn.meta.inner.HeadTasks`) on ``chip`` and in software (``progress``: see
    :func:`~memlearn.onchip.loop.adapt_on_chip`)."""
    config = config or AdaptConfig()
    feats = tasks if isinstance(tasks, HeadTasks) else head_tasks(net, tasks)
    weights = head_weights(net)
    result = adapt_on_chip(chip, feats, weights, inner_lrs, config, progress)
    preset = next((getattr(c, "preset", None) for c in (chip, getattr(chip, "chip", None))
                   if isinstance(getattr(c, "preset", None), DevicePreset)), None)  # fmt: skip
    result.extra.setdefault("preset", preset)  # a simulated chip's, repaired or not
    result.software_accuracy, result.software_loss = head.software_adapt(
        feats, weights, inner_lrs, config.steps
    )
    return result


def calibrate_weight_max(
    net: nn.Module,
    inner_lrs: Rates,
    tasks: Any,
    steps: int,
    levels: torch.Tensor,
    **options: Any,
) -> list[float]:
    """Full-scale weight per FC layer, calibrated on ``tasks`` (a TaskBatch from the *training*
    alphabets, not the tasks to be learned) with the chip's ``levels`` (S); ``options`` (the
    loop's ``policy``, ``rule``, ``margin``, ``seed``, ``start``, the device's measured
    ``level_samples``) and the rules are those of
    :func:`memlearn.onchip.calibration.weight_max_for`.

    A scale set from the deployed weights alone can clip the adaptation (a meta-learned output
    layer often starts near zero and grows ten-fold in a few steps); one set by the peak of the
    adaptation is too coarse for a few levels.
    """
    return weight_max_for(
        head_tasks(net, tasks), head_weights(net), inner_lrs, steps, levels, **options
    )


WEIGHT_MAX_SOURCES = ("auto", "checkpoint", "accuracy", "peak")


def calibration_tasks(
    ways: int,
    shots: int,
    *,
    seed: int = 0,
    tasks: int | None = None,
    root: Any = None,
    support_copies: int = 0,
) -> TaskBatch:
    """The tasks that calibrate a full-scale weight: ``ways``-way ``shots``-shot tasks of the
    *training* alphabets (never the tasks to be learned), each drawn within one alphabet, with
    ``support_copies`` distorted copies of each support image as the adaptation will have
    (:func:`with_copies`).

    The network has learned the training classes: random-class tasks of them are easy and
    leave too few errors to rank full scales by, while within-alphabet tasks rank them as
    held-out tasks do (README, "On-chip adaptation", for the measurements).
    """
    from memlearn.data import TaskSampler, load_split

    classes = load_split("train", root, rotations=False)
    sampler = TaskSampler(
        classes, ways, shots, CALIBRATION_QUERIES, seed=seed, within_alphabet=True
    )
    return with_copies(sampler.sample(CALIBRATION_TASKS if tasks is None else tasks),
                       support_copies, seed)  # fmt: skip


def with_copies(tasks: TaskBatch, support_copies: int, seed: int) -> TaskBatch:
    """``tasks`` whose support sets hold ``support_copies`` distorted copies of each image (the
    computer in the loop makes them before the digital extractor; drawn from a generator seeded
    by ``seed``): see :func:`memlearn.data.augment.with_support_copies`."""
    generator = torch.Generator().manual_seed(seed)
    return with_support_copies(tasks, support_copies, generator)


# Training tasks that calibrate the full-scale weight: with the device's level statistics in
# the loop the score is noisier than on a noise-free chip (hardware-aware training uses 256).
CALIBRATION_TASKS = 256
CALIBRATION_QUERIES = 5  # query images per class of a calibration task


def resolve_weight_max(
    net: nn.Module,
    info: Mapping[str, Any],
    inner_lrs: Rates,
    *,
    steps: int,
    levels: torch.Tensor,
    policy: str,
    ways: int,
    shots: int,
    source: str = "auto",
    root: Any = None,
    seed: int = 0,
    tasks: int = CALIBRATION_TASKS,
    preset: str | None = None,
    strategy: str | None = None,
    support_copies: int = 0,
) -> tuple[list[float], str]:
    """The full-scale weight per FC layer a deployment uses, and where it came from.

    ``source``: ``"checkpoint"`` (the checkpoint's ``weight_max``, the one hardware-aware
    meta-training used), ``"accuracy"`` or ``"peak"`` (calibrated by that rule of
    :func:`calibrate_weight_max` on ``tasks`` ``ways``-way ``shots``-shot tasks of the
    *training* alphabets with ``support_copies`` copies of each support image, seeded by
    ``seed``; the accuracy rule scores on ``preset``'s level
    statistics measured with ``strategy`` when both are given), or ``"auto"``: the
    checkpoint's when hardware-aware training calibrated it for this very deployment
    (``preset``, ``strategy``, number of ``levels`` and update ``policy``), else the accuracy
    rule starting from the checkpoint's ``weight_max`` when it has one (kept unless a candidate
    does better on the calibration tasks).  The checkpoint's value comes first because training
    calibrated it on the device model before the hardware-aware phase, and that phase adapted
    the head to it (README, "On-chip adaptation", for the measurements).
    """
    if source not in WEIGHT_MAX_SOURCES:
        raise ValueError(
            f"unknown weight_max source {source!r}; allowed: {list(WEIGHT_MAX_SOURCES)}"
        )
    stored = [float(w) for w in info.get("weight_max") or []] or None
    if source == "checkpoint":
        if stored is None:
            raise ValueError("the checkpoint has no weight_max; use --weight-max accuracy or peak")
        return stored, "checkpoint"
    if (
        source == "auto"
        and stored is not None
        and calibrated_for(info, preset, strategy, levels, policy)
    ):
        return stored, "checkpoint (calibrated in hardware-aware training for this deployment)"
    rule = "peak" if source == "peak" else "accuracy"
    start = stored if source == "auto" else None
    calib = calibration_tasks(
        ways, shots, seed=seed, tasks=tasks, root=root, support_copies=support_copies
    )
    samples = None
    if rule == "accuracy" and preset is not None and strategy is not None:
        samples = device_level_samples(preset, strategy, levels, seed=seed)
    values = calibrate_weight_max(
        net, inner_lrs, calib, steps, levels, policy=policy, rule=rule, seed=seed, start=start,
        level_samples=samples,
    )  # fmt: skip
    where = f"{rule} rule on {tasks} within-alphabet training tasks"
    if samples is not None:
        where += f" with {preset}/{strategy} level statistics"
    if start is not None:
        where += ", " + ("kept the checkpoint's" if values == start else "from the checkpoint's")
    return values, where


def calibrated_for(
    info: Mapping[str, Any],
    preset: str | None,
    strategy: str | None,
    levels: torch.Tensor,
    policy: str = DEFAULT_POLICY,
) -> bool:
    """Whether the checkpoint was trained hardware-aware on ``preset`` programmed with
    ``strategy`` on ``len(levels)`` levels, updated as the loop's ``policy`` does, so that its
    ``weight_max`` is that deployment's."""
    device = info.get("device") or {}
    return (
        bool(info.get("hardware_aware"))
        and preset is not None
        and device.get("preset") == preset
        and device.get("strategy") == strategy
        and device.get("levels") == int(levels.numel())
        # hardware-aware training simulates the loop's policy of the same name (a checkpoint
        # without one was trained with "stochastic")
        and update_rule_name(device.get("update_rule", "stochastic")) == policy
    )


def head_layout(net: nn.Module) -> ChipLayout:
    """Arrays for the network's head: fc1 (features x hidden), fc2 (hidden x ways)."""
    hidden, features = net.fc1.weight.shape
    ways = net.fc2.weight.shape[0]
    return ChipLayout((ArraySpec("fc1", features, hidden), ArraySpec("fc2", hidden, ways)))


def deployed_levels(info: Mapping[str, Any], levels: int | None = None) -> int:
    """Levels per cell for a deployment: ``levels`` if given, else the checkpoint's training
    levels (``info["device"]["levels"]``), else :data:`DEFAULT_LEVELS`."""
    if levels is not None:
        return int(levels)
    return int((info.get("device") or {}).get("levels", DEFAULT_LEVELS))


def summarise(result: AdaptResult, preset: DevicePreset | str | None = None) -> dict[str, Any]:
    """The aggregate figures of an adaptation run (per-adaptation means over tasks), with the
    system-level energy (:mod:`memlearn.crossbar.system_energy`) when the chip reported its
    latency and the cells' ``preset`` (default: the one :func:`run_adaptation` recorded) is
    known."""
    energy = {k: float(v.sum(dim=1).mean()) for k, v in result.energy_j.items()}
    summary: dict[str, Any] = {
        "accuracy_by_step": [float(a) for a in result.accuracy.mean(dim=0)],
        "accuracy_ci95": ci95(result.accuracy[:, -1]),
        "software_accuracy_by_step": (
            [float(a) for a in result.software_accuracy.mean(dim=0)]
            if result.software_accuracy is not None
            else []
        ),
        "writes_per_adaptation": float(result.cells_written.sum(dim=1).double().mean()),
        "pulses_per_adaptation": float(result.pulses.sum(dim=1).double().mean()),
        "energy_per_adaptation_j": float(sum(energy.values())),
        "energy_breakdown_j": energy,
    }
    preset = preset if preset is not None else result.extra.get("preset")
    latency = {k: float(v.sum(dim=1).mean()) for k, v in result.latency_s.items()}
    if latency:
        summary["latency_per_adaptation_s"] = float(sum(latency.values()))
    if latency and preset is not None:
        summary["system_energy_j"] = system_energy(
            Activity(energy, latency,
                     *(float(c.sum(dim=1).double().mean()) for c in (
                         result.set_pulses, result.reset_pulses, result.verify_reads))),
            load_preset(preset),
        )  # fmt: skip
    if result.accuracy_after_bake is not None:
        summary["accuracy_after_bake"] = float(result.accuracy_after_bake.mean())
    return summary


def deployment_summary(result: AdaptResult) -> dict[str, Any]:
    """Mean energy (J, by category) and cells written of one deployment."""
    energy = {k: float(v.double().mean()) for k, v in result.deploy_energy_j.items()}
    return {
        "energy_j": float(sum(energy.values())),
        "energy_breakdown_j": energy,
        "cells_written": float(result.deploy_cells_written.double().mean()),
    }
