"""The meta-training loop: classifier pretraining, MAML, hardware-aware MAML.

Resumable: the full training state (weights, optimiser, phase and step, best/target bookkeeping
and the length of the JSON-lines log) is written atomically every ``checkpoint_every`` steps and
at every pretraining epoch; every step draws its tasks and noise from generators seeded by
``(seed, phase, step)``, so a run stopped and resumed gives the same result as one that was
never interrupted.
"""

from __future__ import annotations

import copy
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from memlearn.crossbar.mapping import search_full_scale
from memlearn.data import ClassImages, TaskBatch, TaskSampler
from memlearn.data.augment import Affine, with_support_copies
from memlearn.io import atomic_write
from memlearn.meta.baseline import tune_head_lrs
from memlearn.meta.checkpoint import save_checkpoint
from memlearn.meta.classifier import make_classifier
from memlearn.meta.config import TrainConfig
from memlearn.meta.evaluate import evaluate_classes, prototype_accuracy
from memlearn.meta.hardware import LevelProgrammer, TableProgrammer, WeightProgrammer, milo_spread
from memlearn.meta.maml import MetaLearner, adapt
from memlearn.nn import FewShotNet, head_forward

PHASES = ("pretrain", "head", "maml", "hardware")
STATE_FILE = "state.pt"
LOG_FILE = "log.jsonl"
MODEL_FILE = "model.pt"
PLAIN_MODEL_FILE = "model_plain.pt"  # the MAML phase's model when a hardware phase follows
BASELINE_FILE = "baseline.pt"
SUMMARY_FILE = "summary.json"


# Training tasks that calibrate the full-scale weight: with the device's noise in the loop, 64
# tasks (enough for a noise-free grid) leave the search at the mercy of a few draws.
CALIBRATION_TASKS = 256


def step_seed(seed: int, phase: str, step: int) -> int:
    """The seed of one step's task and noise generators."""
    return (int(seed) * 1_000 + PHASES.index(phase)) * 10_000_000 + int(step)


def pick_device(device: str | None = None) -> torch.device:
    """``device`` or CUDA when present, else CPU."""
    if device:
        return torch.device(device)
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


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
    :func:`memlearn.crossbar.mapping.search_full_scale`.  ``weight_max_margin`` scales the
    result (and ``start``, a previous result, is unscaled by it first).

    A noise-free grid is the wrong judge: it rewards the large full scale that keeps small
    updates, blind to the weight error of a misprogrammed cell, which grows with it (with the
    ``accumulate`` rule it chose FC1 0.36, FC2 1.07, with which the chip learned 93.9 % of 1,000
    tasks, against 95.6 % with 0.16, 0.75)."""
    learner.eval()
    queries = min(15, classes.n_per_class - config.shots)
    seed = step_seed(config.seed, "maml", -1)
    within = config.calibration_tasks == "within-alphabet"
    if within:
        classes = classes.unrotated()
    sampler = TaskSampler(
        classes, config.ways, config.shots, queries, seed=seed, within_alphabet=within
    )
    batch = _support_copies(sampler.sample(tasks), config, seed)
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

    def score(full_scales: list[float]) -> float:
        gen = torch.Generator(device=device).manual_seed(seed)
        res = adapt(fs, sy, w1, w2, lrs, config.inner_steps, programmer=programmer,
                    weight_max=(full_scales[0], full_scales[1]), generator=gen)  # fmt: skip
        logits = head_forward(fq, res.fc1[-1].detach(), res.fc2[-1].detach())
        return float((logits.argmax(-1) == qy).float().mean())

    margin = config.weight_max_margin
    best = search_full_scale(
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


def _support_copies(tasks: TaskBatch, config: TrainConfig, seed: int) -> TaskBatch:
    """``tasks`` with ``config.support_copies`` distorted copies of each support image, drawn
    from a generator of their own seeded by ``seed``."""
    if config.support_copies == 0:
        return tasks
    gen = torch.Generator().manual_seed(seed + 1)
    return with_support_copies(tasks, config.support_copies, gen)


def _distort(distort: Affine, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Distort task images ``[T, n, C, H, W]``, each image on its own."""
    return distort(x.flatten(0, 1), generator).view_as(x)


