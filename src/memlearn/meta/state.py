"""The state of a meta-training run: models, optimisers, progress, log and clock.

:class:`Progress` is what the run has done (phase, step, times, the full-scale weight...);
:class:`Training` holds it with everything a phase works on, saves it (atomically, with the
models and optimisers and the length of the log it covers) and restores it on resume.  Every
step draws its tasks and noise from generators seeded by :func:`step_seed`, so the state needs
no random-number-generator state of its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from memlearn.data import ClassImages, TaskBatch
from memlearn.errors import CorruptDataError
from memlearn.meta.config import TrainConfig
from memlearn.meta.evaluate import evaluate_classes
from memlearn.meta.hardware import LevelProgrammer, WeightProgrammer
from memlearn.meta.inner import HeadTasks
from memlearn.meta.maml import MetaLearner, evaluate_features
from memlearn.meta.rundir import RunLog, write_state

PHASES = ("pretrain", "head", "maml", "hardware", "curve")


def step_seed(seed: int, phase: str, step: int) -> int:
    """The seed of one step's task and noise generators."""
    return (int(seed) * 1_000 + PHASES.index(phase)) * 10_000_000 + int(step)


def pick_device(device: str | None = None) -> torch.device:
    """``device`` or CUDA when present, else CPU; ``ValueError`` for a device torch does not
    know or this machine lacks."""
    if not device:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"unknown torch device {device!r}; allowed e.g. 'cpu', 'cuda'") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"torch device {device!r}: CUDA is not available on this machine")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"torch device {device!r}: allowed 'cpu' or 'cuda'")
    return dev


def pretrained(config: TrainConfig) -> bool:
    """Whether the extractor starts from trained weights (then it gets ``extractor_lr``)."""
    return config.pretrain_epochs > 0 or bool(config.init_from)


def cosine(base: float, step: int, total: int, enabled: bool) -> float:
    """Learning rate ``base`` decayed along half a cosine over ``total`` steps."""
    if not enabled or total <= 1:
        return base
    return base * 0.5 * (1.0 + math.cos(math.pi * step / total))


def meta_optimizer(
    learner: MetaLearner, config: TrainConfig, pretrained: bool, phase: str = "maml"
) -> torch.optim.Adam:
    """Adam over the extractor, the head and the learned rates; the hardware phase gets a fresh
    one at ``hardware_lr_scale`` times the rates (it fine-tunes a converged model), the curve
    phase one over the rates and the temperature only."""
    rates = [p for p in (learner.log_lrs, learner.log_temperature) if isinstance(p, nn.Parameter)]
    if phase == "curve":
        if not rates:
            raise ValueError("the curve phase needs learned inner rates (learn_inner_lrs=True)")
        return torch.optim.Adam([{"params": rates, "lr": config.lr_lr, "base_lr": config.lr_lr}])
    scale = config.hardware_lr_scale if phase == "hardware" else 1.0
    head = list(learner.net.fc1.parameters()) + list(learner.net.fc2.parameters())
    ext_lr = scale * (config.extractor_lr if pretrained else config.outer_lr)
    head_lr, rate_lr = scale * config.outer_lr, scale * config.lr_lr
    groups = [
        {"params": list(learner.net.extractor.parameters()), "lr": ext_lr, "base_lr": ext_lr},
        {"params": head, "lr": head_lr, "base_lr": head_lr},
    ]
    if rates:
        groups.append({"params": rates, "lr": rate_lr, "base_lr": rate_lr})
    return torch.optim.Adam(groups)


@dataclass
class Progress:
    """What a run has done; saved with the state (as a dict under ``"state"``)."""

    phase: str = "pretrain"  # one of PHASES, or "done"
    step: int = 0  # steps (epochs in pretraining) done in this phase
    elapsed_s: float = 0.0  # training time so far (s)
    time_to_target_s: float | None = None  # when validation first reached val_target (s)
    weight_max: list[float] | None = None  # per-layer full-scale weight, once calibrated
    baseline_lrs: list[float] | None = None  # the baseline's tuned fine-tuning rates
    last_val: dict[str, float] = field(default_factory=dict)  # the latest validation record

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Validation:
    """The fixed validation tasks: ``tasks`` as sampled, ``adapt_tasks`` with the support
    copies the chip adapts on, and the seed of the noise every validation draws."""

    tasks: TaskBatch
    adapt_tasks: TaskBatch
    seed: int


