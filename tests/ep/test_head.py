"""EP on the Omniglot head: the estimate tends to the backprop gradient, the CLI runs end to end."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from memlearn.cli.main import app
from memlearn.ep.head import ep_head_gradient, gradient_agreement
from memlearn.onchip.head import forward, gradients


def _head(seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 10, 32, generator=g, dtype=torch.float64)
    w = [
        torch.randn(3, 32, 16, generator=g, dtype=torch.float64) * 0.3,
        torch.randn(3, 16, 5, generator=g, dtype=torch.float64),
    ]
    return x, w, torch.randint(0, 5, (3, 10), generator=g)


def test_ep_head_gradient_tends_to_backprop_as_beta_shrinks():
    x, w, y = _head()
    pre = forward(x, w)
    exact = gradients(x, pre, w, y)
    errors = []
    for beta in (0.5, 1e-4):
        ep = ep_head_gradient(None, beta, 30)(x, pre, w, y)
        errors.append(max(float((a - b).norm() / a.norm()) for a, b in zip(exact, ep, strict=True)))
    assert errors[0] > 0.05  # a large nudge is biased (the test can fail) ...
    assert errors[1] < 1e-5  # ... and a small one gives the gradient
    assert min(gradient_agreement(x, w, y, ep_head_gradient(None, 1e-4, 30))) > 0.99999


def test_bad_nudging_is_refused():
    with pytest.raises(ValueError, match="beta"):
        ep_head_gradient(None, 0.0, 10)
    with pytest.raises(ValueError, match="t_nudge"):
        ep_head_gradient(None, 0.5, 0)
    result = CliRunner().invoke(app, ["ep", "adapt-head", "--beta", "-1"])
    assert result.exit_code == 2 and "beta must be" in result.output


def test_adapt_head_cli_json(shared_data):
    args = ["ep", "adapt-head", "--tasks", "3", "--chips", "3", "--steps", "2", "--split",
            "train", "--json"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    for where in ("software", "chip"):
        for rule in ("gradient", "ep"):
            curve = out[where][rule]["accuracy_by_step"]
            assert len(curve) == 3 and all(0.0 <= a <= 1.0 for a in curve)
    # the same deployment: before any update, EP and the gradient loop score alike
    assert (
        out["software"]["ep"]["accuracy_by_step"][0]
        == out["software"]["gradient"]["accuracy_by_step"][0]
    )
    assert (
        out["chip"]["ep"]["accuracy_by_step"][0] == out["chip"]["gradient"]["accuracy_by_step"][0]
    )
    for rule in ("gradient", "ep"):
        assert out["chip"][rule]["writes_per_adaptation"] > 0
        assert out["chip"][rule]["energy_per_adaptation_j"] > 0
    # EP reads every array in both nudged phases: more read energy than the gradient loop
    assert (out["chip"]["ep"]["energy_breakdown_j"]["read"]
            > out["chip"]["gradient"]["energy_breakdown_j"]["read"])  # fmt: skip
    assert out["config"]["tasks"] == 3
