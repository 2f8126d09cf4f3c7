"""Layered Hopfield-like network: energy, relaxation, the EP gradient estimate and backprop.

Layers ``s_0 = x`` (clamped input), hidden ``s_1 .. s_{L-1}`` and, for the ``mse`` output, a
dynamical output ``s_L``; with the ``ce`` output the output is a softmax read-out
``p = softmax(theta_{L-1} [s_{L-1}; 1])`` outside the energy (Laborieux et al. 2021).  Each weight
layer ``theta_l`` (``[n_chips, out, in + 1]``, bias in the last column) is reached only through
two products (a :class:`Products`): ``forward(l, s) = theta_l [s; 1]`` and the transposed
``backward(l, e) = W_l^T e`` (bias column dropped), so the same code runs in float or on arrays.

Energy (Scellier & Bengio, Front. Comput. Neurosci. 11:24, 2017, with hard-sigmoid
``rho(s) = clip(s, 0, 1)`` and states confined to ``[0, 1]``)::

    E = sum_{l dyn} ( |s_l|^2 / 2 - s_l . theta_{l-1} [s_{l-1}; 1] ),   F = E + beta * cost

``cost`` is ``CE(p, t)`` or ``|s_L - t|^2 / 2``.  Given its neighbours, ``E`` is a separable
quadratic in one layer, so ``s_l <- clip(h_l, 0, 1)`` with ``h_l = -dE/ds_l + s_l`` is its
exact minimiser over the box; odd and even layers do not interact, so updating all odd layers,
then all even ones, lowers ``E`` (and ``F`` for ``mse``) at every step.  The nudged ``ce`` step
``s_{L-1} <- clip(h + beta W^T (t - p))`` is a fixed-point step (not an exact minimiser).
Tensors: states ``[n_chips, batch, units]``, targets one-hot ``[batch, classes]``.
"""

from __future__ import annotations

from typing import Protocol

import torch


class Products(Protocol):
    """The two matrix products the dynamics need, per weight layer ``l``."""

    def forward(self, layer: int, s: torch.Tensor) -> torch.Tensor:
        """``theta_l [s; 1]``: ``[n, batch, in] -> [n, batch, out]``."""
        ...

    def backward(self, layer: int, e: torch.Tensor) -> torch.Tensor:
        """``W_l^T e``: ``[n, batch, out] -> [n, batch, in]``."""
        ...


def with_bias(s: torch.Tensor) -> torch.Tensor:
    """``[s; 1]`` along the last dimension."""
    return torch.cat((s, torch.ones_like(s[..., :1])), dim=-1)


def init_thetas(
    sizes: tuple[int, ...], n_chips: int, generator: torch.Generator
) -> list[torch.Tensor]:
    """Uniform ``±1/sqrt(fan_in)`` weights and biases (PyTorch ``nn.Linear`` default [S]), the same
    draw for every chip (one network, many chips)."""
    thetas = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:], strict=True):
        bound = 1.0 / fan_in**0.5
        w = (torch.rand(fan_out, fan_in + 1, generator=generator) * 2 - 1) * bound
        thetas.append(w.expand(n_chips, -1, -1).clone())
    return thetas


