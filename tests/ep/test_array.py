"""EP on crossbar tiles: an ideal crossbar follows software, write counters are exact."""

from __future__ import annotations

import torch

from memlearn.crossbar.array import CrossbarArray
from memlearn.devices.preset import load_preset
from memlearn.ep.array import ArrayNetwork
from memlearn.ep.config import EPConfig
from memlearn.ep.dynamics import FloatProducts, init_thetas
from memlearn.ep.step import train_step
from memlearn.ep.transpose import transpose_multiply

IDEAL_SPREAD = 0.05


def _ideal_preset():
    base = load_preset("hfo2-mlc").replace(stuck_low_rate=0.0, stuck_high_rate=0.0)
    # no relaxation: low-compliance states relax beyond the verify band at any spread scale
    still = base.replace(relax_fast=0.0, relax_log=0.0, relax_mean=0.0)
    return still.with_spread(IDEAL_SPREAD)


def _config(**kw):
    base = {"network": "12-10-4", "substrate": "array", "chips": 2, "batch": 8, "t_free": 5,
            "t_nudge": 5, "lrs": (0.2, 0.1)}  # fmt: skip
    base.update(kw)
    return EPConfig(**base).validate()


def _ideal(config, seed=0):
    config.preset = _ideal_preset()
    config.adc_bits = config.dac_bits = None
    config.read_noise = False
    g = torch.Generator().manual_seed(seed)
    thetas = init_thetas(config.sizes, config.chips, g)
    return ArrayNetwork(config, thetas, g), thetas


def _bound(net, layer):
    """Quantisation bound: half a level step plus the verify band (weight units)."""
    tol = net.preset.values["verify_tolerance"]
    mapping = net.maps[layer]
    return float(mapping.weight_step / 2 + 2 * mapping.scale * tol)


def test_ideal_crossbar_products_equal_the_float_products_of_its_cells():
    net, thetas = _ideal(_config(levels=64))
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 5, 12, generator=g)
    e = torch.randn(2, 5, 4, generator=g)
    held = FloatProducts([net.weights(0), net.weights(1)])
    for got, want in (
        (net.forward(0, x), held.forward(0, x)),
        (net.backward(1, e), held.backward(1, e)),
    ):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-6)
    for layer in range(2):
        assert float((net.weights(layer) - thetas[layer]).abs().max()) <= _bound(net, layer)


def test_ideal_crossbar_follows_the_software_trajectory_within_the_quantisation_bound():
    config = _config(levels=64)
    net, thetas = _ideal(config)
    soft = FloatProducts([t.clone() for t in thetas])
    g = torch.Generator().manual_seed(2)
    x = torch.rand(40, 12, generator=g)
    y = torch.randint(0, 4, (40,), generator=g)
    moved = 0.0
    for step in range(5):
        pick = slice(8 * step, 8 * step + 8)
        train_step(soft, config, x[pick], y[pick])
        train_step(net, config, x[pick], y[pick])
    for layer in range(2):
        moved = float((soft.thetas[layer] - thetas[layer]).abs().max())
        gap = float((net.weights(layer) - soft.thetas[layer]).abs().max())
        assert moved > 2 * _bound(net, layer)  # the weights did travel several steps
        assert gap <= 1.5 * _bound(net, layer), (layer, gap, _bound(net, layer))


def test_write_counters_count_exactly_the_cells_programmed():
    for update in ("accumulate", "counter", "manhattan"):
        config = _config(update=update, levels=8)
        g = torch.Generator().manual_seed(3)
        net = ArrayNetwork(config, init_thetas(config.sizes, 2, g), g)
        array = net.arrays[0]
        assert int(net.training_writes().sum()) == 0
        before_target = array.last_target.clone()
        before = array.writes.clone()
        delta = torch.randn(2, 10, 13, generator=g) * float(net.maps[0].weight_step)
        state = torch.get_rng_state()
        net.update(0, delta)
        torch.set_rng_state(state)
        written = array.writes - before
        if update == "manhattan":
            # exactly one cell per fired pair; no verify, so the target is forgotten (nan)
            fired = torch.isnan(array.last_target).any(-1) & ~torch.isnan(before_target).any(-1)
            assert int(written.sum()) == int(fired.sum()) > 0
            assert bool((written.sum(-1) == fired.int()).all())
        else:
            changed = array.last_target != before_target
            assert int(written.sum()) > 0
            assert bool((written <= changed.int()).all())  # only re-targeted cells are written
        assert int(net.training_writes().sum()) == int(written.sum())
        zero = array.writes.clone()
        net.update(0, torch.zeros(2, 10, 13))
        assert bool((array.writes == zero).all())  # no change, no write


def test_cached_transposed_read_equals_a_fresh_one_and_follows_programming():
    config = _config(update="accumulate", levels=8)
    g = torch.Generator().manual_seed(4)
    net = ArrayNetwork(config, init_thetas(config.sizes, 2, g), g)
    e = torch.randn(2, 5, 4, generator=torch.Generator().manual_seed(6))
    array = net.arrays[1]

    def both():
        state = g.get_state()
        cached = net.backward(1, e)
        g.set_state(state)
        fresh = transpose_multiply(array, e)[..., :-1] * net.maps[1].scale
        return cached, fresh

    for _ in range(2):  # the second read uses the cache
        cached, fresh = both()
        assert torch.equal(cached, fresh)
    net.update(1, torch.randn(2, 4, 11, generator=g) * float(net.maps[1].weight_step))
    cached, fresh = both()  # the cells changed: the cache must not serve the old ones
    assert torch.equal(cached, fresh)


def test_transposed_read_noise_follows_the_cells_age():
    """The columns-to-rows read has the read noise of each cell's age, as the forward read's,
    and its cache follows the age when time passes (the conductances unchanged)."""
    preset = load_preset("hfo2-mlc").replace(read_noise_rel=0.0)  # the 1/f term alone
    gen = torch.Generator().manual_seed(2)
    array = CrossbarArray(preset, 1, 3, 2, generator=gen, adc_bits=None, dac_bits=None)
    array.program(torch.full((1, 3, 2), 120e-6), torch.full((1, 3, 2), 20e-6), "iterative-set")
    e = torch.zeros(1, 4000, 2)
    e[..., 1] = 1.0  # one column driven: each row's noise is its pair (row, 1)'s
    cache: dict = {}

    def measured_and_expected():
        rows = transpose_multiply(array, e, cache)[0]  # [batch, rows]
        sp, sm = array.read_sigmas()
        return rows.std(0), (sp[0, :, 1] ** 2 + sm[0, :, 1] ** 2).sqrt()

    fresh, want_fresh = measured_and_expected()
    assert torch.allclose(fresh, want_fresh, rtol=0.06)
    array.cells.age_s.fill_(3.0e8)  # about 10 years on, nothing else changed
    aged, want_aged = measured_and_expected()
    assert bool((want_aged > 1.4 * want_fresh).all())
    assert torch.allclose(aged, want_aged, rtol=0.06)
