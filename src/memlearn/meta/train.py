"""The meta-training run: classifier pretraining, MAML, hardware-aware MAML (see
:mod:`memlearn.meta.phases`), in a run folder (see :mod:`memlearn.meta.rundir`).

Resumable: the full training state (weights, optimisers, phase and step, best/target
bookkeeping and the length of the JSON-lines log it covers, :class:`~memlearn.meta.state.
Training`) is written atomically every ``checkpoint_every`` steps and at every pretraining
epoch; every step draws its tasks and noise from generators seeded by ``(seed, phase, step)``,
so a run stopped and resumed gives the same result as one that was never interrupted.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from memlearn.data import ClassImages, TaskSampler
from memlearn.io import atomic_write
from memlearn.meta.calibration import (
    cached_features,
    calibrate_weight_max,
    hardware_programmer,
    support_copies,
)
from memlearn.meta.checkpoint import load_checkpoint
from memlearn.meta.classifier import make_classifier
from memlearn.meta.config import TrainConfig, current_names
from memlearn.meta.hardware import LevelProgrammer
from memlearn.meta.maml import MetaLearner
from memlearn.meta.phases import META_PHASES, end_phase, meta_phase, pretrain, save_model
from memlearn.meta.rundir import (
    LOG_FILE,
    MODEL_FILE,
    SUMMARY_FILE,
    RunLog,
    check_run_folder,
    clear_run,
    read_state,
)
from memlearn.meta.state import Training, Validation, pick_device, step_seed
from memlearn.nn import FewShotNet
from memlearn.nn.rates import rate_table

__all__ = ["cached_features", "calibrate_weight_max", "check_run", "meta_train"]


def check_run(
    config: TrainConfig,
    out: str | os.PathLike[str],
    *,
    resume: bool = False,
    overwrite: bool = False,
    device: str | None = None,
) -> tuple[torch.device, LevelProgrammer]:
    """Every check that needs no data: the config, the torch ``device``, the run folder (see
    :func:`~memlearn.meta.rundir.check_run_folder`), ``init_from`` and the device options
    (the hardware phase's programmer is built); touches nothing on disk.
    Returns the torch device and the programmer."""
    config.validate()
    dev = pick_device(device)
    check_run_folder(Path(out), resume, overwrite)
    if config.init_from:
        load_checkpoint(config.init_from)
    return dev, hardware_programmer(config)


def _network(
    config: TrainConfig, train: ClassImages, dev: torch.device
) -> tuple[MetaLearner, torch.nn.Module]:
    """The seeded initial network and learner (the global RNG is left untouched)."""
    with torch.random.fork_rng(devices=[]):
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
        init_net, init_info = load_checkpoint(config.init_from)
        shape_keys = ("ways", "widths", "hidden", "in_channels", "image_size")
        if any(init_net.config[k] != net.config[k] for k in shape_keys):
            raise ValueError(
                f"init_from {config.init_from}: network {init_net.config} differs from the "
                f"config's {net.config}"
            )
        net.load_state_dict(init_net.state_dict())
        if config.init_phase == "curve":
            _init_rates(learner, init_info["inner_lrs"], config)
    return learner, classifier


def _init_rates(learner: MetaLearner, rates: list, config: TrainConfig) -> None:
    """Start the learner's inner rates from a checkpoint's (``ValueError`` if they do not fit
    the config's schedule: one pair, or one pair per step)."""
    table = torch.tensor(rate_table(rates, 2), device=learner.log_lrs.device)
    if table.shape[0] == 1 and learner.log_lrs.dim() == 1:
        table = table[0]
    if table.shape != learner.log_lrs.shape:
        raise ValueError(
            f"init_from {config.init_from}: its inner rates {list(table.shape)} do not fit the "
            f"config's {list(learner.log_lrs.shape)} (inner_steps, per_step_lrs)"
        )
    with torch.no_grad():
        learner.log_lrs.copy_(table.log())


def _validation(config: TrainConfig, val: ClassImages) -> Validation:
    seed = step_seed(config.seed, "maml", -2)
    queries = min(15, val.n_per_class - config.shots)
    tasks = TaskSampler(val, config.ways, config.shots, queries, seed=seed)
    tasks = tasks.sample(config.val_tasks)
    # validation adapts as the chip does, on the support images and their distorted copies
    return Validation(tasks, support_copies(tasks, config, seed), seed)


def config_differences(saved: dict[str, Any], config: TrainConfig) -> list[str]:
    """The options in which ``config`` differs from a saved config (options added since it was
    saved take their defaults, which keep the former behaviour)."""
    stored, current = {**TrainConfig().to_dict(), **current_names(saved)}, config.to_dict()
    return sorted(k for k in stored.keys() | current.keys() if stored.get(k) != current.get(k))


def _start(tr: Training, resume: bool) -> None:
    """Restore the saved state (resume) or begin the log afresh."""
    blob = read_state(tr.out, tr.device) if resume else None
    saved = blob["config"] if blob is not None else None
    if resume and blob is None:  # stopped before its first save: its log's config
        saved = (RunLog(tr.out / LOG_FILE).first() or {}).get("config")
        if saved is None:
            raise FileNotFoundError(f"--resume: no training state in {tr.out}")
    if saved is not None:
        changed = config_differences(saved, tr.config)
        if changed:
            raise ValueError(
                f"--resume: the config differs from the one {tr.out} was trained with "
                f"(options: {', '.join(changed)})"
            )
    if blob is not None:
        tr.restore(blob)
        return
    tr.log.path.unlink(missing_ok=True)
    tr.log.write({"event": "start", "config": tr.config.to_dict(), "device": str(tr.device)})


def _finish(tr: Training) -> dict[str, Any]:
    """Save the final model and the summary; log the end."""
    config, prog = tr.config, tr.progress
    hardware_aware = config.hardware_steps > 0
    summary = {
        "stopped": False,
        "elapsed_s": prog.elapsed_s,
        "time_to_target_s": prog.time_to_target_s,
        "val_target": config.val_target,
        "last_val": prog.last_val,
        "inner_lrs": tr.learner.inner_lrs().tolist(),
        "weight_max": prog.weight_max,
        "hardware_aware": hardware_aware,
        "device": str(tr.device),
    }
    save_model(tr, tr.out / MODEL_FILE, hardware_aware)
    tr.emit({"event": "done", **summary})
    with atomic_write(tr.out / SUMMARY_FILE, "w") as fh:
        json.dump(summary, fh, indent=2)
        fh.write("\n")
    return summary


def meta_train(
    config: TrainConfig,
    train: ClassImages,
    val: ClassImages,
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    overwrite: bool = False,
    stop_after: int | None = None,
    progress: bool = True,
    command: str = "",
    device: str | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) the phases; write ``model.pt``, ``baseline.pt``, ``log.jsonl``,
    ``summary.json`` under ``out_dir`` and return the summary.

    A folder that holds a run is refused unless ``resume`` (continue it; the config must be
    the one it was started with) or ``overwrite`` (its files are removed first).
    ``stop_after``: stop (with the state saved) after that many optimisation steps of this call,
    as a kill would; a later call with ``resume=True`` continues exactly.
    """
    dev, programmer = check_run(config, out_dir, resume=resume, overwrite=overwrite, device=device)
    if config.ways > val.n_classes or config.ways > train.n_classes:
        raise ValueError(
            f"ways={config.ways} needs at least that many classes; train has {train.n_classes}, "
            f"val {val.n_classes}"
        )
    out = Path(out_dir)
    if overwrite:
        clear_run(out)
    out.mkdir(parents=True, exist_ok=True)
    train_d, val_d = train.to(dev), val.to(dev)
    learner, classifier = _network(config, train, dev)
    pre_opt = torch.optim.Adam(
        list(learner.net.parameters()) + list(classifier.parameters()), lr=config.pretrain_lr
    )
    tr = Training(
        config, out, dev, train_d, val.split, learner, classifier, pre_opt, programmer,
        _validation(config, val_d), RunLog(out / LOG_FILE), budget=stop_after,
        show_progress=progress, command=command, on_event=on_event,
    )  # fmt: skip
    _start(tr, resume)
    tr.start_clock()
    if tr.progress.phase == "pretrain" and config.init_from:
        tr.progress.phase, tr.progress.step = config.init_phase, 0
        if config.init_phase == "curve":  # the checkpoint is deployed as it was calibrated
            tr.progress.weight_max = load_checkpoint(config.init_from)[1]["weight_max"]
    if tr.progress.phase == "pretrain" and pretrain(tr):
        return tr.stopped()
    for phase, next_phase in META_PHASES:
        if tr.progress.phase != phase:
            continue
        if meta_phase(tr, phase):
            return tr.stopped()
        end_phase(tr, phase, next_phase)
    return _finish(tr)
