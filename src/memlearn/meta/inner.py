"""The inner loop: ``steps`` plain SGD updates of a head, whoever holds its weights.

Every adaptation in memlearn runs this loop: MAML's inner loop (weights with an autograd graph,
optionally programmed into differential pairs), ideal evaluation (float weights), the quantised
float model of the chip (weights on levels, with the policies' bookkeeping) and the computer in
the loop (conductances on chips, read back).  They differ only in how a weight is held, which a
:class:`WeightHolder` hides, and in how the gradient is taken (autograd, or the hand-written
gradient from measured activations), which is a parameter.  Each step:

1. ``w = holder.read()`` – the weights the holder holds now (a chip: read back);
2. ``pre = holder.forward(support_x)`` – the layers' pre-activations with those weights;
3. ``grads = gradient(support_x, pre, w, support_y)``;
4. ``holder.write(k, w, [w_l - lr_l * g_l])`` with the step's per-layer rates.

``observe(k, holder)`` (e.g. scoring the query set) runs before step ``k`` and after the last.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch

from memlearn.nn.rates import rates_at


class Tasks(Protocol):
    """A batch of few-shot tasks: ``support_x [T, S, ...]``, ``support_y [T, S]``, ``query_x
    [T, Q, ...]``, ``query_y [T, Q]`` (images, as :class:`memlearn.data.TaskBatch`, or head
    inputs, as :class:`HeadTasks`)."""

    @property
    def support_x(self) -> torch.Tensor: ...
    @property
    def support_y(self) -> torch.Tensor: ...
    @property
    def query_x(self) -> torch.Tensor: ...
    @property
    def query_y(self) -> torch.Tensor: ...


@dataclass(frozen=True)
class HeadTasks:
    """Tasks as the head sees them: inputs ``support_x [T, S, F]``, ``query_x [T, Q, F]`` (the
    extractor's features) and labels ``[T, S]`` / ``[T, Q]`` (int64).

    :class:`memlearn.data.TaskBatch` holds images and the source class of each label; features
    have neither, so they travel in this smaller object with the same four field names.
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor

    def __len__(self) -> int:
        return int(self.support_x.shape[0])


class WeightHolder(Protocol):
    """What holds the weights the inner loop adapts."""

    def read(self) -> list[torch.Tensor]:
        """The weights held now, one tensor per layer (what the gradient is taken at)."""
        ...

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Pre-activations of every layer for inputs ``x`` with the weights held now."""
        ...

    def write(self, step: int, read: list[torch.Tensor], new: list[torch.Tensor]) -> None:
        """Hold the SGD result ``new`` of step ``step`` (``read``: the weights it started from)."""
        ...


Gradient = Callable[
    [torch.Tensor, list[torch.Tensor], list[torch.Tensor], torch.Tensor], list[torch.Tensor]
]
"""``gradient(x, pre, weights, y) -> grads``: the support loss gradient w.r.t. each layer."""

Observer = Callable[[int, Any], None]


def inner_loop(
    holder: WeightHolder,
    tasks: Tasks,
    inner_lrs: Any,
    steps: int,
    gradient: Gradient,
    *,
    rates: Callable[[Any, int], Sequence[Any]] = rates_at,
    observe: Observer | None = None,
) -> None:
    """Run ``steps`` SGD updates of the weights ``holder`` holds on ``tasks``' support sets.

    ``inner_lrs``: per-layer rates, shared or one row per step, read with ``rates(inner_lrs,
    k)`` (default :func:`memlearn.nn.rates.rates_at`; a tensor with a graph:
    :func:`memlearn.nn.rates.step_rates`).  ``observe(k, holder)`` runs before update ``k``
    and after the last (``k = steps``).
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    for k in range(steps + 1):
        if observe is not None:
            observe(k, holder)
        if k == steps:
            break
        w = holder.read()
        pre = holder.forward(tasks.support_x)
        grads = gradient(tasks.support_x, pre, w, tasks.support_y)
        new = [wi - lr * g for wi, lr, g in zip(w, rates(inner_lrs, k), grads, strict=True)]
        holder.write(k, w, new)
