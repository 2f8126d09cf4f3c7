"""Options of a meta-training run, with validation and JSON round trip."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from memlearn.meta.hardware import (
    DEFAULT_G_MAX,
    DEFAULT_G_MIN,
    DEFAULT_LEVELS,
    UPDATE_RULES,
    update_rule_name,
)

# Length of the hardware-aware phase when a device preset is named on the command line.  Short
# on purpose: run longer, the accuracy on the levels stays while the ideal-software accuracy
# falls (the head drifts towards weights that only work quantised; README: recipe choices).
DEFAULT_HARDWARE_STEPS = 250
# Length of the curve phase that `memlearn meta-train --curve-from CKPT` runs on a checkpoint
# (head-only steps on cached features: a few minutes on a CPU).
DEFAULT_CURVE_STEPS = 500
CALIBRATION_TASK_KINDS = ("within-alphabet", "random")
# The phase an ``init_from`` run starts at: "head" (the meta-learning phases, with the
# checkpoint's weights only) or "curve" (the curve phase alone, with the checkpoint's rates and
# full-scale weights too).
INIT_PHASES = ("head", "curve")


@dataclass
class TrainConfig:
    """Everything that decides a meta-training run (defaults: the shipped model's recipe).

    Five phases run in order, each skippable by setting its length to 0:

    1. ``pretrain_epochs`` of plain classification of the train split's classes (this is
       also the non-meta-learned baseline); it initialises the extractor (and FC1 with
       ``pretrain_head="fc1"``);
    2. ``head_steps`` of MAML on the cached features of the frozen extractor: only the head's
       initialisation and inner rates learn, at a tiny fraction of the cost of a full step;
    3. ``meta_steps`` of MAML (head-only inner loop, outer loop on every parameter);
    4. ``hardware_steps`` of hardware-aware MAML (levels + programming spread in the inner
       loop), starting from phase 3;
    5. ``curve_steps`` of head-only MAML on cached features of the final extractor that
       re-learn the per-step inner rates (and the outer-loss temperature) with a weight of
       ``curve_loss`` on every earlier step's query loss, so that no update undoes the one
       before (off by default; ``memlearn meta-train --curve-from CKPT`` runs it alone on a
       checkpoint, ``init_phase="curve"``).
    """

    seed: int = 0
    # task shape used in meta-training
    ways: int = 5
    shots: int = 1
    queries: int = 5
    # network
    # Conv widths: the last is the 32 features of the chip's FC1 rows; the third block has 128
    # channels (MAML's network has 64; 256 did not pay: README, meta-training and recipe choices).
    widths: list[int] = field(default_factory=lambda: [64, 64, 128, 32])
    hidden: int = 16
    normalize: str = "l2"  # per-image feature normalisation of the extractor ("none", "l2")
    pooling: str = "cover"  # extractor pooling ("floor", "cover"): see memlearn.nn.extractor
    # phase 1: classifier pretraining
    pretrain_epochs: int = 20
    pretrain_batch: int = 256
    pretrain_lr: float = 3e-3
    # "features": the classifier reads the extractor's features (FC1 keeps its random init);
    # "fc1": it reads FC1's ReLU outputs (FC1 pretrained too).
    pretrain_head: str = "features"
    pretrain_classifier: str = "cosine"  # "linear" or "cosine" (memlearn.meta.classifier)
    # Random affine distortions of the training images (memlearn.data.augment), in pretraining
    # and meta-training; never in validation or evaluation.
    augment: bool = True
    # Distorted copies of each support image in the inner loop of the MAML and hardware phases,
    # in validation and in the full-scale search (memlearn.data.augment.with_support_copies), to
    # train as the chip adapts (memlearn adapt --support-copies).  0 in the shipped recipe: 4 did
    # not help the adapted chips (README: recipe choices); the loop's copies help either way.
    support_copies: int = 0
    init_from: str | None = None  # start from this checkpoint's weights (skips pretraining)
    init_phase: str = "head"  # with init_from: the first phase run (one of INIT_PHASES)
    # phase 2a: head-only MAML on the cached features of the frozen pretrained extractor (cheap:
    # no conv passes), so that the end-to-end phase starts from a head that already adapts.
    head_steps: int = 6000
    head_batch: int = 64
    # phase 2b: MAML
    meta_steps: int = 3000
    meta_batch: int = 16
    inner_steps: int = 5
    second_order: bool = True
    learn_inner_lrs: bool = True
    learn_temperature: bool = True  # outer-loss temperature (see memlearn.meta.maml.MetaLearner)
    # One pair of inner rates per step (MAML++-style schedule) instead of one shared pair (README:
    # recipe choices).
    per_step_lrs: bool = True
    # Weight of each earlier step's query loss in the outer loss: pulls the intermediate steps
    # up (with a per-step schedule and 0 here, steps 2-3 can fall while step 5 rises; 0.03 still
    # leaves a dip at step 3 in the shipped model; 0.1 removed it but cost accuracy on simulated
    # chips: README, recipe choices).
    intermediate_loss: float = 0.03
    inner_lr_init: list[float] = field(default_factory=lambda: [0.4, 0.4])
    baseline_tune_tasks: int = 200  # training tasks used to pick the baseline's lrs
    inner_lr_from_baseline: bool = True  # after pretraining, start from the baseline's tuned lrs
    outer_lr: float = 1e-3
    extractor_lr: float = 2e-4
    lr_lr: float = 1e-2  # outer learning rate of the log inner learning rates
    cosine_decay: bool = True
    # phase 3: hardware-aware MAML (0: off; `memlearn meta-train --preset P` turns it on with
    # DEFAULT_HARDWARE_STEPS)
    hardware_steps: int = 0
    hardware_lr_scale: float = 0.1  # its outer rates, relative to phase 3's
    # Device model of the hardware-aware phase: a memlearn.devices preset programmed with
    # `strategy` (measured level statistics), or None for levels + the Milo spread.
    device_preset: str | None = "hfo2-mlc"
    strategy: str = "hybrid"
    # How the simulated loop turns an inner update into levels: the on-chip policy of the same
    # name (memlearn.meta.hardware.UPDATE_RULES); it also rules the full-scale calibration.
    update_rule: str = "accumulate"
    levels: int = DEFAULT_LEVELS
    g_min: float = DEFAULT_G_MIN
    g_max: float = DEFAULT_G_MAX
    program_noise: bool = True
    weight_max_margin: float = 1.0
    # Training tasks that score the full-scale search (memlearn.meta.train.calibrate_weight_max):
    # "random" (any classes of the split, rotations included) or "within-alphabet" (the classes
    # of one alphabet, unrotated: the tasks the on-chip search scores).  The network has learned
    # the training classes, so random tasks are easy and pick a larger scale before the hardware
    # phase; "within-alphabet" did as well on simulated chips, since the search after the phase
    # lands near the same scale (README: recipe choices); the shipped model keeps "random".
    calibration_tasks: str = "random"
    # phase 5: the curve phase (0: off).  The per-step rates of the phases above let an update
    # undo the one before (the shipped model's curve dips at the third update: README,
    # meta-training): this phase re-learns only the rates and the temperature, on cached
    # features, with this weight on each earlier step's query loss (0.1).  Off in the shipped
    # recipe: learned in ideal software, its smaller rates cost accuracy on simulated chips
    # (README, meta-training section).
    curve_steps: int = 0
    curve_loss: float = 0.1
    # The curve phase's tasks (as calibration_tasks): random-class tasks of the training
    # classes are too easy to show the dip, and the phase on them left one (README: recipe
    # choices).
    curve_tasks: str = "within-alphabet"
    # The curve phase's inner loop on the device model of the hardware phase (the programmer
    # built from device_preset/strategy/levels/update_rule, at the checkpoint's full scale,
    # which the phase keeps) instead of ideal float weights, so that the rates are learned for
    # the levels the chip adapts on.  No gradient passes through weights the full scale clips
    # (memlearn.meta.hardware.ClipAwareProgrammer): with the plain straight-through gradient
    # the rates ran away and the accuracy on the levels fell (README: recipe choices).
    curve_device: bool = False
    # validation and bookkeeping
    val_every: int = 250
    val_tasks: int = 500
    val_target: float = 0.97
    checkpoint_every: int = 250
    train_split: str = "train"
    val_split: str = "val"

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first option out of range or not among the allowed
        names (device presets and splits included)."""
        self._check_numbers()
        self._check_names()

    def _check_numbers(self) -> None:
        positive = (
            "ways", "shots", "queries", "hidden", "pretrain_batch", "meta_batch", "head_batch"
        )  # fmt: skip
        for name in positive:
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.ways < 2:
            raise ValueError(f"ways must be >= 2, got {self.ways}")
        for name in (
            "pretrain_epochs",
            "head_steps",
            "meta_steps",
            "hardware_steps",
            "curve_steps",
            "inner_steps",
            "seed",
        ):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if int(self.support_copies) < 0:
            raise ValueError(f"support_copies must be >= 0, got {self.support_copies}")
        for name in ("val_every", "val_tasks", "checkpoint_every", "baseline_tune_tasks"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in (
            "pretrain_lr",
            "outer_lr",
            "extractor_lr",
            "lr_lr",
            "weight_max_margin",
            "hardware_lr_scale",
        ):
            if not float(getattr(self, name)) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        for name in ("intermediate_loss", "curve_loss"):
            if not float(getattr(self, name)) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if len(self.inner_lr_init) != 2 or min(self.inner_lr_init) <= 0:
            raise ValueError(
                f"inner_lr_init must be two positive floats (FC1, FC2), got {self.inner_lr_init}"
            )
        if not self.widths or min(self.widths) < 1:
            raise ValueError(f"widths must be positive ints, got {self.widths}")
        if self.levels < 2:
            raise ValueError(f"levels must be >= 2, got {self.levels}")
        if not 0 <= self.g_min < self.g_max:
            raise ValueError(f"need 0 <= g_min < g_max (siemens), got {self.g_min}, {self.g_max}")
        if not 0 < self.val_target <= 1:
            raise ValueError(f"val_target must be in (0, 1], got {self.val_target}")

    def _check_names(self) -> None:
        from memlearn.nn.extractor import NORMALIZATIONS, POOLINGS

        if self.normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {self.normalize!r}")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {self.pooling!r}")
        from memlearn.meta.classifier import CLASSIFIERS

        if self.pretrain_classifier not in CLASSIFIERS:
            raise ValueError(
                f"pretrain_classifier must be one of {CLASSIFIERS}, got "
                f"{self.pretrain_classifier!r}"
            )
        if self.pretrain_head not in ("features", "fc1"):
            raise ValueError(
                f"pretrain_head must be 'features' or 'fc1', got {self.pretrain_head!r}"
            )
        from memlearn.devices.programming import STRATEGIES

        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; allowed: {list(STRATEGIES)}")
        if self.update_rule not in UPDATE_RULES:
            raise ValueError(
                f"unknown update_rule {self.update_rule!r}; allowed: {list(UPDATE_RULES)}"
            )
        if self.init_phase not in INIT_PHASES:
            raise ValueError(
                f"unknown init_phase {self.init_phase!r}; allowed: {list(INIT_PHASES)}"
            )
        if self.init_phase != "head" and not self.init_from:
            raise ValueError(
                f"init_phase {self.init_phase!r} needs init_from (the checkpoint to start from)"
            )
        if self.curve_steps > 0 and not self.learn_inner_lrs:
            raise ValueError("curve_steps > 0 re-learns the inner rates: needs learn_inner_lrs")
        for name in ("calibration_tasks", "curve_tasks"):
            if getattr(self, name) not in CALIBRATION_TASK_KINDS:
                raise ValueError(
                    f"unknown {name} {getattr(self, name)!r}; allowed: "
                    f"{list(CALIBRATION_TASK_KINDS)}"
                )
        from memlearn.data.splits import SPLIT_SETS

        for name in ("train_split", "val_split"):
            if getattr(self, name) not in SPLIT_SETS:
                raise ValueError(
                    f"unknown {name} {getattr(self, name)!r}; allowed: {list(SPLIT_SETS)}"
                )
        if self.device_preset is not None:
            from memlearn.devices import load_preset
            from memlearn.errors import MemlearnError

            try:
                load_preset(self.device_preset)
            except MemlearnError as exc:
                raise ValueError(f"device_preset: {exc}") from None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        data = current_names(data)
        allowed = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(f"unknown config keys {unknown}; allowed: {sorted(allowed)}")
        return cls(**data)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> TrainConfig:
        """Read a JSON config file (keys: the field names; missing keys keep their defaults)."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
        try:
            data = json.loads(path.read_text())
        except json.JSONDecodeError as exc:
            raise ValueError(f"config file {path} is not valid JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ValueError(f"config file {path} must hold a JSON object")
        return cls.from_dict(data)


def current_names(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config (dict) with former option values under their current names."""
    if "update_rule" not in saved:
        return dict(saved)
    return {**saved, "update_rule": update_rule_name(saved["update_rule"])}
