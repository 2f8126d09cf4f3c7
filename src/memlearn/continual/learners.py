"""Learners trained in sequence, each batched over chips: the metaplastic binarised network
(on chip memories or in software), and the float baselines (plain, EWC).

Every learner has ``step(x, y)`` (one minibatch update), ``accuracy(x, y, task) -> [n_chips]``
and ``end_task(task)`` (what happens after a task is learned).  As in Laborieux et al. 2021
(their "task" scenario), batch norm is task-dependent: after each task its parameters and
statistics are saved, and a task already learned is evaluated with its own (on the chip: one
threshold and sign bit per neuron and task, in the controller's registers, ``TaskNorms``).
The optimiser's moments restart at each task, as the authors' code recreates Adam per task.
The binarised network's hidden weights follow Adam (Kingma & Ba 2015, as in Laborieux et al.
2021), computed by the digital controller, whose moment estimates stay in its registers (not
in the arrays); the update actually applied is
``metaplastic_update(W_h, -lr m_hat / (sqrt(v_hat) + eps), m)``.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from memlearn.continual.benchmarks import Task
from memlearn.continual.metaplastic import metaplastic_update
from memlearn.continual.network import forward, init_float, init_hidden, make_norms
from memlearn.continual.store import ChipStore, SoftwareStore

BNN_LR = 0.005
"""[P] Adam learning rate of the binarised network's hidden weights (Laborieux et al. 2021)."""
LR_STEPS = 14.0
"""[V] learning rate x steps per task: hidden weights must travel far enough for f_meta to
consolidate them, and Laborieux et al. 2021 take 24,000 steps per task at 0.005; runs with
fewer steps scale the rate (``bnn_lr``).  Chosen on the validation split (10,000 held-out
training images; README): at 200 steps per task, 0.07 among 0.02, 0.05, 0.07 and 0.1."""
BNN_LR_MAX = 0.1
"""[E] the largest scaled rate (a few LSBs of the 8-bit hidden words per step at weight_max = 3)."""
FLOAT_LR = 1e-3
"""[E] Adam learning rate of the float baselines (PyTorch's default)."""
ADAM_BETAS = (0.9, 0.999)
ADAM_EPS = 1e-8
INIT_WIDTH = 0.05
"""[P] hidden weights start uniform in +-0.05 (Laborieux et al. 2021's code: width 0.1,
uniform in [-width/2, width/2])."""
FISHER_SAMPLES = 500
"""[E] training images per task whose squared gradients estimate EWC's diagonal Fisher."""


def bnn_lr(steps_per_task: int) -> float:
    """Adam rate of the hidden weights for ``steps_per_task``: ``LR_STEPS / steps`` within
    ``[BNN_LR, BNN_LR_MAX]``."""
    return min(BNN_LR_MAX, max(BNN_LR, LR_STEPS / steps_per_task))


def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Sum over chips of each chip's mean cross-entropy (chips learn independently)."""
    n_chips = logits.shape[0]
    return F.cross_entropy(logits.flatten(0, 1), y.repeat(n_chips)) * n_chips


def _accuracy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return (logits.argmax(-1) == y).float().mean(1)


@torch.no_grad()
def _apply(params: list[torch.Tensor], updates: list[torch.Tensor]) -> None:
    for p, u in zip(params, updates, strict=True):
        p += u


class TaskNorms:
    """Task-dependent batch norm: the state of ``norms`` saved at the end of every task;
    ``use(task)`` evaluates a task already learned with its own saved state."""

    def __init__(self, norms: nn.ModuleList, enabled: bool = True) -> None:
        self.norms, self.enabled = norms, enabled
        self.saved: list[dict[str, torch.Tensor]] = []

    def save(self) -> None:
        self.saved.append(copy.deepcopy(self.norms.state_dict()))

    @contextlib.contextmanager
    def of(self, task: int | None) -> Iterator[None]:
        """Within the block, task ``task``'s saved state if it has one; the current after."""
        if not self.enabled or task is None or task >= len(self.saved):
            yield
            return
        current = copy.deepcopy(self.norms.state_dict())
        self.norms.load_state_dict(self.saved[task])
        try:
            yield
        finally:
            self.norms.load_state_dict(current)


