"""The one inner loop: SGD arithmetic on a known case, rates per step, the observer, bad input."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from memlearn.meta.inner import HeadTasks, inner_loop


class LinearHead:
    """One layer ``logits = x @ W`` with float weights ``[T, in, out]``."""

    def __init__(self, w: torch.Tensor) -> None:
        self.w = w
        self.writes: list[int] = []

    def read(self) -> list[torch.Tensor]:
        return [self.w]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [torch.bmm(x, self.w)]

    def write(self, step: int, read: list[torch.Tensor], new: list[torch.Tensor]) -> None:
        self.writes.append(step)
        self.w = new[0]


def mean_ce_gradient(x, pre, weights, y):
    """d/dW of the mean cross-entropy of ``x @ W``: ``x^T (softmax - onehot) / B``."""
    delta = (torch.softmax(pre[-1], -1) - F.one_hot(y, pre[-1].shape[-1])) / y.shape[1]
    return [torch.bmm(x.transpose(1, 2), delta)]


def _identity_tasks(c: int = 4) -> HeadTasks:
    """One task, one one-hot input per class, labelled with its own class."""
    x = torch.eye(c)[None]
    y = torch.arange(c)[None]
    return HeadTasks(x, y, x, y)


def test_one_step_from_zero_weights_is_the_hand_computed_sgd_step() -> None:
    """From W = 0 the logits are 0, the softmax is 1/C everywhere, and with one-hot inputs the
    gradient is (1/C - I) / C: one step of rate lr gives W = lr (I - 1/C) / C."""
    c, lr = 4, 0.5
    holder = LinearHead(torch.zeros(1, c, c))
    inner_loop(holder, _identity_tasks(c), [lr], 1, mean_ce_gradient)
    expected = lr * (torch.eye(c) - 1.0 / c) / c
    torch.testing.assert_close(holder.w[0], expected, rtol=0, atol=1e-7)
    assert holder.writes == [0]


def test_each_step_uses_its_own_rate_and_the_observer_sees_every_step() -> None:
    tasks = _identity_tasks(3)
    seen: list[tuple[int, torch.Tensor]] = []
    holder = LinearHead(torch.zeros(1, 3, 3))
    rates = [[0.0], [1.0], [0.0]]  # only the second step moves the weights
    inner_loop(holder, tasks, rates, 4, mean_ce_gradient,
               rates=lambda table, k: table[min(k, len(table) - 1)],
               observe=lambda k, h: seen.append((k, h.read()[0].clone())))  # fmt: skip
    assert [k for k, _ in seen] == [0, 1, 2, 3, 4] and holder.writes == [0, 1, 2, 3]
    assert torch.equal(seen[1][1], seen[0][1]) and not torch.equal(seen[2][1], seen[1][1])
    assert torch.equal(seen[4][1], seen[2][1])  # the last row (0) is reused by later steps


def test_zero_steps_only_observes_and_negative_steps_are_refused() -> None:
    holder = LinearHead(torch.ones(1, 3, 3))
    calls: list[int] = []
    inner_loop(holder, _identity_tasks(3), [1.0], 0, mean_ce_gradient,
               observe=lambda k, h: calls.append(k))  # fmt: skip
    assert calls == [0] and holder.writes == [] and torch.equal(holder.w, torch.ones(1, 3, 3))
    with pytest.raises(ValueError, match="steps must be >= 0"):
        inner_loop(holder, _identity_tasks(3), [1.0], -1, mean_ce_gradient)