class _Log:
    """Append-only JSON-lines log that can be cut back to a saved length on resume."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def size(self) -> int:
        return self.path.stat().st_size if self.path.exists() else 0

    def truncate(self, size: int) -> None:
        if self.path.exists():
            with open(self.path, "r+b") as fh:
                fh.truncate(size)

    def write(self, record: dict[str, Any]) -> None:
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record) + "\n")


def pretrained(config: TrainConfig) -> bool:
    """Whether the extractor starts from trained weights (then it gets ``extractor_lr``)."""
    return config.pretrain_epochs > 0 or bool(config.init_from)


def _cosine(base: float, step: int, total: int, enabled: bool) -> float:
    if not enabled or total <= 1:
        return base
    return base * 0.5 * (1.0 + math.cos(math.pi * step / total))


def _meta_optimizer(
    learner: MetaLearner, config: TrainConfig, pretrained: bool, phase: str = "maml"
) -> torch.optim.Adam:
    """Adam over the extractor, the head and the learned rates; the hardware phase gets a fresh
    one at ``hardware_lr_scale`` times the rates (it fine-tunes a converged model)."""
    scale = config.hardware_lr_scale if phase == "hardware" else 1.0
    head = list(learner.net.fc1.parameters()) + list(learner.net.fc2.parameters())
    ext_lr = scale * (config.extractor_lr if pretrained else config.outer_lr)
    head_lr, rate_lr = scale * config.outer_lr, scale * config.lr_lr
    groups = [
        {"params": list(learner.net.extractor.parameters()), "lr": ext_lr, "base_lr": ext_lr},
        {"params": head, "lr": head_lr, "base_lr": head_lr},
    ]
    rates = [p for p in (learner.log_lrs, learner.log_temperature) if isinstance(p, nn.Parameter)]
    if rates:
        groups.append({"params": rates, "lr": rate_lr, "base_lr": rate_lr})
    return torch.optim.Adam(groups)


def _save_model(
    path: Path,
    learner: MetaLearner,
    config: TrainConfig,
    state: dict[str, Any],
    val: ClassImages,
    command: str,
    hardware_aware: bool,
) -> None:
    net = copy.deepcopy(learner.net).cpu()
    save_checkpoint(
        path,
        net,
        learner.inner_lrs().detach().cpu(),
        weight_max=state["weight_max"],
        hardware_aware=hardware_aware,
        device=device_info(config) if hardware_aware else {},
        metrics={"val": dict(state["last_val"]), "val_split": val.split},
        command=command,
        training={
            "config": config.to_dict(),
            "elapsed_s": state["elapsed_s"],
            "time_to_target_s": state["time_to_target_s"],
        },
    )


def meta_train(
    config: TrainConfig,
    train: ClassImages,
    val: ClassImages,
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    command: str = "",
    device: str | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the three phases; write ``model.pt``, ``baseline.pt``, ``log.jsonl``,
    ``summary.json`` under ``out_dir`` and return the summary.

    ``stop_after``: stop (with the state saved) after that many optimisation steps of this call,
    as a kill would; a later call with ``resume=True`` continues exactly.
    """
    config.validate()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dev = pick_device(device)
    if config.ways > val.n_classes or config.ways > train.n_classes:
        raise ValueError(
            f"ways={config.ways} needs at least that many classes; train has {train.n_classes}, "
            f"val {val.n_classes}"
        )
    train_d, val_d = train.to(dev), val.to(dev)
    log = _Log(out / LOG_FILE)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
        torch.manual_seed(config.seed)
        net = FewShotNet(
            config.ways, config.widths, config.hidden, normalize=config.normalize,
            pooling=config.pooling,
        ).to(dev)  # fmt: skip
        n_out = config.hidden if config.pretrain_head == "fc1" else net.extractor.features
        classifier = make_classifier(config.pretrain_classifier, n_out, train.n_classes).to(dev)
    learner = MetaLearner(
        net,
        tuple(config.inner_lr_init),
        config.learn_inner_lrs,
        config.learn_temperature,
        per_step=config.inner_steps if config.per_step_lrs and config.inner_steps > 0 else None,
        intermediate_loss=config.intermediate_loss,
    ).to(dev)
    if config.init_from:
        from memlearn.meta.checkpoint import load_checkpoint

        init_net, _ = load_checkpoint(config.init_from)
        shape_keys = ("ways", "widths", "hidden", "in_channels", "image_size")
        if any(init_net.config[k] != net.config[k] for k in shape_keys):
            raise ValueError(
                f"init_from {config.init_from}: network {init_net.config} differs from the "
                f"config's {net.config}"
            )
        net.load_state_dict(init_net.state_dict())
    fc1_pretrained = config.pretrain_head == "fc1"
    pre_opt = torch.optim.Adam(
        list(net.parameters()) + list(classifier.parameters()), lr=config.pretrain_lr
    )
    state: dict[str, Any] = {
        "phase": "pretrain",
        "step": 0,
        "elapsed_s": 0.0,
        "time_to_target_s": None,
        "weight_max": None,
        "baseline_lrs": None,
        "last_val": {},
    }
    meta_opt: torch.optim.Adam | None = None
    state_path = out / STATE_FILE
    if resume and state_path.exists():
        blob = torch.load(state_path, map_location=dev, weights_only=True)
        # Options added since the state was saved take their defaults, which keep the former
        # behaviour; any other difference is a different run.
        stored, current = {**TrainConfig().to_dict(), **blob["config"]}, config.to_dict()
        if stored != current:
            changed = sorted(
                k for k in stored.keys() | current.keys() if stored.get(k) != current.get(k)
            )
            raise ValueError(
                f"--resume: the config differs from the one {state_path} was trained with "
                f"(options: {', '.join(changed)})"
            )
        learner.load_state_dict(blob["learner"])
        classifier.load_state_dict(blob["classifier"])
        pre_opt.load_state_dict(blob["pre_opt"])
        state = blob["state"]
        if blob["meta_opt"] is not None:
            meta_opt = _meta_optimizer(learner, config, pretrained(config))
            meta_opt.load_state_dict(blob["meta_opt"])
        log.truncate(blob["log_size"])
    elif resume:
        raise FileNotFoundError(f"--resume: no training state at {state_path}")
    else:
        log.truncate(0)
        log.write({"event": "start", "config": config.to_dict(), "device": str(dev)})

    def save_state() -> None:
        blob = {
            "config": config.to_dict(),
            "learner": learner.state_dict(),
            "classifier": classifier.state_dict(),
            "pre_opt": pre_opt.state_dict(),
            "meta_opt": None if meta_opt is None else meta_opt.state_dict(),
            "state": state,
            "log_size": log.size(),
        }
        with atomic_write(state_path, "wb") as fh:
            torch.save(blob, fh)

    def emit(record: dict[str, Any]) -> None:
        log.write(record)
        if on_event is not None:
            on_event(record)

    budget = [stop_after]
    t_start = time.perf_counter() - state["elapsed_s"]

    def tick() -> bool:
        """Count one step; True when the call must stop now."""
        state["elapsed_s"] = time.perf_counter() - t_start
        if budget[0] is None:
            return False
        budget[0] -= 1
        return budget[0] <= 0

    val_sampler_seed = step_seed(config.seed, "maml", -2)
    val_tasks = TaskSampler(
        val_d,
        config.ways,
        config.shots,
        min(15, val.n_per_class - config.shots),
        seed=val_sampler_seed,
    ).sample(config.val_tasks)
    # validation adapts as the chip does, on the support images and their distorted copies
    adapt_val_tasks = _support_copies(val_tasks, config, val_sampler_seed)

    def validate(programmer: WeightProgrammer | None = None) -> float:
        acc = evaluate_classes(
            learner.net,
            learner.inner_lrs().detach(),
            adapt_val_tasks,
            config.inner_steps,
            programmer=programmer,
            weight_max=state["weight_max"],
            generator=torch.Generator(device=dev).manual_seed(val_sampler_seed),
        )["accuracy_by_step"]
        learner.train()
        return acc[-1]

    # ---- phase 1: classifier pretraining (also the baseline) ----
    if state["phase"] == "pretrain" and config.init_from:
        state["phase"], state["step"] = "head", 0
    distort = Affine() if config.augment else None
    if state["phase"] == "pretrain":
        images = train_d.images.flatten(0, 1)
        labels = torch.arange(train.n_classes, device=dev).repeat_interleave(train.n_per_class)
        epochs = range(state["step"], config.pretrain_epochs)
        for epoch in tqdm(
            epochs,
            desc="pretrain",
            disable=not progress,
            initial=state["step"],
            total=config.pretrain_epochs,
        ):
            net.train()
            gen = torch.Generator().manual_seed(step_seed(config.seed, "pretrain", epoch))
            perm = torch.randperm(images.shape[0], generator=gen).to(dev)
            total = correct = 0
            loss_sum = 0.0
            per_epoch = math.ceil(images.shape[0] / config.pretrain_batch)
            for j, i in enumerate(range(0, images.shape[0], config.pretrain_batch)):
                it = epoch * per_epoch + j
                for group in pre_opt.param_groups:
                    group["lr"] = _cosine(
                        config.pretrain_lr, it, config.pretrain_epochs * per_epoch,
                        config.cosine_decay,
                    )  # fmt: skip
                idx = perm[i : i + config.pretrain_batch]
                batch = images[idx] if distort is None else distort(images[idx], gen)
                feats = net.features(batch)
                logits = classifier(torch.relu(net.fc1(feats)) if fc1_pretrained else feats)
                loss = F.cross_entropy(logits, labels[idx])
                pre_opt.zero_grad(set_to_none=True)
                loss.backward()
                pre_opt.step()
                correct += int((logits.argmax(1) == labels[idx]).sum())
                total += len(idx)
                loss_sum += float(loss.detach()) * len(idx)
            state["step"] = epoch + 1
            stop = tick()
            # How well the pretrained layer that FC2 reads separates held-out classes.
            probe = prototype_accuracy(net, val_tasks, hidden=fc1_pretrained)
            net.train()
            emit(
                {
                    "event": "pretrain",
                    "epoch": epoch + 1,
                    "loss": loss_sum / total,
                    "accuracy": correct / total,
                    "val_prototype_accuracy": probe,
                    "elapsed_s": state["elapsed_s"],
                }
            )
            if progress:
                tqdm.write(
                    f"[pretrain {epoch + 1}/{config.pretrain_epochs}] loss "
                    f"{loss_sum / total:.3f}, val prototype accuracy {probe:.4f}"
                )
            save_state()
            if stop:
                return {"stopped": True, **state}
        # The baseline: pretrained extractor and FC1, a zero 5-way FC2, head fine-tuning.
        with torch.no_grad():
            net.fc2.weight.zero_()
        if config.pretrain_epochs > 0:
            lrs, acc = tune_head_lrs(
                net,
                train_d,
                ways=config.ways,
                shots=config.shots,
                steps=config.inner_steps,
                tasks=config.baseline_tune_tasks,
                seed=step_seed(config.seed, "pretrain", -1),
            )
            state["baseline_lrs"] = lrs
            if config.inner_lr_from_baseline:  # MAML starts from the tuned fine-tuning rates
                with torch.no_grad():
                    learner.log_lrs.copy_(torch.tensor(lrs, device=dev).log())
            save_checkpoint(
                out / BASELINE_FILE,
                copy.deepcopy(net).cpu(),
                lrs,
                metrics={"train_tasks_accuracy": acc},
                command=command,
                training={
                    "baseline": "pretrained classifier, head fine-tuned on the support set",
                    "config": config.to_dict(),
                    "elapsed_s": state["elapsed_s"],
                },
            )
            emit({"event": "baseline", "inner_lrs": lrs, "train_tasks_accuracy": acc})
        state["phase"], state["step"] = "head", 0
        meta_opt = _meta_optimizer(learner, config, pretrained(config))
        save_state()

    # ---- phases 2-4: head-only MAML on cached features, MAML, hardware-aware MAML ----
    lengths = {
        "head": config.head_steps,
        "maml": config.meta_steps,
        "hardware": config.hardware_steps,
    }
    for phase, next_phase in (("head", "maml"), ("maml", "hardware"), ("hardware", "done")):
        if state["phase"] != phase:
            continue
        total = lengths[phase]
        programmer: WeightProgrammer | None = None
        if phase == "hardware" and total > 0:
            programmer = hardware_programmer(config)
        if meta_opt is None:
            meta_opt = _meta_optimizer(learner, config, pretrained(config), phase)
        cached = cached_features(learner.net, train_d) if phase == "head" and total > 0 else None
        bar = tqdm(total=total, initial=state["step"], desc=phase, disable=not progress)
        learner.train()
        while state["step"] < total:
            k = state["step"]
            for group in meta_opt.param_groups:
                group["lr"] = _cosine(group["base_lr"], k, total, config.cosine_decay)
            seed = step_seed(config.seed, phase, k)
            source = train_d if cached is None else cached
            n_tasks = config.meta_batch if cached is None else config.head_batch
            tasks = TaskSampler(source, config.ways, config.shots, config.queries, seed=seed)
            tasks = tasks.sample(n_tasks)
            if distort is not None and cached is None:
                aug_gen = torch.Generator().manual_seed(seed)
                tasks = replace(
                    tasks,
                    support_x=_distort(distort, tasks.support_x, aug_gen),
                    query_x=_distort(distort, tasks.query_x, aug_gen),
                )
            if cached is None:
                tasks = _support_copies(tasks, config, seed)
            gen = torch.Generator(device=dev).manual_seed(seed)
            episode = learner.episode if cached is None else learner.head_episode
            loss, acc = episode(
                tasks.support_x,
                tasks.support_y,
                tasks.query_x,
                tasks.query_y,
                config.inner_steps,
                second_order=config.second_order,
                programmer=programmer,
                weight_max=state["weight_max"],
                generator=gen,
            )
            meta_opt.zero_grad(set_to_none=True)
            loss.backward()
            meta_opt.step()
            state["step"] = k + 1
            stop = tick()
            record = {
                "event": phase,
                "step": k + 1,
                "loss": float(loss.detach()),
                "accuracy": float(acc.mean()),
                "inner_lrs": learner.inner_lrs().tolist(),
                "temperature": float(learner.log_temperature.detach().exp()),
                "elapsed_s": state["elapsed_s"],
            }
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss.detach()):.3f}", acc=f"{float(acc.mean()):.3f}")
            if (k + 1) % config.val_every == 0 or k + 1 == total:
                record["val_accuracy"] = validate()
                if programmer is not None:
                    record["val_accuracy_hardware"] = validate(programmer)
                state["last_val"] = {k2: v for k2, v in record.items() if k2.startswith("val_")}
                if (
                    state["time_to_target_s"] is None
                    and record["val_accuracy"] >= config.val_target
                ):
                    state["time_to_target_s"] = state["elapsed_s"]
                if progress:
                    bar.write(
                        f"[{phase} {k + 1}/{total}] val accuracy "
                        + ", ".join(f"{a}={b:.4f}" for a, b in state["last_val"].items())
                    )
            emit(record)
            if (k + 1) % config.checkpoint_every == 0 or k + 1 == total or stop:
                save_state()
            if stop:
                bar.close()
                return {"stopped": True, **state}
        bar.close()
        if phase == "maml" and state["weight_max"] is None:
            state["weight_max"] = calibrate_weight_max(learner, train_d, config, dev)
            emit({"event": "calibrate", "weight_max": state["weight_max"]})
        if phase == "hardware" and total > 0:  # the head moved: search again from the scale used
            state["weight_max"] = calibrate_weight_max(
                learner, train_d, config, dev, start=state["weight_max"]
            )
            emit({"event": "calibrate", "weight_max": state["weight_max"]})
        if phase == "maml" and config.hardware_steps > 0:
            _save_model(out / PLAIN_MODEL_FILE, learner, config, state, val, command, False)
        state["phase"], state["step"] = next_phase, 0
        if next_phase == "hardware":
            meta_opt = None  # the hardware phase builds its own (see _meta_optimizer)
        save_state()

    hardware_aware = config.hardware_steps > 0
    summary = {
        "stopped": False,
        "elapsed_s": state["elapsed_s"],
        "time_to_target_s": state["time_to_target_s"],
        "val_target": config.val_target,
        "last_val": state["last_val"],
        "inner_lrs": learner.inner_lrs().tolist(),
        "weight_max": state["weight_max"],
        "hardware_aware": hardware_aware,
        "device": str(dev),
    }
    _save_model(out / MODEL_FILE, learner, config, state, val, command, hardware_aware)
    emit({"event": "done", **summary})
    with atomic_write(out / SUMMARY_FILE, "w") as fh:
        json.dump(summary, fh, indent=2)
        fh.write("\n")
    return summary
