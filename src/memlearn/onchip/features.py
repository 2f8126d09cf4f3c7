"""Tasks as the head sees them: features of the digital, batch-norm-folded extractor.

:func:`image_features` is the one place the extractor runs, on fixed chunks of images;
:func:`task_features` and :func:`head_tasks` give the features of a batch of task images;
:func:`sampled_head_tasks` samples tasks as features directly: the query images of a task are
plain images of the split, so their features are computed once per distinct image and gathered
by ``(class, drawing)``; only the support images, with their per-task distorted copies, go
through the extractor task by task.

The chunks are of :data:`FEATURE_CHUNK` images, never of a single image: the extractor's
convolutions give an image the same features, bit for bit, in any chunk of two images or more,
while a lone image takes another kernel that differs in the last bits of the floats (measured
on the CPU backend).  So the features of an image do not depend on the batch it came in.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from memlearn.data.augment import distorted_support
from memlearn.data.sampler import TaskSampler
from memlearn.meta.inner import HeadTasks

FEATURE_CHUNK = 256  # images per extractor call: bounds the extractor's activations (memory)


def deployed_extractor(net: nn.Module) -> nn.Module:
    """The extractor as deployed: batch norm folded into the convs when the network offers
    ``fold_batchnorm``, in eval mode (fixed statistics, none from the test images)."""
    extractor = net.fold_batchnorm().extractor if hasattr(net, "fold_batchnorm") else net.extractor
    return extractor.eval()


@torch.no_grad()
def image_features(extractor: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Features ``[N, F]`` (float) of ``images [N, C, H, W]``, :data:`FEATURE_CHUNK` at a time;
    a last image left alone joins the previous chunk (a lone image runs as itself twice)."""
    n = images.shape[0]
    if n == 0:
        return images.new_zeros(0, 1).float()
    if n == 1:
        return extractor(images.expand(2, *images.shape[1:]))[:1].float()
    starts = list(range(0, n, FEATURE_CHUNK))
    if n - starts[-1] == 1:
        starts.pop()  # the last image joins the previous chunk
    bounds = [*starts, n]
    parts = [extractor(images[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
    return torch.cat(parts).float()


def task_features(net: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """Features of ``images [T, B, C, H, W]`` → ``[T, B, F]`` with the deployed extractor
    (:func:`deployed_extractor`)."""
    if images.dim() != 5:
        raise ValueError(f"task images must be [tasks, batch, C, H, W], got {list(images.shape)}")
    feats = image_features(deployed_extractor(net), images.flatten(0, 1))
    return feats.reshape(images.shape[0], images.shape[1], -1)


def head_tasks(net: nn.Module, tasks: Any) -> HeadTasks:
    """A TaskBatch's images as the head sees them: features of the deployed extractor."""
    sx = task_features(net, tasks.support_x)
    qx = task_features(net, tasks.query_x)
    return HeadTasks(sx, tasks.support_y.long(), qx, tasks.query_y.long())


@torch.no_grad()
def query_features(
    sampler: TaskSampler, classes: torch.Tensor, drawings: torch.Tensor, net: nn.Module
) -> torch.Tensor:
    """Features ``[T, ways * queries, F]`` of the query images of the tasks ``classes [T,
    ways]``, ``drawings [T, ways, shots + queries]`` (:meth:`TaskSampler.indices`), in
    :meth:`TaskSampler.gather`'s order: each distinct image of the split they use goes through
    the extractor once, a chunk at a time, and the tasks gather its features."""
    images = sampler.classes.images
    per_class = images.shape[1]
    flat = (classes[..., None] * per_class + drawings[..., sampler.shots :]).flatten(1)
    distinct, where = torch.unique(flat, return_inverse=True)
    extractor = deployed_extractor(net)
    device = images.device
    images = images.flatten(0, 1)
    parts = [
        image_features(extractor, images[distinct[i : i + FEATURE_CHUNK].to(device)])
        for i in range(0, distinct.numel(), FEATURE_CHUNK)
    ]
    return torch.cat(parts)[where.to(parts[0].device)]


def sampled_head_tasks(
    sampler: TaskSampler, n_tasks: int, net: nn.Module, support_copies: int, seed: int
) -> HeadTasks:
    """The next ``n_tasks`` tasks of ``sampler``, each support image with ``support_copies``
    distorted copies (drawn for all tasks at once from a generator seeded by ``seed``), as
    ``net``'s head sees them: ``head_tasks(net, with_copies(sampler.sample(n_tasks),
    support_copies, seed))`` bit for bit, without holding the tasks' query images (their
    features come from :func:`query_features`)."""
    classes, drawings = sampler.indices(n_tasks)
    first = sampler.gather(classes[:1], drawings[:1])  # the labels, the same for every task
    ways, shots = sampler.ways, sampler.shots
    device = sampler.classes.images.device
    support = sampler.classes.images[
        classes[..., None].to(device), drawings[..., :shots].to(device)
    ]
    support = support.reshape(n_tasks, ways * shots, *support.shape[3:])  # gather's order
    generator = torch.Generator().manual_seed(seed)
    support = distorted_support(support, support_copies, generator)
    return HeadTasks(
        task_features(net, support),
        first.support_y.repeat(n_tasks, support_copies + 1).long(),
        query_features(sampler, classes, drawings, net),
        first.query_y.repeat(n_tasks, 1).long(),
    )
