"""The full-scale calibration: its float model is the loop on an ideal chip, and it pays off."""

from __future__ import annotations

import pytest
import torch
from fake_chip import FakeChip
from test_loop import LAYOUT, LRS, synthetic_tasks

from memlearn.meta.inner import HeadTasks
from memlearn.onchip import head
from memlearn.onchip.calibration import device_level_samples, quantised_adapt, weight_max_for
from memlearn.onchip.config import AdaptConfig
from memlearn.onchip.loop import adapt_on_chip
from memlearn.onchip.mapping import uniform_levels

LEVELS = uniform_levels(10e-6, 150e-6, 8)


@pytest.mark.parametrize("policy", ["verify", "stochastic", "accumulate", "threshold"])
def test_quantised_adapt_is_the_loop_on_an_ideal_chip(policy):
    sx, sy, qx, qy, ws = synthetic_tasks(12, seed=21)
    wmax = [0.8, 1.5]
    sim, _ = quantised_adapt(HeadTasks(sx, sy, qx, qy), ws, LRS, 4, wmax, LEVELS, policy, seed=3)
    chip = FakeChip(12, LAYOUT, levels=8)  # exact programming, exact reads and products
    cfg = AdaptConfig(steps=4, policy=policy, levels=LEVELS, weight_max=wmax, seed=3)
    res = adapt_on_chip(chip, HeadTasks(sx, sy, qx, qy), ws, LRS, cfg)
    # same levels, same rounding, same random draws: only float round-off may differ
    assert (res.accuracy - sim).abs().mean() < 0.01
    assert res.accuracy[:, -1].mean() > res.accuracy[:, 0].mean() + 0.2


def test_accuracy_rule_beats_the_peak_rule_on_held_out_tasks():
    """With few levels the peak of adaptation is too coarse a full scale; the accuracy rule,
    calibrated on other tasks, learns new tasks better on a chip."""
    levels = uniform_levels(10e-6, 150e-6, 4)
    cal = synthetic_tasks(64, seed=31)
    sx, sy, qx, qy, _ = synthetic_tasks(64, seed=32)
    ws = cal[4]  # one meta-learned initialisation for both task sets
    peak = weight_max_for(HeadTasks(*cal[:4]), ws, LRS, 5, levels, "stochastic", rule="peak")
    tuned = weight_max_for(HeadTasks(*cal[:4]), ws, LRS, 5, levels, "stochastic", rule="accuracy")
    assert peak == pytest.approx(head.weight_peaks(HeadTasks(*cal[:4]), ws, LRS, 5))
    assert all(t <= p * (1 + 1e-6) for t, p in zip(tuned, peak, strict=True))
    assert tuned != pytest.approx(peak)

    def on_chip(wmax):
        chip = FakeChip(64, LAYOUT, levels=4, program_sigma=1e-6, read_sigma=0.3e-6, seed=5)
        cfg = AdaptConfig(policy="stochastic", levels=levels, weight_max=wmax, seed=1)
        return adapt_on_chip(chip, HeadTasks(sx, sy, qx, qy), ws, LRS, cfg).accuracy[:, -1].mean()

    assert on_chip(tuned) > on_chip(peak) + 0.03


def test_bad_calibration_inputs():
    sx, sy, qx, qy, ws = synthetic_tasks(2)
    with pytest.raises(ValueError, match="unknown weight_max rule 'best'"):
        weight_max_for(HeadTasks(sx, sy, qx, qy), ws, LRS, 2, LEVELS, rule="best")
    with pytest.raises(ValueError, match="margin"):
        weight_max_for(HeadTasks(sx, sy, qx, qy), ws, LRS, 2, LEVELS, rule="peak", margin=0.5)
    with pytest.raises(ValueError, match="weight_max must hold 2 values > 0"):
        quantised_adapt(HeadTasks(sx, sy, qx, qy), ws, LRS, 2, [1.0], LEVELS)
    with pytest.raises(ValueError, match="unknown update policy"):
        quantised_adapt(HeadTasks(sx, sy, qx, qy), ws, LRS, 2, [1.0, 1.0], LEVELS, policy="sgd")


