"""Off-chip, hardware-aware meta-training (MAML with the inner loop on the FC layers),
checkpoints and software evaluation.

>>> from memlearn.meta import load_checkpoint, evaluate
>>> net, info = load_checkpoint()          # the shipped model; info["inner_lrs"], ...
"""

from memlearn.meta.baseline import tune_head_lrs
from memlearn.meta.checkpoint import load_checkpoint, save_checkpoint, shipped_checkpoint_path
from memlearn.meta.config import TrainConfig
from memlearn.meta.evaluate import evaluate, evaluate_classes
from memlearn.meta.hardware import (
    IdealProgrammer,
    LevelProgrammer,
    Programmed,
    TableProgrammer,
    WeightProgrammer,
    make_programmer,
    milo_spread,
)
from memlearn.meta.maml import MetaLearner, adapt, evaluate_features
from memlearn.meta.train import meta_train

__all__ = [
    "IdealProgrammer",
    "LevelProgrammer",
    "MetaLearner",
    "Programmed",
    "TableProgrammer",
    "TrainConfig",
    "WeightProgrammer",
    "adapt",
    "evaluate",
    "evaluate_classes",
    "evaluate_features",
    "load_checkpoint",
    "make_programmer",
    "meta_train",
    "milo_spread",
    "save_checkpoint",
    "shipped_checkpoint_path",
    "tune_head_lrs",
]
