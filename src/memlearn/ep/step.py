"""One training step (EP or backprop) and the evaluation, on float weights or on arrays."""

from __future__ import annotations

import torch

from memlearn.ep.config import EPConfig
from memlearn.ep.dynamics import (
    FloatProducts,
    Products,
    backprop_gradient,
    ep_gradient,
    feedforward,
    readout,
    relax,
    zero_states,
)


def _set_phase(net: Products, name: str) -> None:
    if hasattr(net, "phase"):
        net.phase = name


def ep_step(
    net: Products, config: EPConfig, x: torch.Tensor, target: torch.Tensor
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Free phase, nudged phase(s) and the EP gradient estimate; returns ``(grads, scores)``
    with the class scores of the free equilibrium (``x [n, batch, in]``)."""
    n_weights = len(config.sizes) - 1
    kw = {"n_weights": n_weights, "output": config.output}
    _set_phase(net, "free")
    free = relax(
        net, x, zero_states(config.sizes, x.shape[0], x.shape[1], config.output),
        config.t_free, **kw,
    )  # fmt: skip
    scores = readout(net, free, config.output)
    _set_phase(net, "nudged")
    beta = config.beta
    plus = relax(net, x, free, config.t_nudge, beta=beta, target=target, **kw)
    if config.symmetric:
        minus = relax(net, x, free, config.t_nudge, beta=-beta, target=target, **kw)
        grads = ep_gradient(net, x, target, plus, minus, beta, -beta, config.output)
    else:
        grads = ep_gradient(net, x, target, plus, free, beta, 0.0, config.output)
    return grads, scores


def bp_step(
    net: Products, config: EPConfig, x: torch.Tensor, target: torch.Tensor
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Backprop through the feedforward net of the same weights; ``(grads, scores)``."""
    _set_phase(net, "forward_backward")
    return backprop_gradient(net, x, target, len(config.sizes) - 1, config.output)


def train_step(
    net: Products, config: EPConfig, x: torch.Tensor, labels: torch.Tensor
) -> torch.Tensor:
    """One update of ``net`` on images ``x [batch, in]``; returns correct predictions per chip.

    Float weights (:class:`FloatProducts`) take ``theta -= lr * grad``; an array network takes
    ``update(layer, -lr * grad)`` through its update scheme.
    """
    n = net.thetas[0].shape[0] if isinstance(net, FloatProducts) else net.config.chips
    xs = x.expand(n, -1, -1)
    target = torch.nn.functional.one_hot(labels, config.sizes[-1]).float()
    step = ep_step if config.rule == "ep" else bp_step
    grads, scores = step(net, config, xs, target)
    for layer, (grad, lr) in enumerate(zip(grads, config.lrs, strict=True)):
        if isinstance(net, FloatProducts):
            net.thetas[layer] = net.thetas[layer] - lr * grad
        else:
            net.update(layer, -lr * grad)
    return (scores.argmax(-1) == labels).sum(-1)


def predict(net: Products, config: EPConfig, x: torch.Tensor) -> torch.Tensor:
    """Predicted classes ``[n, batch]``: free equilibrium (EP) or feedforward pass (backprop)."""
    n = net.thetas[0].shape[0] if isinstance(net, FloatProducts) else net.config.chips
    xs = x.expand(n, -1, -1)
    n_weights = len(config.sizes) - 1
    if config.rule == "backprop":
        pre, s = feedforward(net, xs, n_weights)
        scores = pre[-1] if config.output == "ce" else s[-1]
    else:
        states = zero_states(config.sizes, n, x.shape[0], config.output)
        states = relax(net, xs, states, config.t_free, n_weights=n_weights, output=config.output)
        scores = readout(net, states, config.output)
    return scores.argmax(-1)
