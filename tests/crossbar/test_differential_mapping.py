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
