"""MAML with the inner loop on the FC head only, batched over tasks.

The inner loop is exactly what the chip runs (issue 5): features come from the fixed conv
extractor; the head weights are (optionally) programmed into differential pairs; each of the
``steps`` updates is one plain SGD step on the support set's mean cross-entropy, with one
learning rate per FC layer (shared by every step, or one per step: see
:mod:`memlearn.nn.rates`), applied to the weights the array holds and programmed again.

Second-order MAML differentiates through the inner gradients (cheap here: only through the
head); first-order MAML treats them as constants.  The outer loss is the query cross-entropy
after the last step (plus, optionally, a small weight on the query losses after the earlier
steps, which pulls the intermediate steps' accuracy up), and reaches every parameter: the
extractor, the FC initialisation and the inner learning rates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from memlearn.meta.hardware import IdealProgrammer, Programmed, WeightProgrammer
from memlearn.meta.inner import Gradient, HeadTasks, Tasks, inner_loop
from memlearn.nn import FewShotNet, head_forward
from memlearn.nn.rates import step_rates


def _task_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Sum over tasks of each task's mean cross-entropy: its gradient w.r.t. one task's own
    weights is that task's mean-loss gradient."""
    t, b, c = logits.shape
    return F.cross_entropy(logits.reshape(t * b, c), labels.reshape(t * b), reduction="sum") / b


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per-task accuracy ``[T]`` (fraction)."""
    return (logits.argmax(-1) == labels).float().mean(-1)


@dataclass
class AdaptResult:
    """What an inner loop produced: the head weights after each step (index 0 = deployed)."""

    fc1: list[torch.Tensor]
    fc2: list[torch.Tensor]
    states: list[tuple[Programmed, Programmed]]


class _ProgrammedHead:
    """The head's weights ``[T, out, in]`` as a :class:`~memlearn.meta.hardware.WeightProgrammer`
    programs them, with their autograd graph; keeps every step's weights and states."""

    def __init__(
        self,
        weights: tuple[torch.Tensor, torch.Tensor],
        programmer: WeightProgrammer,
        weight_max: tuple[float, float],
        generator: torch.Generator | None,
    ) -> None:
        self.programmer, self.weight_max, self.generator = programmer, weight_max, generator
        s1 = programmer(weights[0], None, weight_max[0], generator)
        s2 = programmer(weights[1], None, weight_max[1], generator)
        self.result = AdaptResult([s1.weight], [s2.weight], [(s1, s2)])

    def read(self) -> list[torch.Tensor]:
        return [self.result.fc1[-1], self.result.fc2[-1]]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [head_forward(x, self.result.fc1[-1], self.result.fc2[-1])]

    def write(self, step: int, read: list[torch.Tensor], new: list[torch.Tensor]) -> None:
        s1, s2 = self.result.states[-1]
        s1 = self.programmer(new[0], s1, self.weight_max[0], self.generator)
        s2 = self.programmer(new[1], s2, self.weight_max[1], self.generator)
        self.result.fc1.append(s1.weight)
        self.result.fc2.append(s2.weight)
        self.result.states.append((s1, s2))


def _autograd_gradient(second_order: bool) -> Gradient:
    """The support loss gradient by autograd (through it, for second-order MAML)."""

    def gradient(
        x: torch.Tensor, pre: list[torch.Tensor], weights: list[torch.Tensor], y: torch.Tensor
    ) -> list[torch.Tensor]:
        grads = torch.autograd.grad(_task_loss(pre[-1], y), weights, create_graph=second_order)
        return list(grads) if second_order else [g.detach() for g in grads]

    return gradient


