"""The on-chip loop's mechanics on a transparent test chip and synthetic few-shot tasks."""

from __future__ import annotations

import pytest
import torch
from fake_chip import FakeChip

from memlearn.chip.base import ArraySpec, ChipLayout
from memlearn.crossbar.mapping import DifferentialMapping
from memlearn.meta.inner import HeadTasks
from memlearn.onchip import head
from memlearn.onchip.config import AdaptConfig
from memlearn.onchip.loop import adapt_on_chip
from memlearn.onchip.mapping import uniform_levels

LAYOUT = ChipLayout((ArraySpec("fc1", 12, 8), ArraySpec("fc2", 8, 5)))


def synthetic_tasks(tasks: int, seed: int = 0, ways: int = 5, shots: int = 1, queries: int = 6):
    """Class prototypes in a non-negative 12-d feature space; support/query = prototype + noise."""
    gen = torch.Generator().manual_seed(seed)
    active = torch.rand(tasks, ways, 12, generator=gen) > 0.6
    protos = torch.rand(tasks, ways, 12, generator=gen) * 3.0 * active

    def draw(n: int):
        y = torch.arange(ways).repeat_interleave(n).expand(tasks, -1).contiguous()
        x = protos.gather(1, y[..., None].expand(-1, -1, 12))
        x = (x + 0.35 * torch.randn(x.shape, generator=gen)).clamp_min(0)
        return x, y

    sx, sy = draw(shots)
    qx, qy = draw(queries)
    w1 = torch.randn(12, 8, generator=gen) * 0.4
    w2 = torch.randn(8, 5, generator=gen) * 0.4
    return sx, sy, qx, qy, [w1, w2]


LRS = [1.0, 1.0]


def test_manual_gradient_equals_autograd():
    sx, sy, _, _, (w1, w2) = synthetic_tasks(3)
    ws = [
        w1.expand(3, -1, -1).clone().requires_grad_(),
        w2.expand(3, -1, -1).clone().requires_grad_(),
    ]
    pre = head.forward(sx, ws)
    loss, _ = head.loss_and_accuracy(pre[-1], sy)
    loss.sum().backward()
    grads = head.gradients(sx, [p.detach() for p in pre], [w.detach() for w in ws], sy)
    for g, w in zip(grads, ws, strict=True):
        torch.testing.assert_close(g, w.grad, rtol=1e-5, atol=1e-6)


def test_software_adaptation_learns():
    sx, sy, qx, qy, ws = synthetic_tasks(32)
    acc, loss = head.software_adapt(HeadTasks(sx, sy, qx, qy), ws, LRS, steps=5)
    assert acc.shape == (32, 6)
    assert acc[:, -1].mean() > acc[:, 0].mean() + 0.3
    assert (loss[:, -1] < loss[:, 0]).float().mean() > 0.9


def test_mapping_round_trip_and_bounds():
    levels = uniform_levels(10e-6, 150e-6, 8)
    w = torch.randn(2, 12, 8)
    m = DifferentialMapping.from_weights(w, levels)
    idx = m.index(w)
    assert idx.abs().max() == 7  # the largest weight sits on the top level
    gp, gm = m.index_conductances(idx)
    assert gp.min() >= 10e-6 - 1e-12 and gp.max() <= 150e-6 + 1e-12
    assert ((gp == levels[0]) | (gm == levels[0])).all()  # one cell of each pair is off
    wq = m.to_weight(gp, gm)
    torch.testing.assert_close(wq, m.index_weights(idx))
    # quantisation error at most half a level step
    assert ((wq - w).abs() <= 0.5 * m.min_weight_step + 1e-6).all()
    with pytest.raises(ValueError, match="levels must be >= 2"):
        uniform_levels(10e-6, 150e-6, 1)
    with pytest.raises(ValueError, match="G_min < G_max"):
        uniform_levels(150e-6, 10e-6, 8)


def test_ideal_chip_matches_software():
    """Noise-free cells on many levels: the loop reproduces ideal float adaptation."""
    sx, sy, qx, qy, ws = synthetic_tasks(8, seed=1)
    chip = FakeChip(8, LAYOUT, levels=16384)
    res = adapt_on_chip(
        chip, HeadTasks(sx, sy, qx, qy), ws, LRS, AdaptConfig(steps=5, headroom=4.0)
    )
    soft_acc, soft_loss = head.software_adapt(HeadTasks(sx, sy, qx, qy), ws, LRS, steps=5)
    torch.testing.assert_close(res.loss, soft_loss, rtol=0.02, atol=0.02)
    assert (res.accuracy - soft_acc).abs().mean() < 0.02
    assert res.accuracy[:, -1].mean() > res.accuracy[:, 0].mean() + 0.3