class FloatProducts:
    """Exact products of float weights ``thetas[l]`` (``[n, out, in + 1]``)."""

    def __init__(self, thetas: list[torch.Tensor]) -> None:
        self.thetas = thetas

    def forward(self, layer: int, s: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nbi,noi->nbo", with_bias(s), self.thetas[layer])

    def backward(self, layer: int, e: torch.Tensor) -> torch.Tensor:
        return torch.einsum("nbo,noi->nbi", e, self.thetas[layer][..., :-1])


def _dynamic(n_weights: int, output: str) -> int:
    """Number of dynamical layers (hidden, plus the output for ``mse``)."""
    return n_weights if output == "mse" else n_weights - 1


def relax(
    net: Products,
    x: torch.Tensor,
    states: list[torch.Tensor],
    steps: int,
    *,
    n_weights: int,
    output: str,
    beta: float = 0.0,
    target: torch.Tensor | None = None,
) -> list[torch.Tensor]:
    """``steps`` sweeps (odd layers, then even) from ``states``; returns the new states.

    ``x`` is ``[n, batch, in]``; ``states[k]`` is layer ``k + 1``.  The input drive
    ``theta_0 [x; 1]`` is measured once per call (the input is clamped during a phase).
    """
    dyn = _dynamic(n_weights, output)
    s = [x] + [t.clone() for t in states]
    drive0 = net.forward(0, x)
    for _ in range(steps):
        for parity in (1, 0):
            for layer in range(1, dyn + 1):
                if layer % 2 != parity:
                    continue
                h = drive0 if layer == 1 else net.forward(layer - 1, s[layer - 1])
                if layer < dyn:
                    h = h + net.backward(layer, s[layer + 1])
                if beta != 0.0 and target is not None:
                    if output == "ce" and layer == dyn:
                        p = torch.softmax(net.forward(layer, s[layer]), dim=-1)
                        h = h + beta * net.backward(layer, target - p)
                    elif output == "mse" and layer == dyn:
                        h = (h + beta * target) / (1.0 + beta)
                s[layer] = h.clamp(0.0, 1.0)
    return s[1:]


def zero_states(sizes: tuple[int, ...], n: int, batch: int, output: str) -> list[torch.Tensor]:
    """All-zero initial states of the dynamical layers."""
    dyn = _dynamic(len(sizes) - 1, output)
    return [torch.zeros(n, batch, sizes[k]) for k in range(1, dyn + 1)]


def energy(
    thetas: list[torch.Tensor],
    x: torch.Tensor,
    states: list[torch.Tensor],
    *,
    output: str,
    beta: float = 0.0,
    target: torch.Tensor | None = None,
) -> torch.Tensor:
    """Total energy ``F = E + beta * cost`` per chip and image, ``[n, batch]`` (float weights)."""
    s = [x] + list(states)
    total = torch.zeros(x.shape[:2], dtype=x.dtype)
    for layer in range(1, len(s)):
        drive = torch.einsum("nbi,noi->nbo", with_bias(s[layer - 1]), thetas[layer - 1])
        total = total + 0.5 * (s[layer] ** 2).sum(-1) - (s[layer] * drive).sum(-1)
    if beta != 0.0 and target is not None:
        total = total + beta * cost(thetas, states, target, output)
    return total


def readout(net: Products, states: list[torch.Tensor], output: str) -> torch.Tensor:
    """Class scores ``[n, batch, classes]``: logits (``ce``) or the output layer (``mse``)."""
    if output == "mse":
        return states[-1]
    return net.forward(len(states), states[-1])


def cost(
    thetas: list[torch.Tensor], states: list[torch.Tensor], target: torch.Tensor, output: str
) -> torch.Tensor:
    """Per-image cost ``[n, batch]``: cross-entropy of the read-out, or half squared error."""
    scores = readout(FloatProducts(thetas), states, output)
    if output == "mse":
        return 0.5 * ((scores - target) ** 2).sum(-1)
    return -(target * torch.log_softmax(scores, dim=-1)).sum(-1)


def _outer(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Batch mean of ``a [b; 1]^T``: ``[n, out, in + 1]``."""
    return torch.einsum("nbo,nbi->noi", a, with_bias(b)) / a.shape[1]


def ep_gradient(
    net: Products,
    x: torch.Tensor,
    target: torch.Tensor,
    states_a: list[torch.Tensor],
    states_b: list[torch.Tensor],
    beta_a: float,
    beta_b: float,
    output: str,
) -> list[torch.Tensor]:
    """EP estimate of ``dLoss/dtheta_l`` from two equilibria at ``beta_a != beta_b``:
    ``(dF/dtheta(beta_a) - dF/dtheta(beta_b)) / (beta_a - beta_b)``, local in each layer's
    pre- and post-synaptic states (``dF/dtheta_l = -s_{l+1} [s_l; 1]^T``); the ``ce`` read-out
    layer's term is ``beta (p - t) [s; 1]^T``."""
    n_weights = len(states_a) + (1 if output == "ce" else 0)
    sa, sb = [x] + list(states_a), [x] + list(states_b)
    grads = []
    for layer in range(n_weights):
        if output == "ce" and layer == n_weights - 1:
            pa = torch.softmax(net.forward(layer, sa[layer]), dim=-1)
            pb = torch.softmax(net.forward(layer, sb[layer]), dim=-1)
            da = beta_a * _outer(pa - target, sa[layer])
            db = beta_b * _outer(pb - target, sb[layer])
        else:
            da = -_outer(sa[layer + 1], sa[layer])
            db = -_outer(sb[layer + 1], sb[layer])
        grads.append((da - db) / (beta_a - beta_b))
    return grads


def feedforward(
    net: Products, x: torch.Tensor, n_weights: int
) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Feedforward pass of the same layers: pre-activations ``a_l`` and states ``s_l``
    (``s_0 = x``; the last pre-activation is the output's)."""
    s, pre = [x], []
    for layer in range(n_weights):
        a = net.forward(layer, s[-1])
        pre.append(a)
        s.append(a.clamp(0.0, 1.0))
    return pre, s


def backprop_gradient(
    net: Products, x: torch.Tensor, target: torch.Tensor, n_weights: int, output: str
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Backprop gradients of the feedforward net (same weights, hard-sigmoid hidden units) and
    its class scores; the error goes down through the transposed products ``W^T delta``."""
    pre, s = feedforward(net, x, n_weights)
    if output == "ce":
        scores = pre[-1]
        delta = torch.softmax(scores, dim=-1) - target
    else:
        scores = s[-1]
        inside = ((pre[-1] > 0) & (pre[-1] < 1)).to(x.dtype)
        delta = (s[-1] - target) * inside
    grads = [torch.empty(0)] * n_weights
    for layer in range(n_weights - 1, -1, -1):
        grads[layer] = _outer(delta, s[layer])
        if layer > 0:
            inside = ((pre[layer - 1] > 0) & (pre[layer - 1] < 1)).to(x.dtype)
            delta = net.backward(layer, delta) * inside
    return grads, scores
