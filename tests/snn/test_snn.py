"""SPIRIT spiking layer: event conservation, neuron behaviour, energy, errors, agreement."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from memlearn.errors import MemlearnError
from memlearn.snn import energy
from memlearn.snn.evaluate import EvalConfig, chip_synapses, ideal_synapses
from memlearn.snn.model import downscale, tanh_decision
from memlearn.snn.neuron import (
    CODINGS,
    V_RAIL,
    NeuronConfig,
    NeuronState,
    input_phase,
    input_spikes,
    integrate_and_fire,
    membrane_step,
    pixel_rate,
)
from memlearn.snn.simulate import Synapses, input_spikes_estimate, run
from memlearn.snn.synapses import SynapseArray
from memlearn.snn.train import load_checkpoint

PRESET = "oxram-slc"


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_event_counts_conserved() -> None:
    w = torch.full((144, 10), 2, dtype=torch.long)
    syn = ideal_synapses(PRESET, w)
    x = torch.rand(50, 144, generator=_gen())
    res = run(x, syn, NeuronConfig(t_max_s=50e-6), _gen(1))
    spikes = res.input_spikes.double()
    assert float(spikes.sum()) > 0
    # every input spike reads one row: the same conductance on every row here
    assert torch.allclose(res.g_read, spikes * float(syn.g_row[0, 0]), rtol=1e-9)
    assert torch.equal(energy.synaptic_events(spikes), spikes * 10)
    assert torch.equal(energy.cell_reads(spikes), spikes * 80)


def test_plus_minus_four_always_spike() -> None:
    w = torch.zeros(144, 10, dtype=torch.long)
    w[0, 0], w[0, 1] = 4, -4
    syn = ideal_synapses(PRESET, w)
    st = NeuronState.zeros(1, 1, 10)
    s = torch.zeros(1, 144)
    s[0, 0] = 1.0
    dv = (s @ syn.dv[0]).view(1, 1, 10)
    pos, neg = integrate_and_fire(st, dv, torch.ones(1, 1, dtype=torch.bool), syn.theta, 2)
    assert bool(pos[0, 0, 0]) and bool(neg[0, 0, 1])
    assert int(pos.sum()) == 1 and int(neg.sum()) == 1
    # programmed chips: one event on a +4 synapse whose 4 positive cells all are in LRS spikes
    w_all = torch.full((144, 10), 4, dtype=torch.long)
    arr = SynapseArray(PRESET, 2, w_all, strategy="hybrid", generator=_gen())

    chip = chip_synapses(arr, read_noise=False)
    g_min, g_max = arr.preset.window
    g = arr.cells()
    healthy = ((g[..., :4] > (g_min * g_max) ** 0.5).all(-1)) & (g[..., 4:] < 2 * g_min).all(-1)
    assert float(healthy.double().mean()) > 0.9
    assert bool((chip.dv[healthy] >= chip.theta).all())


def test_refractory_integrates_without_spiking() -> None:
    st = NeuronState.zeros(1, 1, 1)
    st.refractory.fill_(2)
    on = torch.ones(1, 1, dtype=torch.bool)
    pos, _ = integrate_and_fire(st, torch.full((1, 1, 1), 0.3), on, 0.25, 2)
    assert not bool(pos.any()) and float(st.v) == pytest.approx(0.3)
    pos, _ = integrate_and_fire(st, torch.full((1, 1, 1), 0.1), on, 0.25, 2)
    assert not bool(pos.any()) and float(st.v) == pytest.approx(0.4)
    pos, _ = integrate_and_fire(st, torch.zeros(1, 1, 1), on, 0.25, 2)  # refractory over
    assert bool(pos.all()) and float(st.v) == pytest.approx(0.15)
    pos, _ = integrate_and_fire(st, torch.full((1, 1, 1), 5.0), on, 0.25, 2)
    assert float(st.v) == pytest.approx(V_RAIL)  # clipped at the rail, refractory again
    assert not bool(pos.any())


@pytest.mark.parametrize("refr", [0, 1, 2, 3])
def test_refractory_period_blocks_exactly_r_steps(refr: int) -> None:
    # a neuron driven far above threshold every step fires whenever allowed: once every R + 1
    # steps, R blocked steps between spikes (R = 0: every step)
    st, on = NeuronState.zeros(1, 1, 1), torch.ones(1, 1, dtype=torch.bool)
    fired = [
        bool(integrate_and_fire(st, torch.full((1, 1, 1), 1.0), on, 0.25, refr)[0])
        for _ in range(12)
    ]
    assert fired == [t % (refr + 1) == 0 for t in range(12)]
    # the same through the simulation: one white pixel spiking every 1 µs step on a
    # strong synapse, R from refractory_s, 60 steps
    cfg = NeuronConfig(rate_hz=1e6, refractory_s=refr * 1e-6, t_max_s=60e-6, delta_s=1000)
    assert cfg.refractory_steps == refr
    dv = torch.zeros(1, 144, 10)
    dv[0, 0, 0] = 1.0
    x = torch.zeros(2, 144)
    x[:, 0] = 1.0
    res = run(x, Synapses(dv, torch.full((1, 144), 1e-6), None, 0.25), cfg, _gen())
    assert res.input_spikes.tolist() == [[60.0, 60.0]]
    assert res.output_spikes.tolist() == [[60.0 / (refr + 1)] * 2]


def test_zero_input_zero_events_and_energy() -> None:
    w = torch.randint(-4, 5, (144, 10), generator=_gen())
    arr = SynapseArray(PRESET, 2, w, generator=_gen())

    res = run(torch.zeros(5, 144), chip_synapses(arr, True), NeuronConfig(t_max_s=20e-6), _gen())
    assert float(res.input_spikes.sum()) == 0 and float(res.output_spikes.sum()) == 0
    lines = energy.breakdown(res.input_spikes, res.output_spikes, res.g_read, 0.1, 1e-7)
    assert all(float(v.abs().sum()) == 0 for v in lines.values())


def test_bad_inputs_are_refused() -> None:
    w_bad = torch.full((144, 10), 5, dtype=torch.long)
    with pytest.raises(MemlearnError, match="-4..\\+4"):
        SynapseArray(PRESET, 1, w_bad, generator=_gen())
    with pytest.raises(MemlearnError, match="unknown preset"):
        EvalConfig(preset="nope").check()
    with pytest.raises(MemlearnError, match="chips"):
        EvalConfig(chips=0).check()
    with pytest.raises(MemlearnError, match="28, 28"):
        downscale(torch.zeros(3, 12, 12))
    with pytest.raises(MemlearnError, match="144"):
        run(torch.zeros(3, 100), ideal_synapses(PRESET, w_bad.clamp(-4, 4)), NeuronConfig(), _gen())
    with pytest.raises(MemlearnError, match="delta_s"):
        NeuronConfig(delta_s=0).check()
    with pytest.raises(MemlearnError, match="coding must be one of periodic, poisson"):
        NeuronConfig(coding="burst").check()


def test_periodic_coding_counts_are_exact_and_poisson_is_noisier() -> None:
    x = torch.tensor([[0.0, 0.05, 0.3, 1.0] + [0.5] * 140]).expand(400, -1)
    steps = 200
    for coding in CODINGS:
        cfg = NeuronConfig(coding=coding)
        gen = _gen(3)
        phase = input_phase(400, cfg, gen)
        counts = sum(input_spikes(x, phase, k, cfg, gen) for k in range(steps))
        expected = x * cfg.rate_hz * cfg.dt_s * steps  # 0, 1, 6, 20, 10 spikes
        assert float(counts[:, 0].abs().max()) == 0.0  # a black pixel sends nothing
        if coding == "periodic":  # floor(f t + u): the rate's count, give or take one
            assert float((counts - expected).abs().max()) < 1.0
            assert float(counts[:, 3].var()) == 0.0
        else:  # Bernoulli per step: variance ~ the mean
            assert float(counts[:, 3].var()) > 5.0
            assert float(counts[:, 4:].mean()) == pytest.approx(10.0, rel=0.05)


def test_rate_floor_maps_black_to_the_floor_and_white_to_the_full_rate() -> None:
    cfg = NeuronConfig(rate_floor=0.01)  # N2D2's examples use 1e-4; 0.01 keeps the test short
    x = torch.tensor([0.0, 0.25, 1.0])
    assert pixel_rate(x, cfg).tolist() == pytest.approx([1e3, 25.75e3, 100e3])
    assert pixel_rate(x, NeuronConfig()).tolist() == pytest.approx([0.0, 25e3, 100e3])
    # periodic trains, floor(f t + u): a black pixel sends exactly one spike in 1 / f_min
    steps = round(1 / (1e3 * cfg.dt_s))
    xs = torch.tensor([[0.0, 0.25, 1.0] + [0.0] * 141]).expand(50, -1)
    phase = input_phase(50, cfg, _gen(4))
    counts = sum(input_spikes(xs, phase, k, cfg, _gen()) for k in range(steps))
    assert counts[:, 0].tolist() == [1.0] * 50
    assert float((counts[:, 1] - 25.75).abs().max()) < 1.0 and counts[:, 2].tolist() == [100] * 50
    with pytest.raises(MemlearnError, match="rate_floor"):
        NeuronConfig(rate_floor=1.0).check()


def test_rails_clip_the_membrane_unless_infinite() -> None:
    on = torch.ones(1, 1, dtype=torch.bool)
    for rail, v_end in ((V_RAIL, V_RAIL - 0.25), (float("inf"), 2.0 - 0.25)):
        st = NeuronState.zeros(1, 1, 1)
        pos, _ = integrate_and_fire(st, torch.full((1, 1, 1), 2.0), on, 0.25, 2, rail)
        assert bool(pos.all()) and float(st.v) == pytest.approx(v_end)  # one spike, -theta
    with pytest.raises(MemlearnError, match="rail_v"):
        NeuronConfig(rail_v=0.0).check()


def test_read_disturb_negligible_at_100mv_grows_with_voltage() -> None:
    w = torch.zeros(144, 10, dtype=torch.long)
    arr = SynapseArray(PRESET, 1, w, generator=_gen())
    assert float(arr.disturb(1e9, _gen())) == 0.0
    few = float(arr.disturb(1e9, _gen(), volts=0.6))
    many = float(arr.disturb(1e9, _gen(), volts=0.9))
    assert 0 < few < many
    with pytest.raises(MemlearnError, match="volts"):
        arr.disturb(1.0, _gen(), volts=5.0)


@pytest.fixture(scope="module")
def mnist_subset(shared_data):
    from memlearn.data.mnist import load_mnist

    test = load_mnist("test", shared_data)
    return downscale(test.images[:300]), test.labels[:300]


def test_reads_after_relaxation_take_each_cells_age() -> None:
    """Relaxation ages the cells: the synapses' read noise follows each cell's age (1/f law,
    noisier with time), not the preset's settle time."""
    w = torch.randint(-4, 5, (12, 10), generator=torch.Generator().manual_seed(0))
    arr = SynapseArray("oxram-slc", 2, w, generator=torch.Generator().manual_seed(1))
    tech, preset = arr.preset.technology, arr.preset
    k = membrane_step(preset.values["v_read"], preset.values["read_pulse_s"])
    fresh = (tech.read_sigma(preset, arr.cells()) * k).square().sum(-1)
    assert torch.equal(chip_synapses(arr, True).dv_var, fresh)  # just programmed: settle_s old
    arr.advance(365 * 86400.0)
    g, age = arr.cells(), arr.ages()
    assert float(age.min()) >= 365 * 86400.0  # settle time + a year (float32), every cell
    aged = chip_synapses(arr, True).dv_var
    expect = (tech.read_sigma(preset, g, age) * k).square().sum(-1)
    at_settle = (tech.read_sigma(preset, g) * k).square().sum(-1)
    assert torch.allclose(aged, expect, rtol=1e-6, atol=0)
    assert bool((aged > at_settle).all())  # the same cells read noisier a year on
    assert float((aged / at_settle).mean()) > 1.01  # the 1/f part grows; 1 % additive stays


