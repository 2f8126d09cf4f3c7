"""The phases of a meta-training run, each working on a :class:`~memlearn.meta.state.Training`:
classifier pretraining and the baseline, head-only MAML on cached features, MAML, hardware-aware
MAML, the curve phase (the inner rates re-learned on cached features for a rising learning
curve), and the calibration and saving that close them.

Each phase function returns True when the call must stop (its step budget is spent), with the
state saved, as a kill would leave it.
"""

from __future__ import annotations

import copy
import math
from dataclasses import replace

import torch
import torch.nn.functional as F
from tqdm import tqdm

from memlearn.data import ClassImages, TaskSampler
from memlearn.data.augment import Affine
from memlearn.meta.baseline import tune_head_lrs
from memlearn.meta.calibration import (
    cached_features,
    calibrate_weight_max,
    device_info,
    distort_tasks,
    support_copies,
)
from memlearn.meta.checkpoint import load_checkpoint, save_checkpoint
from memlearn.meta.evaluate import curve_dips, prototype_accuracy, task_features
from memlearn.meta.hardware import ClipAwareProgrammer, WeightProgrammer
from memlearn.meta.inner import HeadTasks
from memlearn.meta.rundir import BASELINE_FILE, PLAIN_MODEL_FILE
from memlearn.meta.state import Training, cosine, meta_optimizer, pretrained, step_seed
from memlearn.stats import ci95

# The phases after pretraining, each with the one that follows it.
META_PHASES = (("head", "maml"), ("maml", "hardware"), ("hardware", "curve"), ("curve", "done"))
# Phases whose steps adapt the head on cached features of the frozen extractor.
CACHED_PHASES = ("head", "curve")


def _distortion(tr: Training) -> Affine | None:
    return Affine() if tr.config.augment else None


def _pretrain_epoch(
    tr: Training, epoch: int, images: torch.Tensor, labels: torch.Tensor
) -> tuple[float, int, int]:
    """One epoch of classification → (summed loss, correct, images seen)."""
    config, net, distort = tr.config, tr.learner.net, _distortion(tr)
    net.train()
    gen = torch.Generator().manual_seed(step_seed(config.seed, "pretrain", epoch))
    perm = torch.randperm(images.shape[0], generator=gen).to(tr.device)
    total = correct = 0
    loss_sum = 0.0
    per_epoch = math.ceil(images.shape[0] / config.pretrain_batch)
    for j, i in enumerate(range(0, images.shape[0], config.pretrain_batch)):
        it = epoch * per_epoch + j
        for group in tr.pre_opt.param_groups:
            group["lr"] = cosine(
                config.pretrain_lr, it, config.pretrain_epochs * per_epoch, config.cosine_decay
            )
        idx = perm[i : i + config.pretrain_batch]
        batch = images[idx] if distort is None else distort(images[idx], gen)
        feats = net.features(batch)
        hidden = torch.relu(net.fc1(feats)) if config.pretrain_head == "fc1" else feats
        logits = tr.classifier(hidden)
        loss = F.cross_entropy(logits, labels[idx])
        tr.pre_opt.zero_grad(set_to_none=True)
        loss.backward()
        tr.pre_opt.step()
        correct += int((logits.argmax(1) == labels[idx]).sum())
        total += len(idx)
        loss_sum += float(loss.detach()) * len(idx)
    return loss_sum, correct, total


