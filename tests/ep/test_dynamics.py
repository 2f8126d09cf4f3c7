"""Software EP: energy descent, agreement with backprop as beta -> 0, symmetric nudging."""

from __future__ import annotations

import torch

from memlearn.ep.dynamics import (
    FloatProducts,
    backprop_gradient,
    cost,
    energy,
    ep_gradient,
    relax,
)


def _net(sizes, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    thetas = [
        (torch.rand(1, o, i + 1, generator=g, dtype=torch.float64) * 2 - 1) * scale
        for i, o in zip(sizes[:-1], sizes[1:], strict=True)
    ]
    x = torch.rand(1, 7, sizes[0], generator=g, dtype=torch.float64)
    labels = torch.randint(0, sizes[-1], (7,), generator=g)
    target = torch.nn.functional.one_hot(labels, sizes[-1]).double()
    return thetas, x, target


def _zeros(sizes, output, x):
    dyn = len(sizes) - 1 if output == "mse" else len(sizes) - 2
    return [torch.zeros(1, x.shape[1], sizes[k], dtype=torch.float64) for k in range(1, dyn + 1)]


def test_relaxation_lowers_the_energy_at_every_step():
    sizes = (6, 5, 4, 3)
    for output, beta in (("mse", 0.0), ("mse", 0.4), ("mse", -0.4), ("ce", 0.0)):
        thetas, x, target = _net(sizes, seed=1, scale=1.5)
        net = FloatProducts(thetas)
        states = _zeros(sizes, output, x)
        kw = {"n_weights": 3, "output": output, "beta": beta, "target": target}
        previous = energy(thetas, x, states, output=output, beta=beta, target=target)
        moved = 0.0
        for _ in range(15):
            new = relax(net, x, states, 1, **kw)
            e = energy(thetas, x, new, output=output, beta=beta, target=target)
            assert bool((e <= previous + 1e-12).all()), (output, beta)
            moved += float(sum((a - b).abs().sum() for a, b in zip(new, states, strict=True)))
            states, previous = new, e
        assert moved > 0.1  # the states did move


def _true_gradient(thetas, x, target, output, steps=200):
    """dLoss/dtheta at the free equilibrium, by differentiating through a long relaxation."""
    leaves = [t.clone().requires_grad_(True) for t in thetas]
    states = _zeros((x.shape[-1],) + tuple(t.shape[1] for t in thetas), output, x)
    states = relax(FloatProducts(leaves), x, states, steps, n_weights=len(thetas), output=output)
    loss = cost(leaves, states, target, output).mean()
    return torch.autograd.grad(loss, leaves)


def _ep(thetas, x, target, output, beta, symmetric, steps=200):
    net = FloatProducts(thetas)
    kw = {"n_weights": len(thetas), "output": output}
    sizes = (x.shape[-1],) + tuple(t.shape[1] for t in thetas)
    free = relax(net, x, _zeros(sizes, output, x), steps, **kw)
    plus = relax(net, x, free, steps, beta=beta, target=target, **kw)
    if symmetric:
        minus = relax(net, x, free, steps, beta=-beta, target=target, **kw)
        return ep_gradient(net, x, target, plus, minus, beta, -beta, output)
    return ep_gradient(net, x, target, plus, free, beta, 0.0, output)


def _rel_error(a, b):
    num = sum(float((u - v).pow(2).sum()) for u, v in zip(a, b, strict=True)) ** 0.5
    return num / sum(float(v.pow(2).sum()) for v in b) ** 0.5


def test_ep_update_matches_the_backprop_gradient_as_beta_goes_to_zero():
    # Deep net with top-down feedback (ce), gradient through the relaxation as reference.
    thetas, x, target = _net((6, 5, 4, 3), seed=2, scale=0.8)
    true = _true_gradient(thetas, x, target, "ce")
    err = _rel_error(_ep(thetas, x, target, "ce", 1e-3, True), true)
    assert err < 1e-3, err  # measured ~1e-6
    # One hidden layer: EP equals plain backprop of the feedforward net.
    thetas, x, target = _net((6, 5, 3), seed=3)
    bp, _ = backprop_gradient(FloatProducts(thetas), x, target, 2, "ce")
    assert _rel_error(_ep(thetas, x, target, "ce", 1e-3, True), bp) < 1e-4


def test_symmetric_nudging_removes_the_first_order_bias():
    thetas, x, target = _net((6, 5, 4, 3), seed=4, scale=0.8)
    true = _true_gradient(thetas, x, target, "ce")
    one = [_rel_error(_ep(thetas, x, target, "ce", b, False), true) for b in (0.02, 0.01)]
    sym = [_rel_error(_ep(thetas, x, target, "ce", b, True), true) for b in (0.02, 0.01)]
    assert 0.4 < one[1] / one[0] < 0.6  # one-sided error ~ beta (first order)
    assert sym[1] / sym[0] < 0.3  # symmetric error ~ beta^2
    assert sym[0] < one[0] / 10  # measured: 2e-4 vs 1.1e-2 at beta = 0.02