def test_spiking_ideal_cells_agree_with_tanh(mnist_subset) -> None:
    x, y = mnist_subset
    w, _ = load_checkpoint()
    fine = NeuronConfig(dt_s=0.2e-6, refractory_s=0.0, t_max_s=400e-6)
    res = run(x, ideal_synapses(PRESET, w), fine, _gen())
    agree = float((res.decision[0] == tanh_decision(x, w)).double().mean())
    assert agree >= 0.97  # measured 0.997 here, 0.992 on the first 2,000 images (README)
    assert float((tanh_decision(x, w) == y).double().mean()) >= 0.85


def test_input_spike_estimate_tracks_the_simulation(mnist_subset) -> None:
    x, _ = mnist_subset
    w, _ = load_checkpoint()
    cfg = NeuronConfig(refractory_s=0.0)
    res = run(x, ideal_synapses(PRESET, w), cfg, _gen())
    est = input_spikes_estimate(x, w, cfg.delta_s)
    sim = res.input_spikes[0].double()
    done = res.stopped[0]
    assert float(est.median() / sim.median()) == pytest.approx(1.0, abs=0.2)
    # images the estimate ranks as hard (top quarter) take several times the others' spikes
    hard = est >= est.quantile(0.75)
    assert float(sim[hard & done].mean()) > 2 * float(sim[~hard & done].mean())
    # the count grows with ΔS in proportion
    assert torch.allclose(input_spikes_estimate(x, w, 2 * cfg.delta_s), 2 * est)