def test_writes_counted_equal_cells_changed_and_ledger_adds_up():
    sx, sy, qx, qy, ws = synthetic_tasks(4, seed=2)
    chip = FakeChip(4, LAYOUT, levels=8, program_sigma=1e-6, read_sigma=0.3e-6, seed=3)
    res = adapt_on_chip(chip, HeadTasks(sx, sy, qx, qy), ws, LRS, AdaptConfig(steps=4))
    assert torch.equal(res.cells_written, res.expected_cells)
    assert res.cells_written.sum() > 0
    total_counts = sum(
        sum(c.sum(dim=(1, 2)) for c in chip.write_counts(a.name)) for a in LAYOUT.arrays
    )
    assert torch.equal(total_counts, res.deploy_cells_written + res.cells_written.sum(dim=1))
    # Deployment writes every cell whose target is not the chip's first state.
    assert (res.deploy_cells_written == 2 * (12 * 8 + 8 * 5)).all()
    ledger_total = sum(chip.energy_ledger().values())
    parts = res.energy_per_adaptation() + sum(res.deploy_energy_j.values())
    assert (parts <= ledger_total + 1e-18).all()  # the rest is query evaluation
    assert set(res.energy_j) == {"read", "program", "verify", "dac", "adc"}
    # Update-step program energy is exactly what the written cells cost on this chip.
    torch.testing.assert_close(
        res.energy_j["program"].sum(dim=1), 2e-12 * res.cells_written.sum(dim=1).double()
    )


def test_more_tasks_than_chips_runs_in_rounds_with_fresh_deployments():
    sx, sy, qx, qy, ws = synthetic_tasks(7, seed=4)
    # nearest rounding: no random draws, whose order depends on how tasks fill the chips
    cfg = AdaptConfig(steps=3, policy="verify")
    many = adapt_on_chip(FakeChip(7, LAYOUT), HeadTasks(sx, sy, qx, qy), ws, LRS, cfg)
    few = adapt_on_chip(FakeChip(3, LAYOUT), HeadTasks(sx, sy, qx, qy), ws, LRS, cfg)
    torch.testing.assert_close(few.accuracy, many.accuracy)
    torch.testing.assert_close(few.loss, many.loss)
    assert few.accuracy.shape == (7, 4)
    assert torch.equal(few.cells_written, many.cells_written)


@pytest.mark.parametrize("policy", ["verify", "threshold", "manhattan", "stochastic", "accumulate"])
def test_every_policy_learns(policy):
    sx, sy, qx, qy, ws = synthetic_tasks(16, seed=5)
    chip = FakeChip(16, LAYOUT, levels=16, program_sigma=0.5e-6, pulse_step=4e-6, seed=6)
    res = adapt_on_chip(
        chip, HeadTasks(sx, sy, qx, qy), ws, LRS, AdaptConfig(steps=5, policy=policy)
    )
    assert res.accuracy[:, -1].mean() > res.accuracy[:, 0].mean() + 0.15
    if policy == "manhattan":
        assert res.verify_reads.sum() == 0 and res.pulses.sum() > 0
    else:
        assert torch.equal(res.cells_written, res.expected_cells)


def test_threshold_policy_writes_no_more_than_verify():
    sx, sy, qx, qy, ws = synthetic_tasks(8, seed=7)
    kw = dict(levels=8, program_sigma=3e-6, read_sigma=1e-6, seed=8)
    cfg = AdaptConfig(steps=3, policy="verify")
    verify = adapt_on_chip(FakeChip(8, LAYOUT, **kw), HeadTasks(sx, sy, qx, qy), ws, LRS, cfg)
    thresh = adapt_on_chip(
        FakeChip(8, LAYOUT, **kw),
        HeadTasks(sx, sy, qx, qy),
        ws,
        LRS,
        AdaptConfig(steps=3, policy="threshold"),
    )
    assert thresh.cells_written.sum() < verify.cells_written.sum()


