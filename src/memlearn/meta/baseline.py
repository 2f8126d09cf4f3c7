"""The baseline without meta-learning: a plain classifier's features, head fine-tuned on the
support set.

The network is pretrained as an ordinary classifier of the train split's classes (extractor →
FC1 → ReLU → a digital classifier over every class; phase 1 of :func:`memlearn.meta.train.
meta_train`).  For a new task FC2 starts at zero (every class equally likely) and the head is
fine-tuned with the same plain SGD steps as the chip's; the two learning rates are the best of a
grid on training tasks (never on validation alphabets).
"""

from __future__ import annotations

import itertools

import torch

from memlearn.data import ClassImages, TaskSampler
from memlearn.meta.inner import HeadTasks
from memlearn.meta.maml import evaluate_features
from memlearn.nn import FewShotNet

LR_GRID = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)  # [E] a log grid over the useful range


@torch.no_grad()
def tune_head_lrs(
    net: FewShotNet,
    classes: ClassImages,
    *,
    ways: int = 5,
    shots: int = 1,
    steps: int = 5,
    tasks: int = 200,
    seed: int = 0,
    grid: tuple[float, ...] = LR_GRID,
) -> tuple[list[float], float]:
    """Best ``(FC1 lr, FC2 lr)`` on ``tasks`` tasks of ``classes`` after ``steps`` updates, and
    its accuracy.  Features are computed once; every grid point reuses them."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    queries = min(15, classes.n_per_class - shots)
    batch = TaskSampler(classes, ways, shots, queries, seed=seed).sample(tasks).to(device)
    fs = net.features(batch.support_x.flatten(0, 1)).view(tasks, ways * shots, -1)
    fq = net.features(batch.query_x.flatten(0, 1)).view(tasks, ways * queries, -1)
    best, best_acc = [grid[0], grid[0]], -1.0
    for lr1, lr2 in itertools.product(grid, grid):
        lrs = torch.tensor([lr1, lr2], device=device)
        feats = HeadTasks(fs, batch.support_y, fq, batch.query_y)
        acc = evaluate_features(feats, net.fc1.weight, net.fc2.weight, lrs, steps)[-1].mean()
        if float(acc) > best_acc:
            best, best_acc = [lr1, lr2], float(acc)
    net.train(was_training)
    return best, best_acc
