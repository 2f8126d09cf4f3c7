"""The deployment the training run prepares: the hardware phase's programmer, the full-scale
weight calibration, and the inputs both adapt on (cached features, support copies)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import torch

from memlearn.crossbar.mapping import search_weight_max
from memlearn.data import ClassImages, TaskBatch, TaskSampler
from memlearn.data.augment import Affine, with_support_copies
from memlearn.meta.config import TrainConfig
from memlearn.meta.hardware import LevelProgrammer, TableProgrammer, WeightProgrammer, milo_spread
from memlearn.meta.maml import MetaLearner, adapt
from memlearn.meta.state import step_seed
from memlearn.nn import FewShotNet, head_forward

# Training tasks that calibrate the full-scale weight: with the device's noise in the loop, 64
# tasks (enough for a noise-free grid) leave the search at the mercy of a few draws.
CALIBRATION_TASKS = 256


def hardware_programmer(config: TrainConfig) -> LevelProgrammer:
    """The programmer of the hardware-aware phase, from the config's device options."""
    if config.device_preset:
        return TableProgrammer.from_device(
            config.device_preset,
            config.strategy,
            config.levels,
            seed=config.seed,
            rounding=config.update_rule,
        )
    spread = milo_spread if config.program_noise else None
    return LevelProgrammer(
        config.levels, config.g_min, config.g_max, spread, rounding=config.update_rule
    )


def device_info(config: TrainConfig) -> dict[str, Any]:
    """What the hardware-aware phase simulated, for the checkpoint's ``device`` field."""
    if config.device_preset:
        return {
            "programmer": "device-table",
            "preset": config.device_preset,
            "strategy": config.strategy,
            "levels": config.levels,
            "update_rule": config.update_rule,
        }
    return {
        "programmer": "levels",
        "levels": config.levels,
        "update_rule": config.update_rule,
        "g_min_s": config.g_min,
        "g_max_s": config.g_max,
        "spread": "milo" if config.program_noise else "none",
        "spread_source": "[S] CrossSim RRAM_Milo (Milo et al., IRPS 2021)",
    }


@torch.no_grad()
def calibrate_weight_max(
    learner: MetaLearner,
    classes: ClassImages,
    config: TrainConfig,
    device: torch.device,
    tasks: int = CALIBRATION_TASKS,
    start: list[float] | None = None,
    programmer: WeightProgrammer | None = None,
) -> list[float]:
    """Per-layer full-scale weight for the deployment the config describes: the values
    (fractions of the largest ``|w|`` ideal adaptation visits, or ``start``) that maximise the
    query accuracy of ``tasks`` *training* tasks (the kind ``config.calibration_tasks`` names:
    any classes of the split, or the classes of one alphabet, unrotated) adapted with
    ``programmer`` (default: the hardware phase's, :func:`hardware_programmer` — the device's
    measured level statistics, failed cells included, and the config's update rule).  Every
    candidate sees the same random draws, so candidates are compared on the same noise; see
    :func:`memlearn.crossbar.mapping.search_weight_max`.  ``weight_max_margin`` scales the
    result (and ``start``, a previous result, is unscaled by it first).

    A noise-free grid is the wrong judge: it rewards the large full scale that keeps small
    updates, blind to the weight error of a misprogrammed cell, which grows with it (README,
    "On-chip adaptation", for the measurements)."""
    learner.eval()
    queries = min(15, classes.n_per_class - config.shots)
    seed = step_seed(config.seed, "maml", -1)
    within = config.calibration_tasks == "within-alphabet"
    if within:
        classes = classes.unrotated()
    sampler = TaskSampler(
        classes, config.ways, config.shots, queries, seed=seed, within_alphabet=within
    )
    batch = support_copies(sampler.sample(tasks), config, seed)
    images = torch.cat([batch.support_x, batch.query_x], 1).flatten(0, 1)
    feats = _features_in_chunks(learner.net, images)
    feats = feats.view(tasks, -1, feats.shape[-1])
    n_support = batch.support_x.shape[1]
    fs, fq = feats[:, :n_support], feats[:, n_support:]
    sy, qy = batch.support_y.to(device), batch.query_y.to(device)
    lrs = learner.inner_lrs().detach()
    w1 = learner.net.fc1.weight.expand(tasks, -1, -1)
    w2 = learner.net.fc2.weight.expand(tasks, -1, -1)
    ideal = adapt(fs, sy, w1, w2, lrs, config.inner_steps)
    peaks = [
        max(max(float(w.detach().abs().max()) for w in ws), 1e-6) for ws in (ideal.fc1, ideal.fc2)
    ]
    programmer = programmer or hardware_programmer(config)

    def score(candidate: list[float]) -> float:
        gen = torch.Generator(device=device).manual_seed(seed)
        res = adapt(fs, sy, w1, w2, lrs, config.inner_steps, programmer=programmer,
                    weight_max=(candidate[0], candidate[1]), generator=gen)  # fmt: skip
        logits = head_forward(fq, res.fc1[-1].detach(), res.fc2[-1].detach())
        return float((logits.argmax(-1) == qy).float().mean())

    margin = config.weight_max_margin
    best = search_weight_max(
        score, peaks, start=None if start is None else [w / margin for w in start]
    )
    learner.train()
    return [w * margin for w in best]


def _features_in_chunks(net: FewShotNet, images: torch.Tensor, chunk: int = 2048) -> torch.Tensor:
    """Features ``[B, F]`` of images ``[B, C, H, W]``, ``chunk`` images per extractor pass (the
    conv activations of a whole split at once do not fit in memory)."""
    return torch.cat([net.features(part) for part in images.split(chunk)])


@torch.no_grad()
def cached_features(net: FewShotNet, classes: ClassImages, chunk: int = 2048) -> ClassImages:
    """``classes`` with each image replaced by its features ``[F]`` (eval-mode extractor), for
    the head-only phase: the task sampler draws feature vectors as it draws images."""
    was_training = net.training
    net.eval()
    feats = _features_in_chunks(net, classes.images.flatten(0, 1), chunk)
    net.train(was_training)
    return replace(classes, images=feats.view(classes.n_classes, classes.n_per_class, -1))


def support_copies(tasks: TaskBatch, config: TrainConfig, seed: int) -> TaskBatch:
    """``tasks`` with ``config.support_copies`` distorted copies of each support image, drawn
    from a generator of their own seeded by ``seed``."""
    if config.support_copies == 0:
        return tasks
    gen = torch.Generator().manual_seed(seed + 1)
    return with_support_copies(tasks, config.support_copies, gen)


def distort_tasks(distort: Affine, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Distort task images ``[T, n, C, H, W]``, each image on its own."""
    return distort(x.flatten(0, 1), generator).view_as(x)
