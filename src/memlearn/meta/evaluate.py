"""Software evaluation of few-shot adaptation, batched over tasks.

The extractor runs in eval mode (fixed batch-norm statistics; the test batch's statistics are
never used) on all images of a chunk of tasks at once; the head adapts with the same plain SGD
steps as the chip.  The transductive variant (batch statistics of each task's own support and
query images, as in the MAML paper) is available as a labelled extra only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from memlearn.data import ClassImages, TaskBatch, TaskSampler
from memlearn.meta.hardware import WeightProgrammer
from memlearn.meta.inner import HeadTasks
from memlearn.meta.maml import evaluate_features
from memlearn.nn import FewShotNet
from memlearn.stats import ci95

DEFAULT_QUERIES = 15  # query images per class in evaluation (as in MAML's Omniglot protocol)


@torch.no_grad()
def _features(net: FewShotNet, x: torch.Tensor, transductive: bool) -> torch.Tensor:
    """Features ``[T, n, F]`` of images ``[T, n, 1, 28, 28]``."""
    t, n = x.shape[:2]
    if transductive:
        return net.extractor.forward_task_batchnorm(x)
    return net.features(x.flatten(0, 1)).view(t, n, -1)


def evaluate_classes(
    net: FewShotNet,
    inner_lrs: torch.Tensor | list[float],
    tasks: TaskBatch,
    steps: int,
    *,
    programmer: WeightProgrammer | None = None,
    weight_max: list[float] | tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
    chunk: int = 25,
    transductive: bool = False,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]:
    """Adapt on each task's support set and score its query set after 0..``steps`` updates.

    Returns ``accuracy_by_step`` (mean over tasks, fractions), ``accuracy_ci95`` (after the
    last step) and ``per_task`` (``[steps + 1, T]`` tensor).  ``progress(n)`` is called with
    the ``n`` tasks of each chunk done (a progress bar's update).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if tasks.ways != net.ways:
        raise ValueError(f"tasks are {tasks.ways}-way but the network has {net.ways} outputs")
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    lrs = torch.as_tensor(inner_lrs, dtype=torch.float32, device=device)
    accs = []
    for i in range(0, len(tasks), chunk):
        part = tasks[i : i + chunk].to(device)
        n_support = part.support_x.shape[1]
        joint = _features(net, torch.cat([part.support_x, part.query_x], 1), transductive)
        fs, fq = joint[:, :n_support], joint[:, n_support:]
        accs.append(
            evaluate_features(
                HeadTasks(fs, part.support_y, fq, part.query_y),
                net.fc1.weight,
                net.fc2.weight,
                lrs,
                steps,
                programmer=programmer,
                weight_max=None if weight_max is None else tuple(weight_max),
                generator=generator,
            )
        )
        if progress is not None:
            progress(len(part))
    net.train(was_training)
    per_task = torch.cat(accs, dim=1).cpu()
    return {
        "accuracy_by_step": per_task.mean(1).tolist(),
        "accuracy_ci95": ci95(per_task[-1]),
        "per_task": per_task,
    }


@torch.no_grad()
def task_features(net: FewShotNet, tasks: TaskBatch, chunk: int = 25) -> HeadTasks:
    """``tasks`` as the head sees them (eval-mode extractor), for scoring the same tasks again
    and again while the extractor does not change."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    parts = []
    for i in range(0, len(tasks), chunk):
        part = tasks[i : i + chunk].to(device)
        parts.append(_features(net, torch.cat([part.support_x, part.query_x], 1), False))
    net.train(was_training)
    joint, n_support = torch.cat(parts), tasks.support_x.shape[1]
    return HeadTasks(
        joint[:, :n_support], tasks.support_y.to(device), joint[:, n_support:],
        tasks.query_y.to(device),
    )  # fmt: skip


@torch.no_grad()
def prototype_accuracy(
    net: FewShotNet, tasks: TaskBatch, *, hidden: bool = True, chunk: int = 25
) -> float:
    """Nearest-class-mean accuracy of the query images, in the FC1 hidden layer (``hidden``) or
    in the extractor's features, with cosine similarity.  A cheap probe of how well a pretrained
    network separates new classes, before any head adaptation; fixed batch-norm statistics."""
    was_training = net.training
    net.eval()
    device = next(net.parameters()).device
    correct = total = 0
    for i in range(0, len(tasks), chunk):
        part = tasks[i : i + chunk].to(device)
        n_support = part.support_x.shape[1]
        joint = _features(net, torch.cat([part.support_x, part.query_x], 1), False)
        if hidden:
            joint = torch.relu(joint @ net.fc1.weight.T)
        joint = torch.nn.functional.normalize(joint, dim=-1)
        fs, fq = joint[:, :n_support], joint[:, n_support:]
        onehot = torch.nn.functional.one_hot(part.support_y, tasks.ways).to(fs.dtype)
        protos = onehot.transpose(1, 2) @ fs  # [T, ways, F], sums of the support vectors
        scores = fq @ torch.nn.functional.normalize(protos, dim=-1).transpose(1, 2)
        correct += int((scores.argmax(-1) == part.query_y).sum())
        total += part.query_y.numel()
    net.train(was_training)
    return correct / max(total, 1)


def evaluate(
    net: FewShotNet,
    inner_lrs: torch.Tensor | list[float],
    classes: ClassImages,
    *,
    ways: int = 5,
    shots: int = 1,
    steps: int = 5,
    tasks: int = 1000,
    queries: int = DEFAULT_QUERIES,
    seed: int = 0,
    programmer: WeightProgrammer | None = None,
    weight_max: list[float] | tuple[float, float] | None = None,
    transductive: bool = False,
    progress: Callable[[int], object] | None = None,
) -> dict[str, Any]:
    """Sample ``tasks`` ``ways``-way ``shots``-shot tasks from ``classes`` (seeded) and score
    them as :func:`evaluate_classes` (``progress`` too); returns the issue-4 JSON fields (no
    ``per_task``)."""
    if tasks < 1:
        raise ValueError(f"tasks must be >= 1, got {tasks}")
    if ways != net.ways:
        raise ValueError(f"ways={ways} but the checkpoint's network has {net.ways} outputs")
    queries = min(queries, classes.n_per_class - shots)
    batch = TaskSampler(classes, ways, shots, queries, seed=seed).sample(tasks)
    res = evaluate_classes(
        net,
        inner_lrs,
        batch,
        steps,
        programmer=programmer,
        weight_max=weight_max,
        generator=torch.Generator().manual_seed(seed),
        transductive=transductive,
        progress=progress,
    )
    return {
        "split": classes.split,
        "ways": ways,
        "shots": shots,
        "steps": steps,
        "tasks": tasks,
        "accuracy_by_step": res["accuracy_by_step"],
        "accuracy_ci95": res["accuracy_ci95"],
        "accuracy_ci95_by_step": [ci95(step) for step in res["per_task"]],
    }


def curve_dips(accuracy_by_step: Sequence[float], ci95: Sequence[float] | float) -> list[int]:
    """The updates of a learning curve that undo the one before: each ``k >= 1`` whose accuracy
    falls below update ``k - 1``'s by more than the 95 % CI of update ``k`` (``ci95``: one
    half-width per update, as ``accuracy_ci95_by_step``, or one for all).  ``[]``: the curve
    rises at every update within its CI."""
    acc = [float(a) for a in accuracy_by_step]
    cis = [float(ci95)] * len(acc) if isinstance(ci95, (int, float)) else [float(c) for c in ci95]
    if len(cis) != len(acc):
        raise ValueError(
            f"ci95 must be one half-width or one per update ({len(acc)}), got {len(cis)}"
        )
    if any(not c >= 0 for c in cis):
        raise ValueError(f"ci95 half-widths must be >= 0, got {cis}")
    return [k for k in range(1, len(acc)) if acc[k] < acc[k - 1] - cis[k]]
