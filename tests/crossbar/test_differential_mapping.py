"""Differential-pair mapping: quantisation bound, signs, leading shapes, bad input."""

from __future__ import annotations

import pytest
import torch

from memlearn.crossbar import DifferentialMapping
from memlearn.devices import level_conductances
from memlearn.errors import MemlearnError

LEVELS = level_conductances(8, (10e-6, 150e-6))


def test_round_trip_within_half_a_step_on_any_leading_shape():
    w = torch.randn(3, 16, 32, generator=torch.Generator().manual_seed(0))
    m = DifferentialMapping.from_weights(w, LEVELS)
    assert m.scale.shape == (3, 1, 1)
    gp, gm = m.to_conductance(w)
    assert gp.shape == w.shape == gm.shape
    # every target is one of the levels, and one cell of each pair idles at G_min
    assert bool(torch.isin(gp, LEVELS).all() and torch.isin(gm, LEVELS).all())
    assert bool(((gp == LEVELS[0]) | (gm == LEVELS[0])).all())
    back = m.to_weight(gp, gm)
    bound = m.scale * (LEVELS[1] - LEVELS[0]) / 2
    assert bool(((back - w).abs() <= bound * (1 + 1e-5)).all())
    assert torch.equal(torch.sign(back[back != 0]), torch.sign(w[back != 0]))
    # the largest weight of each matrix maps to the top level exactly
    top = w.abs().flatten(1).argmax(1)
    for t in range(3):
        g = torch.maximum(gp[t].flatten()[top[t]], gm[t].flatten()[top[t]])
        assert float(g) == pytest.approx(float(LEVELS[-1]))


def test_quantize_is_idempotent_and_zero_maps_to_the_idle_pair():
    w = torch.linspace(-1, 1, 41)
    m = DifferentialMapping.from_weights(w, LEVELS, dims=(-1,))
    q = m.quantize(w)
    assert torch.allclose(m.quantize(q), q)
    assert len(torch.unique(q)) == 2 * len(LEVELS) - 1
    gp, gm = m.to_conductance(torch.zeros(3))
    assert torch.equal(gp, gm) and bool((gp == LEVELS[0]).all())


def test_bad_mappings():
    with pytest.raises(MemlearnError, match="strictly increasing"):
        DifferentialMapping(torch.tensor([2e-5, 1e-5]), torch.tensor(1.0))
    with pytest.raises(MemlearnError, match="at least 2"):
        DifferentialMapping(torch.tensor([1e-5]), torch.tensor(1.0))
    with pytest.raises(MemlearnError, match="scale must be finite and > 0"):
        DifferentialMapping(LEVELS, torch.tensor(0.0))
    m = DifferentialMapping(LEVELS, torch.tensor(1e4))
    with pytest.raises(MemlearnError, match="shapes differ"):
        m.to_weight(torch.zeros(2), torch.zeros(3))


def test_signed_index_round_trip_and_conductances():
    m = DifferentialMapping.from_weight_max(0.7, LEVELS)
    assert float(m.weight_max) == pytest.approx(0.7)
    w = torch.tensor([-0.7, -0.26, -0.04, 0.0, 0.06, 0.31, 0.69, 5.0])
    k = m.index(w)
    assert k.tolist() == [-7, -3, 0, 0, 1, 3, 7, 7]  # nearest of 0.1-wide steps, clipped
    gp, gm = m.index_conductances(k)
    torch.testing.assert_close(m.to_weight(gp, gm), m.index_weights(k))
    assert torch.equal(m.index_conductances(k)[0], m.to_conductance(w)[0])


def test_stochastic_rounding_is_unbiased_and_uses_only_the_two_neighbours():
    m = DifferentialMapping.from_weight_max(0.7, LEVELS)  # weight levels 0.1 apart
    w = torch.tensor([0.013, -0.047, 0.0, 0.7, 0.9, 0.25]).repeat(20000, 1)
    k = m.index(w, "stochastic", torch.Generator().manual_seed(0))
    mean = m.index_weights(k).mean(dim=0)
    torch.testing.assert_close(mean[[0, 1, 2, 3, 5]], w[0, [0, 1, 2, 3, 5]], atol=2e-3, rtol=0)
    assert float(mean[4]) == pytest.approx(0.7)  # clipped at the top level
    assert set(k[:, 0].tolist()) == {0, 1} and set(k[:, 1].tolist()) == {0, -1}
    assert set(k[:, 5].tolist()) == {2, 3}
    # nearest rounding loses a sub-step update; stochastic rounding keeps it in expectation
    start = torch.full((20000,), 3)
    delta = torch.full((20000,), 0.03)
    assert torch.equal(m.update_index(start, delta, "nearest"), start)
    moved = m.update_index(start, delta, "stochastic", torch.Generator().manual_seed(1))
    assert set(moved.tolist()) == {3, 4}
    assert float((moved - start).float().mean()) == pytest.approx(0.3, abs=0.02)
    with pytest.raises(MemlearnError, match="unknown rounding 'up'"):
        m.index(w, "up")


def test_search_weight_max_finds_the_best_and_never_loses_to_its_start():
    from memlearn.crossbar.mapping import WEIGHT_MAX_FACTORS, search_weight_max

    peaks = [2.0, 1.0]
    best = (2.0 * WEIGHT_MAX_FACTORS[4], 1.0 * WEIGHT_MAX_FACTORS[9])
    calls = []

    def score(fs):
        calls.append(tuple(fs))
        return -((fs[0] - best[0]) ** 2) - 3 * (fs[1] - best[1]) ** 2

    found = search_weight_max(score, peaks)
    assert found == pytest.approx(list(best))
    assert len(calls) == len(set(calls))  # each candidate scored once
    # a start value off the grid that scores best is kept
    assert search_weight_max(score, peaks, start=list(best)) == pytest.approx(list(best))
    odd = [0.777, 0.333]
    assert (
        search_weight_max(lambda fs: -abs(fs[0] - 0.777) - abs(fs[1] - 0.333), peaks, start=odd)
        == odd
    )
    with pytest.raises(MemlearnError, match="peaks"):
        search_weight_max(score, [1.0, 0.0])
    with pytest.raises(MemlearnError, match="start must hold 2"):
        search_weight_max(score, peaks, start=[1.0])
    with pytest.raises(MemlearnError, match="weight_max must be finite and > 0"):
        DifferentialMapping.from_weight_max(0.0, LEVELS)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_rounding_follows_the_weights_device():
    """Hardware-aware training calls the shared rounding on GPU weights."""
    from memlearn.crossbar.mapping import ROUNDINGS

    m = DifferentialMapping.from_weight_max(0.7, LEVELS)
    w = torch.linspace(-1, 1, 101)
    for rounding in ROUNDINGS:
        k = m.index(w.cuda(), rounding)
        assert k.device.type == "cuda" and m.index_weights(k).device.type == "cuda"
        assert all(t.device.type == "cuda" for t in m.index_conductances(k))
        moved = m.update_index(k, torch.full_like(w, 0.1).cuda(), rounding)
        assert moved.device.type == "cuda"
    assert torch.equal(m.index(w.cuda()).cpu(), m.index(w))