class Adam:
    """Elementwise Adam on a list of tensors; ``step(grads)`` returns the updates."""

    def __init__(self, shapes: list[torch.Size], lr: float) -> None:
        self.lr, self.t = lr, 0
        self.m = [torch.zeros(s) for s in shapes]
        self.v = [torch.zeros(s) for s in shapes]

    def reset(self) -> None:
        """Forget the moment estimates (a new task starts a new optimiser)."""
        self.t = 0
        for m, v in zip(self.m, self.v, strict=True):
            m.zero_()
            v.zero_()

    def step(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:
        self.t += 1
        b1, b2 = ADAM_BETAS
        out = []
        for m, v, g in zip(self.m, self.v, grads, strict=True):
            m.lerp_(g, 1 - b1)
            v.mul_(b2).addcmul_(g, g, value=1 - b2)
            m_hat, v_hat = m / (1 - b1**self.t), v / (1 - b2**self.t)
            out.append(-self.lr * m_hat / (v_hat.sqrt() + ADAM_EPS))
        return out


class BinaryLearner:
    """The binarised network with metaplastic hidden weights in weight stores."""

    def __init__(
        self,
        sizes: tuple[int, ...],
        n_chips: int,
        meta: float,
        generator: torch.Generator,
        chip: dict | None = None,
        lr: float = BNN_LR,
        task_norms: bool = True,
        batch_stats: bool = False,
    ) -> None:
        self.meta, self.binary = meta, True
        hidden = init_hidden(n_chips, sizes, INIT_WIDTH, generator)
        if chip is None:
            self.stores = [SoftwareStore(w) for w in hidden]
        else:
            self.stores = [ChipStore(w, generator=generator, **chip) for w in hidden]
        self.norms = make_norms(n_chips, sizes, batch_stats)
        self.task_norms = TaskNorms(self.norms, task_norms)
        self.norm_params = list(self.norms.parameters())
        self.norm_adam = Adam([p.shape for p in self.norm_params], lr)
        self.adam = Adam([w.shape for w in hidden], lr)

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.norms.train()
        wb = [s.forward_weights(len(x)).requires_grad_(True) for s in self.stores]
        loss = _loss(forward(x.float(), wb, self.norms, binary=True), y)
        grads = torch.autograd.grad(loss, [*wb, *self.norm_params])
        _apply(self.norm_params, self.norm_adam.step(list(grads[len(wb) :])))
        updates = self.adam.step(list(grads[: len(wb)]))
        for store, update in zip(self.stores, updates, strict=True):
            w_h = store.hidden()
            store.write(w_h + metaplastic_update(w_h, update, self.meta))

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor, task: int | None = None) -> torch.Tensor:
        self.norms.eval()
        wb = [s.snapshot() for s in self.stores]
        with self.task_norms.of(task):
            return _accuracy(forward(x.float(), wb, self.norms, binary=True), y)

    def end_task(self, task: Task) -> None:
        """Save the task's batch norm, restart the optimiser (metaplasticity itself needs no
        task boundary)."""
        self.task_norms.save()
        self.adam.reset()
        self.norm_adam.reset()


class FloatLearner:
    """A float ReLU network of the same sizes trained in sequence; ``ewc_lambda > 0`` adds
    elastic weight consolidation (Kirkpatrick et al., PNAS 2017):
    ``lambda/2 sum_k F_k (theta - theta*_k)^2`` over the tasks k already learned."""

    def __init__(
        self,
        sizes: tuple[int, ...],
        n_chips: int,
        generator: torch.Generator,
        ewc_lambda: float = 0.0,
        lr: float = FLOAT_LR,
        task_norms: bool = True,
        batch_stats: bool = False,
    ) -> None:
        self.weights = init_float(n_chips, sizes, generator)
        self.norms = make_norms(n_chips, sizes, batch_stats)
        self.task_norms = TaskNorms(self.norms, task_norms)
        self.params = [*self.weights, *self.norms.parameters()]
        self.adam = Adam([p.shape for p in self.params], lr)
        self.ewc_lambda, self.generator = ewc_lambda, generator
        self.anchors: list[tuple[list[torch.Tensor], list[torch.Tensor]]] = []

    def _penalty(self) -> torch.Tensor:
        total = torch.zeros(())
        for fisher, anchor in self.anchors:
            for w, f, a in zip(self.weights, fisher, anchor, strict=True):
                total = total + (f * (w - a) ** 2).sum()
        return 0.5 * self.ewc_lambda * total

    def step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.norms.train()
        loss = _loss(forward(x.float(), self.weights, self.norms, binary=False), y)
        if self.anchors:
            loss = loss + self._penalty()
        _apply(self.params, self.adam.step(list(torch.autograd.grad(loss, self.params))))

    @torch.no_grad()
    def accuracy(self, x: torch.Tensor, y: torch.Tensor, task: int | None = None) -> torch.Tensor:
        self.norms.eval()
        with self.task_norms.of(task):
            return _accuracy(forward(x.float(), self.weights, self.norms, binary=False), y)

    def end_task(self, task: Task) -> None:
        """EWC: estimate the diagonal Fisher on the task (batches of 10 images, squared mean
        gradients times 10) and anchor the weights; save the task's batch norm and restart
        the optimiser."""
        self.task_norms.save()
        self.adam.reset()
        if self.ewc_lambda <= 0:
            return
        n = min(FISHER_SAMPLES, len(task.train_x))
        idx = torch.randperm(len(task.train_x), generator=self.generator)[:n]
        fisher = [torch.zeros_like(w) for w in self.weights]
        self.norms.eval()
        batches = idx.split(10)
        for b in batches:
            logits = forward(task.train_x[b].float(), self.weights, self.norms, binary=False)
            grads = torch.autograd.grad(_loss(logits, task.train_y[b]), self.weights)
            for f, g in zip(fisher, grads, strict=True):
                f += g.detach() ** 2 * len(b) / len(batches)
        self.anchors.append((fisher, [w.detach().clone() for w in self.weights]))