@dataclass
class Training:
    """Everything the phases of one run share."""

    config: TrainConfig
    out: Path
    device: torch.device
    train: ClassImages  # on ``device``
    val_split: str
    learner: MetaLearner
    classifier: nn.Module
    pre_opt: torch.optim.Adam
    programmer: LevelProgrammer  # the hardware phase's (also rules the calibration)
    validation: Validation
    log: RunLog
    meta_opt: torch.optim.Adam | None = None
    progress: Progress = field(default_factory=Progress)
    budget: int | None = None  # steps this call may still take (None: no limit)
    started_s: float = 0.0  # perf_counter() at which elapsed_s was 0
    show_progress: bool = True
    command: str = ""
    on_event: Callable[[dict[str, Any]], None] | None = None

    def start_clock(self) -> None:
        self.started_s = time.perf_counter() - self.progress.elapsed_s

    def tick(self) -> bool:
        """Count one step; True when the call must stop now."""
        self.progress.elapsed_s = time.perf_counter() - self.started_s
        if self.budget is None:
            return False
        self.budget -= 1
        return self.budget <= 0

    def emit(self, record: dict[str, Any]) -> None:
        """Log ``record`` and pass it to ``on_event``."""
        self.log.write(record)
        if self.on_event is not None:
            self.on_event(record)

    def save(self) -> None:
        """Save the state (atomically) with the length of the log it covers."""
        blob = {
            "config": self.config.to_dict(),
            "learner": self.learner.state_dict(),
            "classifier": self.classifier.state_dict(),
            "pre_opt": self.pre_opt.state_dict(),
            "meta_opt": None if self.meta_opt is None else self.meta_opt.state_dict(),
            "state": self.progress.to_dict(),
            "log_size": self.log.size(),
        }
        write_state(self.out, blob)

    def restore(self, blob: dict[str, Any]) -> None:
        """Continue from a saved state; the log is cut back to the records it covers."""
        try:
            self.learner.load_state_dict(blob["learner"])
            self.classifier.load_state_dict(blob["classifier"])
            self.pre_opt.load_state_dict(blob["pre_opt"])
            self.progress = Progress(**blob["state"])
        except (RuntimeError, TypeError, ValueError, KeyError) as exc:
            raise CorruptDataError(
                f"training state in {self.out} does not fit this run: {exc}"
            ) from exc
        if blob["meta_opt"] is not None:
            phase = self.progress.phase
            self.meta_opt = meta_optimizer(
                self.learner, self.config, pretrained(self.config), phase
            )
            self.meta_opt.load_state_dict(blob["meta_opt"])
        self.log.cut(int(blob["log_size"]))

    def stopped(self) -> dict[str, Any]:
        """What a call that stops before the end returns."""
        return {"stopped": True, **self.progress.to_dict()}

    def validate(self, programmer: WeightProgrammer | None = None) -> float:
        """Accuracy on the validation tasks after the last inner step."""
        return self.validate_curve(programmer)[-1]

    def validate_features(
        self, features: HeadTasks, programmer: WeightProgrammer | None = None
    ) -> torch.Tensor:
        """Per-task accuracy ``[inner_steps + 1, T]`` on the validation tasks given as the
        frozen extractor's ``features``."""
        net = self.learner.net
        return evaluate_features(
            features, net.fc1.weight, net.fc2.weight, self.learner.inner_lrs().detach(),
            self.config.inner_steps, programmer=programmer,
            weight_max=None if self.progress.weight_max is None
            else tuple(self.progress.weight_max),
            generator=torch.Generator(device=self.device).manual_seed(self.validation.seed),
        )  # fmt: skip

    def validate_curve(
        self, programmer: WeightProgrammer | None = None, features: HeadTasks | None = None
    ) -> list[float]:
        """Accuracy on the validation tasks after 0..``inner_steps`` inner steps (``features``:
        the tasks as :func:`~memlearn.meta.evaluate.task_features` gave them, while the
        extractor is frozen)."""
        val = self.validation
        if features is not None:
            return self.validate_features(features, programmer).mean(1).tolist()
        acc = evaluate_classes(
            self.learner.net,
            self.learner.inner_lrs().detach(),
            val.adapt_tasks,
            self.config.inner_steps,
            programmer=programmer,
            weight_max=self.progress.weight_max,
            generator=torch.Generator(device=self.device).manual_seed(val.seed),
        )["accuracy_by_step"]
        self.learner.train()
        return acc
