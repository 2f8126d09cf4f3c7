"""The metaplasticity recipe's pieces: task-dependent batch norm, Adam restarted per task,
batch statistics at evaluation, and the validation split (held out of the training images)."""

from __future__ import annotations

import torch

from memlearn.continual.benchmarks import (
    VALIDATION_IMAGES,
    _binarised,
    make_tasks,
    validation_indices,
)
from memlearn.continual.learners import BinaryLearner


def _learner(**kw) -> tuple[BinaryLearner, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    learner = BinaryLearner((20, 16, 4), 2, 1.35, gen, **kw)
    x = (torch.rand(64, 20, generator=gen) > 0.5).to(torch.int8) * 2 - 1
    y = torch.randint(0, 4, (64,), generator=gen)
    return learner, x, y


def test_an_old_task_is_evaluated_with_its_own_batch_norm():
    learner, x, y = _learner(batch_stats=False)
    for _ in range(5):
        learner.step(x, y)
    learner.end_task(None)
    before = learner.accuracy(x, y, task=0)
    with torch.no_grad():
        for p in learner.norms.parameters():
            p.mul_(-1.0)  # a later task moves batch norm far away
    assert torch.equal(learner.accuracy(x, y, task=0), before)  # task 0: its saved norms
    assert not torch.equal(learner.accuracy(x, y, task=1), before)  # task 1: the current ones
    assert learner.adam.t == 0 and learner.norm_adam.t == 0  # the optimiser restarted


def test_batch_statistics_at_evaluation_ignore_the_running_ones():
    learner, x, y = _learner(batch_stats=True)
    learner.step(x, y)
    before = learner.accuracy(x, y)
    for norm in learner.norms:
        norm.running_mean.add_(100.0)
    assert torch.equal(learner.accuracy(x, y), before)


def test_validation_split_is_held_out_of_the_training_images(shared_data):
    keep, held = validation_indices(60_000)
    assert len(held) == VALIDATION_IMAGES and len(set(keep.tolist()) | set(held.tolist())) == 60_000
    tr_x, _, va_x, _ = _binarised(14, None, "validation")
    full_x, _, test_x, _ = _binarised(14, None, "test")
    assert torch.equal(va_x, full_x[held]) and torch.equal(tr_x, full_x[keep])
    tasks = make_tasks("permuted-mnist", 1, 14, torch.Generator(), split="validation")
    assert len(tasks[0].test_x) == VALIDATION_IMAGES and len(test_x) == 10_000
