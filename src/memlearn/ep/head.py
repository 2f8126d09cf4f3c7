"""The Omniglot chip's FC head adapted by equilibrium propagation instead of backprop.

The head (``fc1``: features -> hidden, ReLU, ``fc2``: hidden -> class logits, no biases; weights
in array orientation ``[tasks, in, out]``, :mod:`memlearn.onchip.head`) is read as a layered
energy-based network: hidden states ``s >= 0`` with energy ``|s|^2 / 2 - s . (x W_0)`` (ReLU
states: the minimiser over ``s >= 0`` is ``relu(x W_0)``, so the free equilibrium IS the
deployed forward pass) and the cross-entropy read-out ``p = softmax(s W_1)`` outside the energy
(Laborieux et al. 2021).  Each update of the inner loop (:func:`memlearn.meta.inner.inner_loop`):

1. free phase: ``s_0 = relu(pre_0)``, the hidden pre-activations the holder measured;
2. two nudged phases ``b = +beta, -beta``: the input drive ``x W_0`` measured once per phase,
   then ``t_nudge`` fixed-point steps ``s <- relu(x W_0 + b (t - p(s)) W_1^T)`` with
   ``p(s) = softmax(s W_1)`` measured at every step;
3. the local EP estimate (symmetric nudging): ``g_0 = -x^T (s_+ - s_-) / (2 beta B)``,
   ``g_1 = (s_+^T (p_+ - t) + s_-^T (p_- - t)) / (2 B)``; the inner loop takes ``w - lr g``.

On chips every product ``a W_l`` is an analog read of array ``l``
(:func:`memlearn.onchip.loop.analog_forward`, charged to the update's energy); the top-down
``(t - p) W_1^T`` (16 x 5 weights) is computed by the computer from the weights it read back at
the start of the step: the :class:`~memlearn.chip.base.Chip` interface has no columns-to-rows
read.  The update reaches the cells through the deployment's policy, as the gradient loop's.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

from memlearn.meta.inner import Gradient

HEAD_BETA = 0.5  # [E] nudging strength; the MNIST default (Laborieux et al. 2021)
HEAD_T_NUDGE = 10  # [E] fixed-point steps per nudged phase; the MNIST default (T2)

Forward = Callable[[int, torch.Tensor], torch.Tensor]
"""``forward(l, a) -> a W_l``: ``[T, B, in_l] -> [T, B, out_l]``, exact or measured."""


def check_head_ep(beta: float, t_nudge: int) -> None:
    """``ValueError`` for a nudging strength or step count that cannot work."""
    if not (beta > 0 and beta == beta and beta != float("inf")):
        raise ValueError(f"beta must be a finite number > 0 (the nudging strength), got {beta}")
    if isinstance(t_nudge, bool) or not isinstance(t_nudge, int) or t_nudge < 1:
        raise ValueError(f"t_nudge must be an integer >= 1, got {t_nudge!r}")


def ep_head_gradient(
    forward: Forward | None = None, beta: float = HEAD_BETA, t_nudge: int = HEAD_T_NUDGE
) -> Gradient:
    """A :data:`~memlearn.meta.inner.Gradient` giving the EP estimate (module docstring) of the
    mean cross-entropy's gradient for a two-layer head; ``forward`` measures the products (a
    chip's arrays), ``None``: exact products with the weights the holder read."""
    check_head_ep(beta, t_nudge)

    def gradient(
        x: torch.Tensor, pre: list[torch.Tensor], w: list[torch.Tensor], y: torch.Tensor
    ) -> list[torch.Tensor]:
        if len(w) != 2:
            raise ValueError(f"the EP head gradient is for a two-layer head, got {len(w)} layers")
        product = forward if forward is not None else (lambda layer, a: torch.bmm(a, w[layer]))
        target = F.one_hot(y, w[1].shape[-1]).to(x.dtype)
        free = torch.relu(pre[0])
        top_down = w[1].transpose(1, 2)

        def nudged(b: float) -> tuple[torch.Tensor, torch.Tensor]:
            drive, s = product(0, x), free
            for _ in range(t_nudge):
                p = torch.softmax(product(1, s), dim=-1)
                s = torch.relu(drive + b * torch.bmm(target - p, top_down))
            return s, torch.softmax(product(1, s), dim=-1)

        (s_p, p_p), (s_m, p_m) = nudged(beta), nudged(-beta)
        batch = y.shape[1]
        g0 = -torch.bmm(x.transpose(1, 2), s_p - s_m) / (2 * beta * batch)
        g1 = (
            torch.bmm(s_p.transpose(1, 2), p_p - target)
            + torch.bmm(s_m.transpose(1, 2), p_m - target)
        ) / (2 * batch)
        return [g0, g1]

    return gradient


def chip_forward(holder) -> Forward:
    """The products of a :class:`~memlearn.onchip.loop.ChipHead`'s arrays, measured (per-vector
    scaling to row voltages, currents back to weight units: ``analog_forward``'s)."""
    from memlearn.onchip.loop import analog_forward

    def forward(layer: int, a: torch.Tensor) -> torch.Tensor:
        name, scale = holder.arrays[layer], holder.scales[layer]
        return analog_forward(holder.chip, [name], a, [scale])[0]

    return forward


def gradient_agreement(
    x: torch.Tensor, weights: list[torch.Tensor], y: torch.Tensor, gradient: Gradient
) -> list[float]:
    """Per layer, the mean over tasks of the cosine between ``gradient``'s estimate and the
    exact backprop gradient (:func:`memlearn.onchip.head.gradients`) at ``weights [T, in, out]``
    on the inputs ``x [T, B, in]``."""
    from memlearn.onchip.head import forward, gradients

    pre = forward(x, weights)
    exact, estimate = gradients(x, pre, weights, y), gradient(x, pre, weights, y)
    return [
        float(F.cosine_similarity(a.flatten(1), b.flatten(1), dim=1).mean())
        for a, b in zip(exact, estimate, strict=True)
    ]