def pretrain(tr: Training) -> bool:
    """Phase 1: classifier pretraining (also the baseline); then the head phase's optimiser."""
    config, prog, train = tr.config, tr.progress, tr.train
    images = train.images.flatten(0, 1)
    labels = torch.arange(train.n_classes, device=tr.device).repeat_interleave(train.n_per_class)
    epochs = range(prog.step, config.pretrain_epochs)
    for epoch in tqdm(epochs, desc="pretrain", disable=not tr.show_progress, initial=prog.step,
                      total=config.pretrain_epochs):  # fmt: skip
        loss_sum, correct, total = _pretrain_epoch(tr, epoch, images, labels)
        prog.step = epoch + 1
        stop = tr.tick()
        # How well the pretrained layer that FC2 reads separates held-out classes.
        fc1 = config.pretrain_head == "fc1"
        probe = prototype_accuracy(tr.learner.net, tr.validation.tasks, hidden=fc1)
        tr.learner.net.train()
        tr.emit({"event": "pretrain", "epoch": epoch + 1, "loss": loss_sum / total,
                 "accuracy": correct / total, "val_prototype_accuracy": probe,
                 "elapsed_s": prog.elapsed_s})  # fmt: skip
        if tr.show_progress:
            tqdm.write(
                f"[pretrain {epoch + 1}/{config.pretrain_epochs}] loss "
                f"{loss_sum / total:.3f}, val prototype accuracy {probe:.4f}"
            )
        tr.save()
        if stop:
            return True
    _baseline(tr)
    prog.phase, prog.step = "head", 0
    tr.meta_opt = meta_optimizer(tr.learner, config, pretrained(config))
    tr.save()
    return False


def _baseline(tr: Training) -> None:
    """The baseline: pretrained extractor and FC1, a zero 5-way FC2, head fine-tuning."""
    config, net = tr.config, tr.learner.net
    with torch.no_grad():
        net.fc2.weight.zero_()
    if config.pretrain_epochs == 0:
        return
    lrs, acc = tune_head_lrs(
        net, tr.train, ways=config.ways, shots=config.shots, steps=config.inner_steps,
        tasks=config.baseline_tune_tasks, seed=step_seed(config.seed, "pretrain", -1),
    )  # fmt: skip
    tr.progress.baseline_lrs = lrs
    if config.inner_lr_from_baseline:  # MAML starts from the tuned fine-tuning rates
        with torch.no_grad():
            tr.learner.log_lrs.copy_(torch.tensor(lrs, device=tr.device).log())
    save_checkpoint(
        tr.out / BASELINE_FILE,
        copy.deepcopy(net).cpu(),
        lrs,
        metrics={"train_tasks_accuracy": acc},
        command=tr.command,
        training={
            "baseline": "pretrained classifier, head fine-tuned on the support set",
            "config": config.to_dict(),
            "elapsed_s": tr.progress.elapsed_s,
        },
    )
    tr.emit({"event": "baseline", "inner_lrs": lrs, "train_tasks_accuracy": acc})