def test_accumulate_policy_follows_float_sgd_closer_than_rounding():
    """The float copy in the computer: on an exact chip the levelled weights after K steps stay
    within half a level step of the copy, and the copy itself is SGD taken at the levelled
    weights; over tasks the final loss is no worse than with nearest rounding (``verify``),
    which drops every update below half a step."""
    from memlearn.onchip.policies import AccumulatePolicy, LayerState, LevelUpdate

    sx, sy, qx, qy, ws = synthetic_tasks(32, seed=15)
    kw = dict(steps=5, levels=uniform_levels(10e-6, 150e-6, 4), weight_max=[1.5, 2.0])
    verify = adapt_on_chip(
        FakeChip(32, LAYOUT),
        HeadTasks(sx, sy, qx, qy),
        ws,
        [0.3, 0.3],
        AdaptConfig(policy="verify", **kw),
    )
    acc = adapt_on_chip(
        FakeChip(32, LAYOUT),
        HeadTasks(sx, sy, qx, qy),
        ws,
        [0.3, 0.3],
        AdaptConfig(policy="accumulate", **kw),
    )
    assert acc.loss[:, -1].mean() < verify.loss[:, -1].mean()
    assert acc.cells_written.sum() > verify.cells_written.sum()  # small updates do land
    # bookkeeping of one update on a hand-made state
    m = DifferentialMapping.from_weight_max(1.4, uniform_levels(10e-6, 150e-6, 8))
    state = LayerState("fc1", m, m.index(torch.full((1, 1, 3), 0.25)))
    state.copy = torch.full((1, 1, 3), 0.25)
    copy = AccumulatePolicy.accumulate(m, state.copy, m.index_weights(state.index),
                                       m.index_weights(state.index) + 0.06)  # fmt: skip
    torch.testing.assert_close(copy, torch.full((1, 1, 3), 0.31))
    assert (
        int(AccumulatePolicy().next_index(LevelUpdate(m, state.index, copy, copy))[0, 0, 0]) == 2
    )  # 0.31/0.2


def test_bake_reevaluates():
    sx, sy, qx, qy, ws = synthetic_tasks(4, seed=9)
    chip = FakeChip(4, LAYOUT, levels=8)
    res = adapt_on_chip(
        chip, HeadTasks(sx, sy, qx, qy), ws, LRS, AdaptConfig(steps=2, bake_seconds=3600.0)
    )
    assert res.accuracy_after_bake is not None and res.accuracy_after_bake.shape == (4,)
    # The test chip's bake is noise-free when program_sigma = 0: nothing changes.
    torch.testing.assert_close(res.accuracy_after_bake, res.accuracy[:, -1])


def test_bad_inputs_are_named():
    sx, sy, qx, qy, ws = synthetic_tasks(2)
    chip = FakeChip(2, LAYOUT)
    with pytest.raises(ValueError, match="expected \\[12, 8\\]"):
        adapt_on_chip(chip, HeadTasks(sx, sy, qx, qy), [ws[0].T, ws[1]], LRS)
    with pytest.raises(ValueError, match=">= 0"):
        adapt_on_chip(chip, HeadTasks(-sx - 1, sy, qx, qy), ws, LRS)
    with pytest.raises(ValueError, match="inner_lrs"):
        adapt_on_chip(chip, HeadTasks(sx, sy, qx, qy), ws, [0.1])
    with pytest.raises(ValueError, match="unknown update policy 'sgd'"):
        AdaptConfig(policy="sgd")
    with pytest.raises(ValueError, match="unknown strategy"):
        AdaptConfig(strategy="magic")
    with pytest.raises(ValueError, match="labels"):
        adapt_on_chip(chip, HeadTasks(sx, sy[:, :0], qx, qy), ws, LRS)


def test_on_simulated_chip_counters_and_ledger_agree():
    """On the device model: write counters equal the cells reported written, which are the
    cells whose target changed less those already in their verify band or stuck."""
    from memlearn.chip.simulated import SimulatedChip

    sx, sy, qx, qy, ws = synthetic_tasks(4, seed=12)
    chip = SimulatedChip(4, preset="hfo2-mlc", layout=LAYOUT, levels=8, seed=2)
    res = adapt_on_chip(chip, HeadTasks(sx, sy, qx, qy), ws, LRS, AdaptConfig(steps=3))
    assert (res.cells_written <= res.expected_cells).all()
    assert res.cells_written.sum() >= 0.9 * res.expected_cells.sum() > 0
    counts = sum(sum(c.sum(dim=(1, 2)) for c in chip.write_counts(a.name)) for a in LAYOUT.arrays)
    assert torch.equal(counts.long(), res.deploy_cells_written + res.cells_written.sum(dim=1))
    assert (res.pulses >= res.cells_written).all() and (res.verify_reads > 0).any()
    spent = sum(chip.energy_ledger().values())
    assert (res.energy_per_adaptation() + sum(res.deploy_energy_j.values()) < spent).all()
    assert res.accuracy[:, -1].mean() > res.accuracy[:, 0].mean()


