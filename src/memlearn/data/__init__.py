"""Data sets: data-root resolution, download with checksums, Omniglot in its official layouts,
MNIST, and N-way K-shot task sampling.

>>> from memlearn.data import load_split, TaskSampler
>>> classes = load_split("train")                       # 25 alphabets x 4 rotations
>>> tasks = TaskSampler(classes, ways=5, shots=1, queries=15, seed=0).sample(32)
"""

from memlearn.data.roots import cache_dir, data_root_candidates, resolve_data_root
from memlearn.data.runs import OneShotRuns, load_runs
from memlearn.data.sampler import TaskBatch, TaskSampler
from memlearn.data.splits import (
    SPLITS,
    VAL_ALPHABETS,
    ClassImages,
    default_eval_split,
    load_split,
)

__all__ = [
    "SPLITS",
    "VAL_ALPHABETS",
    "ClassImages",
    "OneShotRuns",
    "TaskBatch",
    "TaskSampler",
    "cache_dir",
    "data_root_candidates",
    "default_eval_split",
    "load_runs",
    "load_split",
    "resolve_data_root",
]