def _meta_step(
    tr: Training,
    phase: str,
    k: int,
    cached: ClassImages | None,
    programmer: WeightProgrammer | None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One outer step of ``phase`` → (loss, per-task accuracy)."""
    config = tr.config
    for group in tr.meta_opt.param_groups:
        group["lr"] = cosine(group["base_lr"], k, _length(tr, phase), config.cosine_decay)
    seed = step_seed(config.seed, phase, k)
    source = tr.train if cached is None else cached
    n_tasks = config.meta_batch if cached is None else config.head_batch
    within = phase == "curve" and config.curve_tasks == "within-alphabet"
    tasks = TaskSampler(
        source, config.ways, config.shots, config.queries, seed=seed, within_alphabet=within
    )
    tasks = tasks.sample(n_tasks)
    distort = _distortion(tr)
    if distort is not None and cached is None:
        aug_gen = torch.Generator().manual_seed(seed)
        tasks = replace(
            tasks,
            support_x=distort_tasks(distort, tasks.support_x, aug_gen),
            query_x=distort_tasks(distort, tasks.query_x, aug_gen),
        )
    if cached is None:
        tasks = support_copies(tasks, config, seed)
    gen = torch.Generator(device=tr.device).manual_seed(seed)
    episode = tr.learner.episode if cached is None else tr.learner.head_episode
    loss, acc = episode(
        tasks.support_x, tasks.support_y, tasks.query_x, tasks.query_y, config.inner_steps,
        second_order=config.second_order, programmer=programmer,
        weight_max=tr.progress.weight_max, generator=gen,
    )  # fmt: skip
    tr.meta_opt.zero_grad(set_to_none=True)
    loss.backward()
    tr.meta_opt.step()
    return loss, acc


def _length(tr: Training, phase: str) -> int:
    config = tr.config
    return {"head": config.head_steps, "maml": config.meta_steps,
            "hardware": config.hardware_steps, "curve": config.curve_steps}[phase]  # fmt: skip


def _curve_into(
    tr: Training, record: dict, programmer: WeightProgrammer | None, features: HeadTasks
) -> None:
    """Add the curve phase's validation to ``record``: the accuracy after each update (in
    software, and on the levels with a ``programmer``) and the updates that undo the one
    before (:func:`~memlearn.meta.evaluate.curve_dips`, each update's 95 % CI)."""
    runs = {"": None} if programmer is None else {"": None, "_hardware": programmer}
    for suffix, prog in runs.items():
        per_task = tr.validate_features(features, prog)
        curve = per_task.mean(1).tolist()
        record[f"val_accuracy{suffix}"] = curve[-1]
        record[f"val_accuracy{suffix}_by_step"] = curve
        record[f"val_dips{suffix}"] = curve_dips(curve, [ci95(a) for a in per_task])


def _validate_into(
    tr: Training,
    record: dict,
    programmer: WeightProgrammer | None,
    bar: tqdm,
    features: HeadTasks | None = None,
) -> None:
    """Add the validation accuracies to ``record``; note when the target is first reached
    (``features``: the validation tasks' features, when the extractor is frozen)."""
    prog = tr.progress
    if record["event"] == "curve":  # the phase that shapes the curve logs all of it
        _curve_into(tr, record, programmer, features)
    else:
        record["val_accuracy"] = tr.validate_curve(features=features)[-1]
        if programmer is not None:
            record["val_accuracy_hardware"] = tr.validate_curve(programmer, features)[-1]
    prog.last_val = {k: v for k, v in record.items() if k.startswith("val_")}
    if prog.time_to_target_s is None and record["val_accuracy"] >= tr.config.val_target:
        prog.time_to_target_s = prog.elapsed_s
    if tr.show_progress:
        bar.write(
            f"[{record['event']} {record['step']}/{_length(tr, record['event'])}] val accuracy "
            + ", ".join(f"{a}={b:.4f}" for a, b in prog.last_val.items() if not isinstance(b, list))
        )


def meta_phase(tr: Training, phase: str) -> bool:
    """Phases 2-5: ``head`` (MAML on cached features), ``maml``, ``hardware`` (the programmer
    in the inner loop), ``curve`` (the rates on cached features, the earlier steps' losses
    weighted by ``curve_loss``; the programmer in the inner loop with ``curve_device``), from
    the saved step to the phase's length."""
    config = tr.config
    total = _length(tr, phase)
    if tr.meta_opt is None:
        tr.meta_opt = meta_optimizer(tr.learner, config, pretrained(config), phase)
    if total == 0:
        return False
    weight = tr.learner.intermediate_loss
    if phase == "curve":
        tr.learner.intermediate_loss = config.curve_loss
    try:
        return _steps(tr, phase, total)
    finally:
        tr.learner.intermediate_loss = weight


def _steps(tr: Training, phase: str, total: int) -> bool:
    """The steps of ``meta_phase``; True when the call must stop."""
    config, prog = tr.config, tr.progress
    on_device = phase == "hardware" or (phase == "curve" and config.curve_device)
    if on_device and prog.weight_max is None:
        raise ValueError(
            f"the {phase} phase programs the device levels: it needs calibrated full-scale "
            "weights (a checkpoint with weight_max, or the MAML phase before it)"
        )
    programmer = tr.programmer if on_device else None
    if phase == "curve" and on_device:  # rates only: no gradient through clipped weights
        programmer = ClipAwareProgrammer(tr.programmer)
    # validation on the levels too when the model is deployed on them
    val_programmer = tr.programmer if on_device else None
    deployed = config.hardware_steps > 0 or config.curve_device
    if phase == "curve" and deployed and prog.weight_max is not None:
        val_programmer = tr.programmer
    cached = None
    if phase in CACHED_PHASES:  # within-alphabet tasks: the classes as drawn
        within = phase == "curve" and config.curve_tasks == "within-alphabet"
        cached = cached_features(tr.learner.net, tr.train.unrotated() if within else tr.train)
    # the curve phase moves no weight: its validation tasks' features are computed once
    features = (
        task_features(tr.learner.net, tr.validation.adapt_tasks) if phase == "curve" else None
    )
    bar = tqdm(total=total, initial=prog.step, desc=phase, disable=not tr.show_progress)
    tr.learner.train()
    while prog.step < total:
        k = prog.step
        loss, acc = _meta_step(tr, phase, k, cached, programmer)
        prog.step = k + 1
        stop = tr.tick()
        record = {
            "event": phase,
            "step": k + 1,
            "loss": float(loss.detach()),
            "accuracy": float(acc.mean()),
            "inner_lrs": tr.learner.inner_lrs().tolist(),
            "temperature": float(tr.learner.log_temperature.detach().exp()),
            "elapsed_s": prog.elapsed_s,
        }
        bar.update(1)
        bar.set_postfix(loss=f"{float(loss.detach()):.3f}", acc=f"{float(acc.mean()):.3f}")
        if (k + 1) % config.val_every == 0 or k + 1 == total:
            _validate_into(tr, record, val_programmer, bar, features)
        tr.emit(record)
        if (k + 1) % config.checkpoint_every == 0 or k + 1 == total or stop:
            tr.save()
        if stop:
            bar.close()
            return True
    bar.close()
    return False


def end_phase(tr: Training, phase: str, next_phase: str) -> None:
    """Close ``phase``: calibrate the full-scale weight after MAML (and again after the hardware
    phase and a curve phase in software, from the scale it used), keep the MAML model when a
    hardware phase follows."""
    config, prog = tr.config, tr.progress
    if phase == "maml" and prog.weight_max is None:
        prog.weight_max = calibrate_weight_max(
            tr.learner, tr.train, config, tr.device, programmer=tr.programmer
        )
        tr.emit({"event": "calibrate", "weight_max": prog.weight_max})
    moved = {"hardware": config.hardware_steps, "curve": config.curve_steps}.get(phase, 0) > 0
    # a curve phase on the device learned its rates for the full scale it used: kept
    moved = moved and not (phase == "curve" and config.curve_device)
    if moved and prog.weight_max is not None:  # the head or its rates moved: search again
        prog.weight_max = calibrate_weight_max(
            tr.learner, tr.train, config, tr.device, start=prog.weight_max,
            programmer=tr.programmer,
        )  # fmt: skip
        tr.emit({"event": "calibrate", "weight_max": prog.weight_max})
    if phase == "maml" and config.hardware_steps > 0:
        save_model(tr, tr.out / PLAIN_MODEL_FILE, hardware_aware=False)
    prog.phase, prog.step = next_phase, 0
    if next_phase != "maml":
        tr.meta_opt = None  # the hardware and curve phases build their own (see meta_optimizer)
    tr.save()


def _origin(path: str | None) -> dict:
    """What a checkpoint a run started from says of its own making (path and command)."""
    if not path:
        return {}
    info = load_checkpoint(path)[1]
    return {"init_from": {"path": str(path), "command": info["command"],
                          "elapsed_s": info["training"].get("elapsed_s")}}  # fmt: skip


def save_model(tr: Training, path, hardware_aware: bool) -> None:
    """Save the learner's network and rates as a checkpoint at ``path``."""
    prog = tr.progress
    save_checkpoint(
        path,
        copy.deepcopy(tr.learner.net).cpu(),
        tr.learner.inner_lrs().detach().cpu(),
        weight_max=prog.weight_max,
        hardware_aware=hardware_aware,
        device=device_info(tr.config) if hardware_aware else {},
        metrics={"val": dict(prog.last_val), "val_split": tr.val_split},
        command=tr.command,
        training={
            "config": tr.config.to_dict(),
            "elapsed_s": prog.elapsed_s,
            "time_to_target_s": prog.time_to_target_s,
            **_origin(tr.config.init_from),
        },
    )
