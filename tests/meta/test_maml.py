"""The head-only inner loop: plain SGD per task, second/first order, learned inner lrs."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from memlearn.meta.hardware import LevelProgrammer
from memlearn.meta.inner import HeadTasks
from memlearn.meta.maml import MetaLearner, adapt, evaluate_features
from memlearn.nn import FewShotNet


def _problem(seed: int = 0, t: int = 3, s: int = 10, f: int = 32, h: int = 16, c: int = 5):
    g = torch.Generator().manual_seed(seed)
    feats = torch.rand(t, s, f, generator=g)
    labels = torch.randint(0, c, (t, s), generator=g)
    w1 = torch.randn(h, f, generator=g) * 0.3
    w2 = torch.randn(c, h, generator=g) * 0.3
    return feats, labels, w1, w2


def test_inner_loop_is_plain_sgd_per_task() -> None:
    feats, labels, w1, w2 = _problem()
    lrs = torch.tensor([0.3, 0.7])
    res = adapt(feats, labels, w1.expand(3, -1, -1), w2.expand(3, -1, -1), lrs, steps=3)
    for t in range(3):  # the same updates done by hand, one task at a time
        a, b = w1.clone().requires_grad_(True), w2.clone().requires_grad_(True)
        for _ in range(3):
            loss = F.cross_entropy(torch.relu(feats[t] @ a.T) @ b.T, labels[t])
            ga, gb = torch.autograd.grad(loss, (a, b))
            a = (a - 0.3 * ga).detach().requires_grad_(True)
            b = (b - 0.7 * gb).detach().requires_grad_(True)
        torch.testing.assert_close(res.fc1[-1][t].detach(), a.detach(), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(res.fc2[-1][t].detach(), b.detach(), atol=1e-5, rtol=1e-5)
    assert len(res.fc1) == 4  # deployed + 3 updates


def test_support_loss_falls_with_steps() -> None:
    feats, labels, w1, w2 = _problem(1)
    lrs = torch.tensor([0.5, 0.5])
    res = adapt(feats, labels, w1.expand(3, -1, -1), w2.expand(3, -1, -1), lrs, steps=5)
    losses = []
    for a, b in zip(res.fc1, res.fc2, strict=True):
        logits = torch.relu(feats @ a.transpose(1, 2)) @ b.transpose(1, 2)
        losses.append(float(F.cross_entropy(logits.flatten(0, 1), labels.flatten()).detach()))
    assert all(x > y for x, y in zip(losses, losses[1:], strict=False))


def _episode(order: str, programmer=None, weight_max=None):
    torch.manual_seed(0)
    learner = MetaLearner(FewShotNet(widths=(4, 4, 4, 4)), (0.4, 0.4))
    g = torch.Generator().manual_seed(1)
    sx, qx = torch.rand(2, 5, 1, 28, 28, generator=g), torch.rand(2, 10, 1, 28, 28, generator=g)
    sy, qy = torch.arange(5).repeat(2, 1), torch.arange(5).repeat_interleave(2).repeat(2, 1)
    loss, acc = learner.episode(
        sx, sy, qx, qy, 3, second_order=order == "second", programmer=programmer,
        weight_max=weight_max, generator=torch.Generator().manual_seed(2),
    )  # fmt: skip
    loss.backward()
    return learner, loss, acc


def test_outer_gradients_reach_every_parameter() -> None:
    learner, loss, acc = _episode("second")
    assert torch.isfinite(loss) and acc.shape == (2,)
    for name, p in learner.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert learner.log_lrs.grad.abs().sum() > 0
    assert learner.net.extractor.blocks[0][0].weight.grad.abs().sum() > 0


def test_second_order_differs_from_first_order() -> None:
    first, _, _ = _episode("first")
    second, _, _ = _episode("second")
    g1, g2 = first.net.fc1.weight.grad, second.net.fc1.weight.grad
    assert not torch.allclose(g1, g2)
    cos = F.cosine_similarity(g1.flatten(), g2.flatten(), dim=0)
    assert cos > 0.0  # same direction broadly, different values


def test_hardware_episode_has_straight_through_gradients() -> None:
    learner, loss, _ = _episode("first", LevelProgrammer(levels=8), (0.5, 0.5))
    assert torch.isfinite(loss)
    assert learner.net.fc1.weight.grad.abs().sum() > 0
    assert learner.net.fc2.weight.grad.abs().sum() > 0


def test_evaluate_features_step_zero_is_initialisation() -> None:
    feats, labels, w1, w2 = _problem(2)
    tasks = HeadTasks(feats, labels, feats, labels)
    acc = evaluate_features(tasks, w1, w2, torch.tensor([0.5, 0.5]), 4)
    logits = torch.relu(feats @ w1.T) @ w2.T
    expected = (logits.argmax(-1) == labels).float().mean(-1)
    torch.testing.assert_close(acc[0], expected)
    assert acc.shape == (5, 3)
    assert acc[-1].mean() > acc[0].mean()  # fits its own support set


def test_bad_inputs() -> None:
    feats, labels, w1, w2 = _problem()
    lrs = torch.tensor([0.1, 0.1])
    with pytest.raises(ValueError, match="steps"):
        adapt(feats, labels, w1.expand(3, -1, -1), w2.expand(3, -1, -1), lrs, -1)
    with pytest.raises(ValueError, match="labels"):
        adapt(feats, labels[:, :4], w1.expand(3, -1, -1), w2.expand(3, -1, -1), lrs, 1)
    with pytest.raises(ValueError, match="inner_lrs"):
        adapt(feats, labels, w1.expand(3, -1, -1), w2.expand(3, -1, -1), lrs[:1], 1)
    with pytest.raises(ValueError, match="weight_max"):
        adapt(feats, labels, w1.expand(3, -1, -1), w2.expand(3, -1, -1), lrs, 1,
              programmer=LevelProgrammer())  # fmt: skip
    with pytest.raises(ValueError, match="inner learning rates"):
        MetaLearner(FewShotNet(), (0.0, 0.1))


def test_temperature_scales_the_outer_loss_only() -> None:
    """τ multiplies the query logits in the outer loss; predictions and accuracy stay put."""
    g = torch.Generator().manual_seed(11)
    sx, qx = torch.rand(3, 5, 1, 28, 28, generator=g), torch.rand(3, 10, 1, 28, 28, generator=g)
    sy, qy = torch.arange(5).repeat(3, 1), torch.arange(5).repeat_interleave(2).repeat(3, 1)
    torch.manual_seed(0)
    learner = MetaLearner(FewShotNet(widths=(4, 4, 4, 4)), (0.4, 0.4)).eval()
    loss1, acc1 = learner.episode(sx, sy, qx, qy, 2)
    with torch.no_grad():
        learner.log_temperature.fill_(math.log(3.0))
    loss3, acc3 = learner.episode(sx, sy, qx, qy, 2)
    assert torch.equal(acc1, acc3)
    assert not torch.isclose(loss1, loss3)
    fixed = MetaLearner(FewShotNet(widths=(4, 4, 4, 4)), (0.4, 0.4), learn_temperature=False)
    assert "log_temperature" not in dict(fixed.named_parameters())


def test_per_step_schedule_applies_row_k_at_step_k() -> None:
    feats, labels, w1, w2 = _problem(3)
    w1s, w2s = w1.expand(3, -1, -1), w2.expand(3, -1, -1)
    schedule = torch.tensor([[0.3, 0.7], [0.05, 1.5], [0.6, 0.2]])
    res = adapt(feats, labels, w1s, w2s, schedule, steps=4)
    a, b = w1s, w2s  # the same updates, one shared-rate step at a time
    for k in range(4):
        step = adapt(feats, labels, a, b, schedule[min(k, 2)], steps=1)
        a, b = step.fc1[-1].detach(), step.fc2[-1].detach()
        torch.testing.assert_close(res.fc1[k + 1].detach(), a, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(res.fc2[k + 1].detach(), b, atol=1e-5, rtol=1e-5)
    equal_rows = adapt(feats, labels, w1s, w2s, schedule[:1].expand(3, -1), steps=3)
    shared = adapt(feats, labels, w1s, w2s, schedule[0], steps=3)
    torch.testing.assert_close(equal_rows.fc1[-1], shared.fc1[-1])


def test_per_step_rates_each_get_an_outer_gradient() -> None:
    torch.manual_seed(0)
    learner = MetaLearner(FewShotNet(widths=(4, 4, 4, 4)), (0.4, 0.4), per_step=3)
    assert learner.inner_lrs().shape == (3, 2)
    torch.testing.assert_close(learner.inner_lrs(), torch.full((3, 2), 0.4))
    g = torch.Generator().manual_seed(1)
    sx, qx = torch.rand(2, 5, 1, 28, 28, generator=g), torch.rand(2, 10, 1, 28, 28, generator=g)
    sy, qy = torch.arange(5).repeat(2, 1), torch.arange(5).repeat_interleave(2).repeat(2, 1)
    loss, _ = learner.episode(sx, sy, qx, qy, 3, second_order=True)
    loss.backward()
    # Step 1's FC1 rate acts on a zero gradient only if FC2 is zero; here every rate matters.
    assert (learner.log_lrs.grad.abs() > 0).all()


def test_intermediate_loss_adds_the_earlier_steps_query_losses() -> None:
    torch.manual_seed(0)
    net = FewShotNet(widths=(4, 4, 4, 4))
    feats, labels, _, _ = _problem(4, t=2, s=10, f=net.extractor.features)
    plain = MetaLearner(net, (0.4, 0.4))
    weighted = MetaLearner(net, (0.4, 0.4), intermediate_loss=0.5)
    last, _ = plain.head_episode(feats, labels, feats, labels, 3)
    total, _ = weighted.head_episode(feats, labels, feats, labels, 3)
    earlier = sum(plain.head_episode(feats, labels, feats, labels, k)[0] for k in (1, 2))
    torch.testing.assert_close(total, last + 0.5 * earlier)
    with pytest.raises(ValueError, match="intermediate_loss"):
        MetaLearner(net, intermediate_loss=-1.0)
    with pytest.raises(ValueError, match="per_step"):
        MetaLearner(net, per_step=0)
