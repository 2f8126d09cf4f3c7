"""The trainable head (dense layers, ReLU between them, no biases): forward, loss and gradient.

Weights are kept in *array orientation*, ``[tasks, inputs, outputs]`` (the transpose of
``nn.Linear.weight``), which is how a crossbar holds them: inputs on rows, outputs on column
pairs.  The gradient is written out by hand (it is what the computer in the loop computes from
the chip's read-out weights and analog activations) and equals autograd's for the same values.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from memlearn.meta.inner import Tasks, WeightHolder, inner_loop
from memlearn.nn.rates import Rates


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


class FloatHead:
    """A :class:`~memlearn.meta.inner.WeightHolder` of exact float weights ``[T, in_l, out_l]``:
    ideal (software) adaptation."""

    def __init__(self, weights: list[torch.Tensor]) -> None:
        self.weights = weights

    def read(self) -> list[torch.Tensor]:
        return self.weights

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return forward(x, self.weights)

    def write(self, step: int, read: list[torch.Tensor], new: list[torch.Tensor]) -> None:
        self.weights = new


class QueryCurves:
    """An inner-loop observer: query loss and accuracy ``[T, steps + 1]`` of the weights a
    holder holds before each update and after the last (index 0: as deployed)."""

    def __init__(self, tasks: Tasks, steps: int) -> None:
        self.query_x, self.query_y = tasks.query_x, tasks.query_y
        self.accuracy = torch.empty(tasks.query_x.shape[0], steps + 1)
        self.loss = torch.empty(tasks.query_x.shape[0], steps + 1)

    def __call__(self, step: int, holder: WeightHolder) -> None:
        logits = holder.forward(self.query_x)[-1]
        self.loss[:, step], self.accuracy[:, step] = loss_and_accuracy(logits, self.query_y)


def software_adapt(
    tasks: Tasks, weights: list[torch.Tensor], inner_lrs: Rates, steps: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Ideal float adaptation (plain SGD, per-layer rates, shared or per step: see
    :mod:`memlearn.nn.rates`) of every task at once: :func:`~memlearn.meta.inner.inner_loop`
    on a :class:`FloatHead`.

    ``tasks``: head inputs and labels (e.g. :class:`~memlearn.meta.inner.HeadTasks`,
    ``[T, B, in]`` / ``[T, B]``).  ``weights`` are the initial matrices, ``[in_l, out_l]``
    (shared) or ``[T, in_l, out_l]``.
    Returns query accuracy and loss, each ``[T, steps + 1]`` (index 0: before any update).
    """
    curves = QueryCurves(tasks, steps)
    holder = FloatHead(per_task(weights, tasks.support_x.shape[0]))
    inner_loop(holder, tasks, inner_lrs, steps, gradients, observe=curves)
    return curves.accuracy, curves.loss


def weight_peaks(
    tasks: Tasks, weights: list[torch.Tensor], inner_lrs: Rates, steps: int
) -> list[float]:
    """Per layer, the largest ``|w|`` that ideal adaptation visits on the ``tasks``' support
    sets (initial weights included): the ``weight_max`` a deployment must be able to hold."""
    peaks = [0.0] * len(weights)

    def track(step: int, holder: FloatHead) -> None:
        peaks[:] = [max(p, float(w.abs().max())) for p, w in zip(peaks, holder.read(), strict=True)]

    holder = FloatHead(per_task(weights, tasks.support_x.shape[0]))
    inner_loop(holder, tasks, inner_lrs, steps, gradients, observe=track)
    return [max(p, 1e-12) for p in peaks]
