"""From a network and task images to on-chip and software curves, and the summary figures."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from fake_chip import FakeChip

from memlearn.chip.base import ArraySpec, ChipLayout
from memlearn.nn import FewShotNet
from memlearn.onchip import head_weights, inner_lrs_from, run_adaptation, summarise, task_features
from memlearn.onchip.config import AdaptConfig
from memlearn.onchip.run import ci95


def _tasks(tasks: int, gen: torch.Generator) -> SimpleNamespace:
    """Five synthetic 'characters' (random strokes) per task; queries are noisy copies."""
    protos = (torch.rand(tasks, 5, 1, 16, 16, generator=gen) > 0.8).float()

    def draw(n: int):
        y = torch.arange(5).repeat(n).expand(tasks, -1).contiguous()
        x = protos[torch.arange(tasks)[:, None], y]
        flip = torch.rand(x.shape, generator=gen) < 0.03
        return torch.where(flip, 1 - x, x), y

    sx, sy = draw(1)
    qx, qy = draw(3)
    return SimpleNamespace(support_x=sx, support_y=sy, query_x=qx, query_y=qy)


def test_run_adaptation_and_summary():
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = FewShotNet(ways=5, widths=(8, 8, 8, 12), hidden=6, image_size=16).eval()
    tasks = _tasks(5, gen)
    feats = task_features(net, tasks.support_x)
    assert feats.shape == (5, 5, 12) and (feats >= 0).all()
    layout = ChipLayout((ArraySpec("fc1", 12, 6), ArraySpec("fc2", 6, 5)))
    w = head_weights(net)
    assert [tuple(x.shape) for x in w] == [(12, 6), (6, 5)]
    chip = FakeChip(3, layout, levels=32)
    res = run_adaptation(chip, net, [0.5, 0.5], tasks, AdaptConfig(steps=2))
    assert res.software_accuracy.shape == res.accuracy.shape == (5, 3)
    s = summarise(res)
    assert len(s["accuracy_by_step"]) == 3
    assert s["accuracy_by_step"][0] == pytest.approx(float(res.accuracy[:, 0].mean()))
    assert s["energy_per_adaptation_j"] == pytest.approx(sum(s["energy_breakdown_j"].values()))
    assert s["writes_per_adaptation"] == pytest.approx(
        float(res.cells_written.sum(1).double().mean())
    )
    assert "accuracy_after_bake" not in s


def test_inner_lrs_and_ci():
    assert inner_lrs_from({"inner_lrs": [0.1, 0.2]}) == [0.1, 0.2]
    assert inner_lrs_from({"inner_lrs": {"fc1": 0.3, "fc2": 0.4}}) == [0.3, 0.4]
    assert inner_lrs_from({"inner_lrs": 0.5}) == [0.5, 0.5]
    schedule = [[0.1, 2.0], [0.2, 1.0]]
    assert inner_lrs_from({"inner_lrs": schedule}) == schedule
    with pytest.raises(ValueError, match="no 'inner_lrs'"):
        inner_lrs_from({})
    with pytest.raises(ValueError, match="finite rates > 0"):
        inner_lrs_from({"inner_lrs": [0.1, -1.0]})
    with pytest.raises(ValueError, match="\\[tasks, batch, C, H, W\\]"):
        task_features(FewShotNet(5), torch.zeros(2, 1, 28, 28))
    # Bernoulli(0.5) over 400 tasks: the half-width is 1.96 * 0.5 / 20.
    values = torch.tensor([0.0, 1.0]).repeat(200)
    assert ci95(values) == pytest.approx(1.96 * 0.5 / 20, rel=0.01)


def test_auto_weight_max_is_the_checkpoints_when_trained_for_this_deployment():
    from memlearn.onchip.run import calibrated_for, resolve_weight_max

    info = {
        "weight_max": [0.16, 0.75],
        "hardware_aware": True,
        "device": {"preset": "hfo2-mlc", "strategy": "hybrid", "levels": 8},
    }
    levels = torch.linspace(10e-6, 150e-6, 8)
    stochastic = "stochastic"
    assert calibrated_for(info, "hfo2-mlc", "hybrid", levels, stochastic)
    assert not calibrated_for(info, "hfo2-mlc", "iterative-set", levels, stochastic)
    sixteen = torch.linspace(10e-6, 150e-6, 16)
    assert not calibrated_for(info, "hfo2-mlc", "hybrid", sixteen, stochastic)
    assert not calibrated_for({**info, "hardware_aware": False}, "hfo2-mlc", "hybrid", levels)
    assert not calibrated_for(info, None, "hybrid", levels, stochastic)
    # a checkpoint without an update rule was trained with stochastic rounding; the default
    # policy (accumulate) is not that
    assert not calibrated_for(info, "hfo2-mlc", "hybrid", levels)
    assert not calibrated_for(info, "hfo2-mlc", "hybrid", levels, "accumulate")
    accumulated = {**info, "device": {**info["device"], "update_rule": "accumulate"}}
    assert calibrated_for(accumulated, "hfo2-mlc", "hybrid", levels, "accumulate")
    assert not calibrated_for(accumulated, "hfo2-mlc", "hybrid", levels, "stochastic")
    # checkpoints saved before the verify rule took the policy's name say "nearest"
    nearest = {**info, "device": {**info["device"], "update_rule": "nearest"}}
    assert calibrated_for(nearest, "hfo2-mlc", "hybrid", levels, "verify")
    values, source = resolve_weight_max(
        None, info, [0.1, 0.2], steps=5, levels=levels, policy="stochastic", ways=5, shots=1,
        preset="hfo2-mlc", strategy="hybrid",
    )  # fmt: skip
    assert values == [0.16, 0.75] and source.startswith("checkpoint")


def test_calibration_tasks_are_within_one_training_alphabet(shared_data):
    from memlearn.data import load_split
    from memlearn.onchip.run import CALIBRATION_QUERIES, calibration_tasks

    tasks = calibration_tasks(5, 1, seed=3, tasks=16, root=shared_data)
    train = load_split("train", shared_data, rotations=False)
    alphabets = train.alphabet[tasks.classes]
    assert tasks.query_x.shape[1] == 5 * CALIBRATION_QUERIES
    assert (alphabets == alphabets[:, :1]).all()  # each task inside one alphabet
    assert alphabets.unique().numel() > 1  # and not always the same alphabet
    copied = calibration_tasks(5, 1, seed=3, tasks=16, root=shared_data, support_copies=2)
    assert copied.support_x.shape[1] == 3 * 5  # the shots, then two rounds of copies
    assert torch.equal(copied.support_x[:, :5], tasks.support_x)
    assert torch.equal(copied.query_x, tasks.query_x)
