"""Every weight holder runs the same inner loop: with nothing lost in how the weights are held,
they agree."""

from __future__ import annotations

import torch
from test_loop import LRS, synthetic_tasks

from memlearn.meta.inner import HeadTasks, inner_loop
from memlearn.meta.maml import adapt
from memlearn.onchip import head
from memlearn.onchip.calibration import quantised_adapt
from memlearn.onchip.mapping import uniform_levels


def test_noise_free_quantised_head_with_many_levels_follows_the_float_head() -> None:
    sx, sy, qx, qy, ws = synthetic_tasks(8, seed=3)
    soft_acc, soft_loss = head.software_adapt(HeadTasks(sx, sy, qx, qy), ws, LRS, 4)
    full = [
        2.0 * p for p in head.weight_peaks(HeadTasks(sx, sy, qx, qy), ws, LRS, 4)
    ]  # nothing clips
    levels = uniform_levels(10e-6, 150e-6, 2**15)
    for policy in ("accumulate", "verify"):
        acc, loss = quantised_adapt(HeadTasks(sx, sy, qx, qy), ws, LRS, 4, full, levels, policy)
        torch.testing.assert_close(loss, soft_loss, rtol=0, atol=2e-3)
        assert (acc - soft_acc).abs().mean() < 0.02
    # and with a few levels they do not agree: the test can tell the holders apart
    _, coarse = quantised_adapt(
        HeadTasks(sx, sy, qx, qy), ws, LRS, 4, full, levels[::4681], "verify"
    )
    assert (coarse - soft_loss).abs().max() > 2e-3


def test_maml_programmed_head_follows_the_float_head() -> None:
    """MAML's holder (autograd gradients, nn.Linear orientation) and the float head (the
    hand-written gradient, array orientation) take the same steps."""
    sx, sy, qx, qy, (w1, w2) = synthetic_tasks(5, seed=4)
    rates = [[0.7, 0.4], [0.3, 0.9]]
    t = sx.shape[0]
    res = adapt(sx, sy, w1.T.expand(t, -1, -1), w2.T.expand(t, -1, -1), torch.tensor(rates), 3)
    holder = head.FloatHead(head.per_task([w1, w2], t))
    inner_loop(holder, HeadTasks(sx, sy, qx, qy), rates, 3, head.gradients)
    torch.testing.assert_close(res.fc1[-1].detach().transpose(1, 2), holder.weights[0])
    torch.testing.assert_close(res.fc2[-1].detach().transpose(1, 2), holder.weights[1])
    assert not torch.allclose(holder.weights[1], w2.expand(t, -1, -1))