def adapt(
    support_features: torch.Tensor,
    support_labels: torch.Tensor,
    fc1_w: torch.Tensor,
    fc2_w: torch.Tensor,
    inner_lrs: torch.Tensor,
    steps: int,
    *,
    second_order: bool = False,
    programmer: WeightProgrammer | None = None,
    weight_max: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
) -> AdaptResult:
    """Run ``steps`` plain SGD updates of the head on the support set, batched over tasks
    (:func:`memlearn.meta.inner.inner_loop`, gradients by autograd).

    ``support_features [T, S, F]``, ``support_labels [T, S]`` (int64), ``fc1_w [T, H, F]``,
    ``fc2_w [T, C, H]``, ``inner_lrs [2]`` (FC1, FC2) or ``[S, 2]`` (one row per step; steps
    beyond the last row reuse it).  With a ``programmer`` the weights are programmed at
    deployment and after every update (``weight_max``: per layer, the weight on the top level).
    Gradients are taken at the programmed weights, as the chip reads them.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if support_features.dim() != 3 or support_labels.shape != support_features.shape[:2]:
        raise ValueError(
            f"support features must be [T, S, F] and labels [T, S]; got "
            f"{list(support_features.shape)} and {list(support_labels.shape)}"
        )
    if inner_lrs.dim() not in (1, 2) or inner_lrs.shape[-1] != 2 or inner_lrs.numel() == 0:
        raise ValueError(
            f"inner_lrs must be [2] (FC1, FC2) or [steps, 2], got {list(inner_lrs.shape)}"
        )
    programmer = programmer or IdealProgrammer()
    hardware = not isinstance(programmer, IdealProgrammer)
    if hardware and weight_max is None:
        raise ValueError(
            "a hardware programmer needs weight_max (the weight on the top level, per layer)"
        )
    wm = weight_max or (1.0, 1.0)
    # Outside autograd (evaluation) the weights become fresh leaves so the inner gradients exist.
    outer_graph = torch.is_grad_enabled()
    if not (outer_graph and fc1_w.requires_grad):
        fc1_w = fc1_w.detach().clone().requires_grad_(True)
    if not (outer_graph and fc2_w.requires_grad):
        fc2_w = fc2_w.detach().clone().requires_grad_(True)
    # the loop reads only the support set; there is no query set here
    tasks = HeadTasks(support_features, support_labels, support_features, support_labels)
    with torch.enable_grad():
        holder = _ProgrammedHead((fc1_w, fc2_w), programmer, wm, generator)
        inner_loop(
            holder, tasks, inner_lrs, steps, _autograd_gradient(second_order), rates=step_rates
        )
    return holder.result


class MetaLearner(nn.Module):
    """A :class:`FewShotNet` plus its learnable per-layer inner learning rates and an outer-loss
    temperature.

    The temperature ``τ`` scales the query logits in the *outer* loss only (``CE(τ · logits)``);
    the inner loop and every prediction use the logits as they are, so ``τ`` never changes what
    the chip computes.  Without it, the query cross-entropy rewards confident logits, and the
    only way for MAML to get them is large inner learning rates, whose later steps overshoot:
    on Omniglot features the accuracy after 5 steps then falls below that of the first step.
    With ``τ`` learned, confidence comes from ``τ`` and the inner rates are free to be the
    accurate ones (a few points of held-out accuracy here).

    ``per_step``: learn one pair of rates per inner step (``[per_step, 2]``) instead of one pair
    shared by every step.  ``intermediate_loss``: weight of each earlier step's query loss in the
    outer loss (0: the last step's only).
    """

    def __init__(
        self,
        net: FewShotNet,
        inner_lrs: tuple[float, float] = (0.4, 0.4),
        learn_lrs: bool = True,
        learn_temperature: bool = True,
        per_step: int | None = None,
        intermediate_loss: float = 0.0,
    ) -> None:
        super().__init__()
        if min(inner_lrs) <= 0:
            raise ValueError(f"inner learning rates must be > 0, got {inner_lrs}")
        if per_step is not None and per_step < 1:
            raise ValueError(f"per_step must be None or >= 1, got {per_step}")
        if not intermediate_loss >= 0:
            raise ValueError(f"intermediate_loss must be >= 0, got {intermediate_loss}")
        self.net = net
        self.intermediate_loss = float(intermediate_loss)
        # Learned in log space: the outer optimiser then moves them by ratios, and they stay > 0.
        log_lrs = torch.tensor([float(x) for x in inner_lrs]).log()
        if per_step is not None:
            log_lrs = log_lrs.expand(per_step, -1).clone()
        if learn_lrs:
            self.log_lrs = nn.Parameter(log_lrs)
        else:
            self.register_buffer("log_lrs", log_lrs)
        if learn_temperature:
            self.log_temperature = nn.Parameter(torch.zeros(()))
        else:
            self.register_buffer("log_temperature", torch.zeros(()))

    def inner_lrs(self) -> torch.Tensor:
        """The inner learning rates, > 0: ``[2]`` (FC1, FC2) or ``[steps, 2]`` (per step)."""
        return self.log_lrs.exp()

    def episode(
        self,
        support_x: torch.Tensor,
        support_y: torch.Tensor,
        query_x: torch.Tensor,
        query_y: torch.Tensor,
        steps: int,
        **options: Any,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One meta-batch: ``support_x [T, S, 1, 28, 28]``, ``query_x [T, Q, 1, 28, 28]``;
        ``options``: those of :meth:`head_episode` (``second_order``, ``programmer``,
        ``weight_max``, ``generator``).

        Returns the outer loss (mean query cross-entropy after ``steps`` updates, a scalar with
        a graph to every parameter) and the per-task query accuracy ``[T]`` after the last step.
        Features of all images are computed in one extractor pass.
        """
        t, s = support_x.shape[:2]
        q = query_x.shape[1]
        images = torch.cat([support_x.flatten(0, 1), query_x.flatten(0, 1)])
        feats = self.net.features(images)
        return self.head_episode(
            feats[: t * s].view(t, s, -1),
            support_y,
            feats[t * s :].view(t, q, -1),
            query_y,
            steps,
            **options,
        )

    def head_episode(
        self,
        support_features: torch.Tensor,
        support_y: torch.Tensor,
        query_features: torch.Tensor,
        query_y: torch.Tensor,
        steps: int,
        *,
        second_order: bool = False,
        programmer: WeightProgrammer | None = None,
        weight_max: tuple[float, float] | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`episode` from features ``[T, S, F]`` / ``[T, Q, F]`` instead of images: the
        outer loss reaches the FC initialisation and the inner rates (and the extractor only
        if the features carry its graph)."""
        t = support_features.shape[0]
        res = adapt(
            support_features,
            support_y,
            self.net.fc1.weight.expand(t, -1, -1),
            self.net.fc2.weight.expand(t, -1, -1),
            self.inner_lrs(),
            steps,
            second_order=second_order,
            programmer=programmer,
            weight_max=weight_max,
            generator=generator,
        )
        temperature = self.log_temperature.exp()
        logits = head_forward(query_features, res.fc1[-1], res.fc2[-1])
        loss = _task_loss(logits * temperature, query_y) / t
        if self.intermediate_loss > 0:
            for w1, w2 in zip(res.fc1[1:-1], res.fc2[1:-1], strict=True):
                earlier = head_forward(query_features, w1, w2) * temperature
                loss = loss + self.intermediate_loss * _task_loss(earlier, query_y) / t
        return loss, _accuracy(logits.detach(), query_y)


@torch.no_grad()
def evaluate_features(
    tasks: Tasks,
    fc1: torch.Tensor,
    fc2: torch.Tensor,
    inner_lrs: torch.Tensor,
    steps: int,
    *,
    programmer: WeightProgrammer | None = None,
    weight_max: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Query accuracy ``[steps + 1, T]`` after 0..steps updates from ``fc1 [H, F]``, ``fc2 [C,
    H]`` (shared initialisation), batched over ``tasks`` given as features (no extractor;
    e.g. :class:`~memlearn.meta.inner.HeadTasks`)."""
    t = tasks.support_x.shape[0]
    res = adapt(
        tasks.support_x,
        tasks.support_y,
        fc1.detach().expand(t, -1, -1),
        fc2.detach().expand(t, -1, -1),
        inner_lrs.detach(),
        steps,
        programmer=programmer,
        weight_max=weight_max,
        generator=generator,
    )
    return torch.stack(
        [
            _accuracy(head_forward(tasks.query_x, w1.detach(), w2.detach()), tasks.query_y)
            for w1, w2 in zip(res.fc1, res.fc2, strict=True)
        ]
    )
