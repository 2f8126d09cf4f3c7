"""The trainable head (dense layers, ReLU between them, no biases): forward, loss and gradient.

Weights are kept in *array orientation*, ``[tasks, inputs, outputs]`` (the transpose of
``nn.Linear.weight``), which is how a crossbar holds them: inputs on rows, outputs on column
pairs.  The gradient is written out by hand (it is what the computer in the loop computes from
the chip's read-out weights and analog activations) and equals autograd's for the same values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from memlearn.nn.rates import Rates, rates_at


def forward(x: torch.Tensor, weights: list[torch.Tensor]) -> list[torch.Tensor]:
    """Pre-activations of each layer; ``x``: ``[T, B, in]``, weights ``[T, in_l, out_l]``."""
    pre: list[torch.Tensor] = []
    a = x
    for i, w in enumerate(weights):
        h = torch.bmm(a, w)
        pre.append(h)
        if i < len(weights) - 1:
            a = torch.relu(h)
    return pre


def loss_and_accuracy(logits: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy and accuracy per task: ``logits [T, B, C]``, ``y [T, B]`` → ``[T]``."""
    loss = F.cross_entropy(logits.transpose(1, 2), y, reduction="none").mean(dim=1)
    accuracy = (logits.argmax(dim=-1) == y).float().mean(dim=1)
    return loss, accuracy


def gradients(
    x: torch.Tensor, pre: list[torch.Tensor], weights: list[torch.Tensor], y: torch.Tensor
) -> list[torch.Tensor]:
    """Gradient of the mean cross-entropy with respect to each weight matrix.

    ``pre`` are the layer pre-activations (digital or measured on the chip); the activations
    fed to layer ``l > 0`` are ``relu(pre[l-1])``, as in the forward pass.
    """
    batch = y.shape[1]
    delta = torch.softmax(pre[-1], dim=-1)
    delta = delta - F.one_hot(y, delta.shape[-1]).to(delta.dtype)
    delta = delta / batch
    grads: list[torch.Tensor] = [torch.empty(0)] * len(weights)
    for i in range(len(weights) - 1, -1, -1):
        inputs = x if i == 0 else torch.relu(pre[i - 1])
        grads[i] = torch.bmm(inputs.transpose(1, 2), delta)
        if i > 0:
            delta = torch.bmm(delta, weights[i].transpose(1, 2)) * (pre[i - 1] > 0)
    return grads


def per_task(weights: list[torch.Tensor], tasks: int) -> list[torch.Tensor]:
    """Float copies ``[T, in_l, out_l]`` of weights given shared (``[in_l, out_l]``) or per task."""
    return [w.float().expand(tasks, *w.shape[-2:]).clone() for w in weights]


def software_adapt(
    support_x: torch.Tensor,
    support_y: torch.Tensor,
    query_x: torch.Tensor,
    query_y: torch.Tensor,
    weights: list[torch.Tensor],
    inner_lrs: Rates,
    steps: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ideal float adaptation (plain SGD, per-layer rates, shared or per step: see
    :mod:`memlearn.nn.rates`) of every task at once.

    ``weights`` are the initial matrices, ``[in_l, out_l]`` (shared) or ``[T, in_l, out_l]``.
    Returns query accuracy and loss, each ``[T, steps + 1]`` (index 0: before any update).
    """
    tasks = support_x.shape[0]
    w = per_task(weights, tasks)
    accuracy = torch.empty(tasks, steps + 1)
    loss = torch.empty(tasks, steps + 1)
    for k in range(steps + 1):
        loss[:, k], accuracy[:, k] = loss_and_accuracy(forward(query_x, w)[-1], query_y)
        if k == steps:
            break
        grads = gradients(support_x, forward(support_x, w), w, support_y)
        w = [wi - lr * g for wi, lr, g in zip(w, rates_at(inner_lrs, k), grads, strict=True)]
    return accuracy, loss


def weight_peaks(
    support_x: torch.Tensor,
    support_y: torch.Tensor,
    weights: list[torch.Tensor],
    inner_lrs: Rates,
    steps: int,
) -> list[float]:
    """Per layer, the largest ``|w|`` that ideal adaptation visits on these support sets
    (initial weights included): the full-scale weight a deployment must be able to hold."""
    tasks = support_x.shape[0]
    w = per_task(weights, tasks)
    peaks = [float(wi.abs().max()) for wi in w]
    for k in range(steps):
        grads = gradients(support_x, forward(support_x, w), w, support_y)
        w = [wi - lr * g for wi, lr, g in zip(w, rates_at(inner_lrs, k), grads, strict=True)]
        peaks = [max(p, float(wi.abs().max())) for p, wi in zip(peaks, w, strict=True)]
    return [max(p, 1e-12) for p in peaks]
