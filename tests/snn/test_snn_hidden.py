"""The 144-H-10 network on simulated cells: conservation, zero input, agreement, errors."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch
from typer.testing import CliRunner

from memlearn.errors import MemlearnError
from memlearn.snn import energy
from memlearn.snn.evaluate import chip_synapses, ideal_synapses
from memlearn.snn.hidden import (
    HIDDEN_CHECKPOINT,
    HIDDEN_COMMAND,
    HiddenWeights,
    check_hidden,
    load_hidden,
    save_hidden,
)
from memlearn.snn.hidden_eval import CALIBRATION_IMAGES, two_layer_ledger
from memlearn.snn.model import downscale
from memlearn.snn.neuron import V_RAIL, NeuronConfig
from memlearn.snn.synapses import SynapseArray
from memlearn.snn.twolayer import LayerPair, layer_scales, run_two_layers

PRESET = "oxram-slc"
H = 6


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _uniform_pair(w1: int, w2: int, scales=(1.0, 1.0)) -> LayerPair:
    s1 = ideal_synapses(PRESET, torch.full((144, H), w1, dtype=torch.long))
    s2 = ideal_synapses(PRESET, torch.full((H, 10), w2, dtype=torch.long))
    return LayerPair.scaled(s1, s2, scales)


def test_event_counts_conserved_through_both_layers() -> None:
    pair = _uniform_pair(1, 2)
    x = torch.rand(40, 144, generator=_gen())
    res = run_two_layers(x, pair, NeuronConfig(t_max_s=60e-6), _gen(1))
    inputs, hidden = res.input_spikes.double(), res.hidden_spikes.double()
    assert (
        float(inputs.sum()) > 0 and float(hidden.sum()) > 0 and float(res.output_spikes.sum()) > 0
    )
    # every input spike reads its row of the first array (H synapses x 8 cells), every hidden
    # spike its row of the second (10 x 8): identical rows here, so the sums are exact multiples
    g1, g2 = float(pair.hidden.g_row[0, 0]), float(pair.output.g_row[0, 0])
    assert torch.allclose(res.g_read_hidden, inputs * g1, rtol=1e-9)
    assert torch.allclose(res.g_read_output, hidden * g2, rtol=1e-9)
    # every synaptic event (input -> H hidden, hidden spike -> 10 outputs) is one integration
    first, second = two_layer_ledger(res, H, 0.1, 1e-7, (1.0, 1.0))
    events = energy.synaptic_events(inputs, H) + energy.synaptic_events(hidden)
    comparators = first["comparators"] + second["comparators"]
    assert torch.allclose(comparators, events * 2 * energy.E_COMPARE, rtol=1e-12)
    assert torch.allclose(first["output_spikes"], hidden * energy.E_SPIKE, rtol=1e-12)
    # word lines scale with the row's length: a row of 8 H cells against the single layer's 80
    wl = first["word_lines"] / inputs.clamp(min=1)
    assert float(wl.max()) == pytest.approx(energy.C_WORD_LINE * H / 10 * 1.2**2, rel=1e-9)


def test_chips_are_independent_and_equal_on_equal_cells() -> None:
    one = _uniform_pair(1, 2)
    two = LayerPair(
        *(
            type(s)(s.dv.expand(2, -1, -1), s.g_row.expand(2, -1), None, s.theta)
            for s in (one.hidden, one.output)
        ),
        one.scales,
    )
    x = torch.rand(20, 144, generator=_gen(2))
    a = run_two_layers(x, one, NeuronConfig(t_max_s=40e-6), _gen(3))
    b = run_two_layers(x, two, NeuronConfig(t_max_s=40e-6), _gen(3))
    for name in ("decision", "input_spikes", "hidden_spikes", "output_spikes"):
        ta, tb = getattr(a, name), getattr(b, name)
        assert torch.equal(tb[0], ta[0]) and torch.equal(tb[1], ta[0]), name


def test_zero_input_gives_zero_events_and_energy() -> None:
    w1 = torch.randint(-4, 5, (144, H), generator=_gen())
    w2 = torch.randint(-4, 5, (H, 10), generator=_gen(1))
    arrays = [SynapseArray(PRESET, 2, w, generator=_gen(2)) for w in (w1, w2)]
    pair = LayerPair.scaled(*(chip_synapses(a, True) for a in arrays), (1.1, 0.1))
    res = run_two_layers(torch.zeros(5, 144), pair, NeuronConfig(t_max_s=20e-6), _gen())
    for t in (res.input_spikes, res.hidden_spikes, res.output_spikes):
        assert float(t.abs().sum()) == 0.0
    first, second = two_layer_ledger(res, H, 0.1, 1e-7, pair.scales)
    assert all(float(v.abs().sum()) == 0 for v in (*first.values(), *second.values()))


@pytest.fixture(scope="module")
def mnist_sets(shared_data):
    from memlearn.data.mnist import load_mnist

    test = load_mnist("test", shared_data)
    train = load_mnist("train", shared_data)
    cal = downscale(train.images[:CALIBRATION_IMAGES])
    return downscale(test.images[:300]), test.labels[:300], cal


def test_refractory_period_caps_both_layers_at_one_spike_per_r_plus_one_steps() -> None:
    # all pixels white, one input spike per 1 µs step, every neuron far above threshold:
    # hidden and output neurons fire once every R + 1 steps (r_max of layer_scales)
    for refr in (0, 2):
        cfg = NeuronConfig(rate_hz=1e6, refractory_s=refr * 1e-6, t_max_s=30e-6, delta_s=1000)
        res = run_two_layers(torch.ones(1, 144), _uniform_pair(4, 4), cfg, _gen())
        assert float(res.hidden_spikes[0, 0]) == H * 30 / (refr + 1)
        assert float(res.output_spikes[0, 0]) == 10 * 30 / (refr + 1)


def test_layer_scales_follow_the_configured_rail() -> None:
    w1 = torch.randint(-4, 5, (144, H), generator=_gen())
    w2 = torch.randint(-4, 5, (H, 10), generator=_gen(1))
    cal = torch.rand(50, 144, generator=_gen(2))
    beta = torch.tensor([1.0, 1.0])
    theta = ideal_synapses(PRESET, w1).theta
    cfg = NeuronConfig()
    slope = 1.0 * 3.5 * (1 / 3) / (cfg.rate_hz * cfg.dt_s)  # beta theta_w r_max / p, R = 2

    def cap(rail_v: float) -> float:  # a ±4 event from the threshold reaches the rail
        return (rail_v / theta * 3.5 - 3.5) / 4

    s_def = layer_scales(beta, w1, w2, cal, cfg, theta)
    assert s_def[0] == pytest.approx(cap(V_RAIL)) and cap(V_RAIL) < slope  # the cap binds
    wide = layer_scales(beta, w1, w2, cal, replace(cfg, rail_v=1.5 * V_RAIL), theta)
    assert wide[0] == pytest.approx(cap(1.5 * V_RAIL)) and wide[0] > s_def[0]
    none = layer_scales(beta, w1, w2, cal, replace(cfg, rail_v=float("inf")), theta)
    assert none[0] == pytest.approx(slope)  # no rails: the slope-matched gain
    assert s_def[1] == wide[1] == none[1]  # the output gain does not see the rails
    with pytest.raises(MemlearnError, match="rail_v"):
        layer_scales(beta, w1, w2, cal, replace(cfg, rail_v=0.9 * theta), theta)


def test_spiking_ideal_cells_agree_with_tanh_network(mnist_sets) -> None:
    x, y, cal = mnist_sets
    wts = load_hidden()
    cfg = NeuronConfig()
    syn = [ideal_synapses(PRESET, w) for w in (wts.w1, wts.w2)]
    scales = layer_scales(wts.beta, wts.w1, wts.w2, cal, cfg, syn[0].theta)
    res = run_two_layers(x, LayerPair.scaled(*syn, scales), cfg, _gen())
    tanh = wts.decision(x)
    agree = float((res.decision[0] == tanh).double().mean())
    assert agree >= 0.95  # measured 0.98 here (300 images); the README gives 2,000 images
    assert float((tanh == y).double().mean()) >= 0.93
    assert float(res.stopped.double().mean()) >= 0.9


def test_checkpoint_round_trip_and_shipped_metrics(tmp_path) -> None:
    wts = load_hidden()
    assert wts.hidden == 32 and HIDDEN_CHECKPOINT.stat().st_size < 50_000
    meta = json.loads(HIDDEN_CHECKPOINT.with_suffix(".json").read_text())
    assert meta["command"] == HIDDEN_COMMAND and meta["hidden"] == 32
    path = save_hidden({"hidden": 32}, wts, tmp_path / "h.pt", "cmd")
    back = load_hidden(path)
    assert torch.equal(back.w1, wts.w1) and torch.equal(back.w2, wts.w2)
    assert torch.equal(back.beta, wts.beta)


def test_bad_inputs_are_refused(tmp_path) -> None:
    from memlearn.cli.main import app

    for bad in (0, 1025, True, 2.5):
        with pytest.raises(MemlearnError, match="hidden must be an integer in 1..1024"):
            check_hidden(bad)
    wts = load_hidden()
    with pytest.raises(MemlearnError, match="-4..\\+4"):
        HiddenWeights(wts.w1 * 2, wts.w2, wts.beta, wts.w1, wts.w2, wts.beta).check()
    with pytest.raises(MemlearnError, match="shape"):
        HiddenWeights(wts.w1, wts.w2[:5], wts.beta, wts.w1, wts.w2, wts.beta).check()
    s1 = ideal_synapses(PRESET, torch.ones(144, 4, dtype=torch.long))
    s2 = ideal_synapses(PRESET, torch.ones(5, 10, dtype=torch.long))
    with pytest.raises(MemlearnError, match="do not chain"):
        LayerPair.scaled(s1, s2, (1.0, 1.0))
    with pytest.raises(MemlearnError, match="no hidden-layer checkpoint"):
        load_hidden(tmp_path / "missing.pt")
    runner = CliRunner()
    for args, word in (
        (["--hidden", "0"], "hidden must be an integer in 1..1024"),
        (["--hidden", "16", "--chips", "2"], "checkpoint holds a 144-32-10 network"),
        (["--chips", "0"], "chips"),
        (["--chips", "1", "--images", "0"], "--images"),
        (["--chips", "1", "--out", str(tmp_path)], "--out"),
        (["--checkpoint", str(tmp_path / "h.pt")], "--checkpoint"),
    ):
        r = runner.invoke(app, ["snn", "hidden", *args])
        assert r.exit_code == 2 and word in r.output, (args, r.output)


def test_hidden_chips_cli_json(shared_data) -> None:
    from memlearn.cli.main import app

    args = ["snn", "hidden", "--chips", "2", "--images", "20", "--json"]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)  # stdout: exactly one JSON object
    assert "time steps" in r.stderr  # the progress bar, on stderr
    for key in ("accuracy", "accuracy_ci95", "accuracy_ideal", "accuracy_float",
                "input_spikes_per_image", "synaptic_events_per_image", "energy_per_event_j",
                "energy_per_image_j", "energy_breakdown_j", "cells", "failed_cells"):  # fmt: skip
        assert key in out
    assert out["cells"] == 8 * 32 * (144 + 10)
    by_layer = out["synaptic_events_per_image_by_layer"]
    assert by_layer["hidden"] == pytest.approx(32 * out["input_spikes_per_image"])
    assert by_layer["output"] == pytest.approx(10 * out["hidden_spikes_per_image"])
    assert out["synaptic_events_per_image"] == pytest.approx(sum(by_layer.values()))
    parts = out["energy_per_image_by_layer_j"]
    assert out["energy_per_image_j"] == pytest.approx(sum(parts.values()))
    assert len(out["accuracy_per_chip"]) == 2