def test_bake_needs_one_chip_per_task():
    sx, sy, qx, qy, ws = synthetic_tasks(4, seed=9)
    with pytest.raises(ValueError, match="at least as many chips as tasks"):
        adapt_on_chip(
            FakeChip(2, LAYOUT), HeadTasks(sx, sy, qx, qy), ws, LRS, AdaptConfig(bake_seconds=1.0)
        )


def test_weight_peaks_cover_the_adapted_weights():
    sx, sy, qx, qy, (w1, w2) = synthetic_tasks(8, seed=13)
    w2 = w2 * 0.01  # an output layer that starts near zero, as meta-learning often leaves it
    peaks = head.weight_peaks(HeadTasks(sx, sy, qx, qy), [w1, w2], LRS, steps=5)
    assert peaks[1] > 5 * float(w2.abs().max())
    # With that full scale the loop follows ideal software; clipped at max|w2| it cannot.
    cfg = AdaptConfig(steps=5, weight_max=[2 * p for p in peaks])
    full = adapt_on_chip(
        FakeChip(8, LAYOUT, levels=4096), HeadTasks(sx, sy, qx, qy), [w1, w2], LRS, cfg
    )
    clipped = adapt_on_chip(
        FakeChip(8, LAYOUT, levels=4096), HeadTasks(sx, sy, qx, qy), [w1, w2], LRS
    )
    soft, _ = head.software_adapt(HeadTasks(sx, sy, qx, qy), [w1, w2], LRS, steps=5)
    assert (full.accuracy - soft).abs().mean() < 0.03
    assert clipped.accuracy[:, -1].mean() < soft[:, -1].mean() - 0.1


def test_all_zero_layer_needs_a_full_scale():
    sx, sy, qx, qy, (w1, w2) = synthetic_tasks(2, seed=14)
    chip = FakeChip(2, LAYOUT)
    with pytest.raises(ValueError, match="array 'fc2' are all zero.*weight_max"):
        adapt_on_chip(chip, HeadTasks(sx, sy, qx, qy), [w1, torch.zeros_like(w2)], LRS)
    res = adapt_on_chip(
        chip,
        HeadTasks(sx, sy, qx, qy),
        [w1, torch.zeros_like(w2)],
        LRS,
        AdaptConfig(weight_max=[1.0, 0.5]),
    )
    assert res.accuracy.shape == (2, 6)


def test_fault_aware_targets_compensate_with_the_partner():
    from memlearn.onchip.policies import LayerState, fault_aware_targets

    levels = uniform_levels(10e-6, 150e-6, 8)  # 20 uS apart
    m = DifferentialMapping(levels, torch.tensor(1e4))  # a level step is 0.2 in weight
    index = torch.tensor([[[3, -2, 1, 2]]])
    state = LayerState("fc1", m, index, targets=m.index_conductances(index))
    gf = torch.tensor([[[150e-6, 0.0, 0.0, 150e-6]]])
    state.faulty = (
        torch.tensor([[[True, False, False, True]]]),
        torch.tensor([[[False, True, False, True]]]),
    )
    state.fault_g = (gf, torch.tensor([[[0.0, 1e-6, 0.0, 10e-6]]]))
    gp, gm = fault_aware_targets(state, torch.tensor([[[1, 1, 1, 1]]]))  # all want +20 uS
    # pair 0: G+ stuck at 150 uS keeps its old target; G- = 150 - 20 = 130 uS
    assert gp[0, 0, 0] == state.targets[0][0, 0, 0] and gm[0, 0, 0] == pytest.approx(130e-6)
    # pair 1: G- stuck at 1 uS keeps its old target; G+ = 1 + 20 -> nearest level 30 uS
    assert gm[0, 0, 1] == state.targets[1][0, 0, 1] and gp[0, 0, 1] == pytest.approx(30e-6)
    # pair 2 is healthy: plain sign-magnitude targets; pair 3 (both faulty) is left alone
    assert gp[0, 0, 2] == pytest.approx(30e-6) and gm[0, 0, 2] == pytest.approx(10e-6)
    assert gp[0, 0, 3] == state.targets[0][0, 0, 3] and gm[0, 0, 3] == state.targets[1][0, 0, 3]