def test_level_samples_without_spread_are_the_noise_free_model():
    sx, sy, qx, qy, ws = synthetic_tasks(12, seed=41)
    exact = LEVELS[:, None].expand(8, 30).clone()  # every sample on its level
    for policy in ("stochastic", "accumulate"):
        ideal = quantised_adapt(
            HeadTasks(sx, sy, qx, qy), ws, LRS, 3, [0.8, 1.5], LEVELS, policy, seed=2
        )
        drawn = quantised_adapt(
            HeadTasks(sx, sy, qx, qy),
            ws,
            LRS,
            3,
            [0.8, 1.5],
            LEVELS,
            policy,
            seed=2,
            level_samples=exact,
        )
        assert torch.allclose(ideal[0], drawn[0]) and torch.allclose(ideal[1], drawn[1])


def test_a_cell_keeps_its_drawn_conductance_until_its_level_changes():
    """With zero learning rates no target changes: the drawn deployment errors stay put (the
    loss is the same at every step) and are real (it differs from the noise-free loss)."""
    sx, sy, qx, qy, ws = synthetic_tasks(16, seed=42)
    spread = LEVELS[:, None] + 8e-6 * torch.randn(
        8, 200, generator=torch.Generator().manual_seed(0)
    )
    args = (HeadTasks(sx, sy, qx, qy), ws, [1e-9, 1e-9], 3, [0.8, 1.5], LEVELS, "accumulate", 0)
    _, loss = quantised_adapt(*args, level_samples=spread.clamp_min(0))
    _, ideal_loss = quantised_adapt(*args)
    assert torch.equal(loss, loss[:, :1].expand_as(loss))
    assert (loss[:, 0] - ideal_loss[:, 0]).abs().mean() > 1e-3


def test_device_aware_search_shrinks_the_full_scale_when_cells_fail():
    """A failed cell sits at the top of the window whatever its target: its weight error grows
    with the full scale, which a noise-free search cannot see."""
    cal = synthetic_tasks(64, seed=43)
    ws = cal[4]
    failed = LEVELS[:, None].expand(8, 100).clone()
    failed[:, :10] = LEVELS[-1]  # 10 % of the cells of every level read as the top level
    blind = weight_max_for(HeadTasks(*cal[:4]), ws, LRS, 4, LEVELS, "accumulate")
    aware = weight_max_for(
        HeadTasks(*cal[:4]), ws, LRS, 4, LEVELS, "accumulate", level_samples=failed
    )
    assert all(a <= b * (1 + 1e-6) for a, b in zip(aware, blind, strict=True))
    assert aware != pytest.approx(blind)


def test_device_level_samples_are_the_programmed_levels():
    from memlearn.devices import load_preset

    levels = load_preset("hfo2-mlc").levels(8)
    samples = device_level_samples("hfo2-mlc", "hybrid", levels, samples=300, seed=1)
    assert samples.shape == (8, 300)
    median = samples.median(dim=1).values
    spacing = float(levels[1] - levels[0])
    assert ((median - levels).abs() < 0.25 * spacing).all()  # centred on their targets
    assert (samples.std(dim=1) > 0).all()  # program-and-verify leaves a spread
    with pytest.raises(ValueError, match="evenly spaced"):
        device_level_samples("hfo2-mlc", "hybrid", levels**1.1, samples=10)
    with pytest.raises(ValueError, match="level_samples must be \\[8 levels, samples\\]"):
        sx, sy, qx, qy, ws = synthetic_tasks(2)
        quantised_adapt(
            HeadTasks(sx, sy, qx, qy), ws, LRS, 1, [1.0, 1.0], LEVELS, level_samples=samples[:4]
        )