def test_evaluate_cli_json(shared_data) -> None:
    from memlearn.cli.main import app

    r = CliRunner().invoke(app, ["snn", "evaluate", "--chips", "2", "--images", "40", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)  # stdout: exactly one JSON object
    assert "time steps" in r.stderr  # the progress bar, on stderr
    for key in ("accuracy", "accuracy_ci95", "accuracy_ideal", "accuracy_float",
                "input_spikes_per_image", "synaptic_events_per_image", "energy_per_event_j",
                "energy_per_image_j", "energy_breakdown_j", "cells", "failed_cells"):  # fmt: skip
        assert key in out
    assert out["cells"] == 11520
    assert out["synaptic_events_per_image"] == pytest.approx(10 * out["input_spikes_per_image"])
    assert 0 < out["input_spikes_per_image_median"] <= out["input_spikes_per_image_p90"]
    per_op = out["formal_energy_per_mac_j"] / out["energy_per_event_j"]
    assert out["formal_to_spiking_energy_per_operation"] == pytest.approx(per_op)
    bad = CliRunner().invoke(app, ["snn", "evaluate", "--chips", "0"])
    assert bad.exit_code == 2 and "chips" in bad.output


def test_hidden_net_shapes_and_errors() -> None:
    from memlearn.snn.hidden import HiddenNet

    net = HiddenNet(8, generator=_gen())
    out = net(torch.rand(5, 144, generator=_gen()))
    assert out.shape == (5, 10) and bool((out.abs() <= 1).all())
    with pytest.raises(MemlearnError, match="hidden"):
        HiddenNet(0)