def test_stuck_cells_are_found_left_alone_and_compensated():
    sx, sy, qx, qy, ws = synthetic_tasks(8, seed=15)
    # G+ cells of fc2 stuck at the top of the window, on pairs meant to hold a positive weight:
    # the loop wants them lower, so without fault handling it rewrites them again and again
    positive = (ws[1] > 0.05).nonzero()[:4]
    stuck_p = torch.zeros(8, 8, 5, dtype=torch.bool)
    stuck_p[:, positive[:, 0], positive[:, 1]] = True
    fc2_init = torch.full((8, 8, 5), 150e-6)  # stuck at the top of the window
    cfg = dict(steps=4, weight_max=[1.0, 1.0])

    def run(fault_fraction):
        chip = FakeChip(8, LAYOUT, levels=8, stuck={"fc2": (stuck_p, torch.zeros_like(stuck_p))})
        chip.g["fc2"][0].copy_(torch.where(stuck_p, fc2_init, chip.g["fc2"][0]))
        cf = AdaptConfig(**cfg, fault_fraction=fault_fraction)
        res = adapt_on_chip(chip, HeadTasks(sx, sy, qx, qy), ws, LRS, cf)
        return res, chip

    on, chip_on = run(0.2)
    off, chip_off = run(None)
    writes_on = chip_on.write_counts("fc2")[0][stuck_p]
    writes_off = chip_off.write_counts("fc2")[0][stuck_p]
    assert writes_on.max() <= 1  # the deployment's write only: then found and left alone
    assert writes_off.sum() > writes_on.sum()  # without: pulsed again and again
    # the partners took over: some G- of the stuck pairs left the bottom level, and the pairs'
    # weights came down where the gradient wanted them (without help they stay near the top)
    g_minus = chip_on.g["fc2"][1][stuck_p]
    assert (g_minus > 10e-6 + 1e-9).float().mean() > 0.5

    def stuck_weights(chip):
        gp, gm = chip.g["fc2"]
        return ((gp - gm)[stuck_p] / 140e-6).mean()

    assert stuck_weights(chip_on) < stuck_weights(chip_off) - 0.3
    assert on.accuracy.shape == off.accuracy.shape == (8, 5)


def test_per_step_rates_drive_each_update_on_chip_and_in_software():
    """A schedule of equal rows is the shared rate; a schedule whose later rows are tiny freezes
    the weights after the first update, on the ideal chip as in software."""
    sx, sy, qx, qy, ws = synthetic_tasks(8, seed=21)
    shared, _ = head.software_adapt(HeadTasks(sx, sy, qx, qy), ws, LRS, steps=4)
    same, _ = head.software_adapt(HeadTasks(sx, sy, qx, qy), ws, [LRS] * 4, steps=4)
    torch.testing.assert_close(same, shared)
    schedule = [[1.0, 1.0]] + [[1e-9, 1e-9]] * 3
    soft_acc, soft_loss = head.software_adapt(HeadTasks(sx, sy, qx, qy), ws, schedule, steps=4)
    torch.testing.assert_close(soft_loss[:, 2:], soft_loss[:, 1:2].expand(-1, 3))
    assert (soft_loss[:, 1] < soft_loss[:, 0]).all()
    chip = FakeChip(8, LAYOUT, levels=16384)
    res = adapt_on_chip(
        chip, HeadTasks(sx, sy, qx, qy), ws, schedule, AdaptConfig(steps=4, headroom=4.0)
    )
    torch.testing.assert_close(res.loss, soft_loss, rtol=0.02, atol=0.02)
    assert (res.cells_written[:, 1:] <= res.cells_written[:, :1] // 10).all()
    with pytest.raises(ValueError, match="row of inner_lrs must hold 2"):
        adapt_on_chip(FakeChip(8, LAYOUT), HeadTasks(sx, sy, qx, qy), ws, [[1.0, 1.0], [1.0]])


def test_progress_counts_every_evaluation_and_changes_nothing():
    """``progress`` is called once per evaluation of each round (rounds x (steps + 1)) and the
    results are bit-identical to a run without it."""
    sx, sy, qx, qy, ws = synthetic_tasks(7, seed=4)
    cfg = AdaptConfig(steps=3)
    calls: list[int] = []
    seen = adapt_on_chip(FakeChip(3, LAYOUT), HeadTasks(sx, sy, qx, qy), ws, LRS, cfg, calls.append)
    plain = adapt_on_chip(FakeChip(3, LAYOUT), HeadTasks(sx, sy, qx, qy), ws, LRS, cfg)
    assert calls == [1] * (3 * 4)  # 3 rounds of 3 chips for 7 tasks, 4 evaluations each
    assert torch.equal(seen.accuracy, plain.accuracy) and torch.equal(seen.loss, plain.loss)
    assert torch.equal(seen.cells_written, plain.cells_written)
