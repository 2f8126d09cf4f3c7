"""Relaxation, Arrhenius acceleration, bake vs strategies."""

from __future__ import annotations

import math

import pytest
import torch

from memlearn.devices import (
    SECONDS_PER_YEAR,
    acceleration_factor,
    celsius,
    equivalent_seconds,
    level_conductances,
    load_preset,
    program,
    relax,
)
from memlearn.devices.cells import STUCK_NONE
from memlearn.errors import MemlearnError

PRESET = load_preset("hfo2-mlc")


def test_arrhenius_equivalence_of_bake_and_ten_years():
    bake = equivalent_seconds(PRESET, 12 * 3600, celsius(150))
    ten_years = equivalent_seconds(PRESET, 10 * SECONDS_PER_YEAR, celsius(75))
    assert bake == pytest.approx(ten_years, rel=0.05)
    # the acceleration between the two temperatures is ~7.1e3 (REFERENCE.md s1)
    af = acceleration_factor(celsius(150), 1.5, celsius(75))
    assert af == pytest.approx(7.1e3, rel=0.02)
    assert acceleration_factor(300.0, 1.5, 300.0) == 1.0
    assert acceleration_factor(celsius(150), 0.0) == 1.0
    with pytest.raises(MemlearnError, match="> 0 K"):
        acceleration_factor(-1.0, 1.5)
    with pytest.raises(MemlearnError, match=">= 0 s"):
        equivalent_seconds(PRESET, -1.0, 300.0)


def _programmed(strategy, seed, n=3000, level=70e-6):
    gen = torch.Generator().manual_seed(seed)
    r = program(PRESET, torch.full((n,), level), strategy, generator=gen)
    return r, gen


def test_bake_and_ten_years_give_the_same_distribution():
    a, ga = _programmed("hybrid", 1)
    b, gb = _programmed("hybrid", 1)
    relax(PRESET, a.cells, equivalent_seconds(PRESET, 12 * 3600, celsius(150)), ga)
    relax(PRESET, b.cells, equivalent_seconds(PRESET, 10 * SECONDS_PER_YEAR, celsius(75)), gb)
    ok = a.cells.stuck == STUCK_NONE
    assert float(a.cells.g[ok].std()) == pytest.approx(float(b.cells.g[ok].std()), rel=0.02)
    assert float(a.cells.g[ok].mean()) == pytest.approx(float(b.cells.g[ok].mean()), rel=0.01)


def test_relaxation_composes_and_spread_grows_like_log_t():
    a, ga = _programmed("iterative-set", 2)
    b, gb = _programmed("iterative-set", 2)
    ok = a.cells.stuck == STUCK_NONE
    g0 = a.cells.g.clone()
    for _ in range(4):
        relax(PRESET, a.cells, 2500.0, ga)
    relax(PRESET, b.cells, 10000.0, gb)
    da, db = (a.cells.g - g0)[ok], (b.cells.g - g0)[ok]
    assert float(da.std()) == pytest.approx(float(db.std()), rel=0.06)
    # the added spread grows with ln(t): equal increments per decade of time after the first
    spreads = []
    c, gc = _programmed("iterative-set", 3)
    g0 = c.cells.g.clone()
    age = float(c.cells.age_s.max())
    for t in (1e2, 1e4, 1e6, 1e8):
        relax(PRESET, c.cells, t - age, gc)
        age = t
        spreads.append(float((c.cells.g - g0)[ok].std()))
    steps = [b - a for a, b in zip(spreads, spreads[1:], strict=False)]
    assert all(s > 0 for s in steps)
    assert max(steps) / min(steps) < 1.6  # near-linear in ln(t)


def test_bake_widens_and_hybrid_drifts_less_than_iterative_set():
    lv = level_conductances(8, PRESET.window)
    growth = {}
    for s in ("hybrid", "iterative-set"):
        gen = torch.Generator().manual_seed(4)
        r = program(PRESET, lv.repeat_interleave(800), s, generator=gen)
        ok = (r.cells.stuck == STUCK_NONE).view(8, 800)
        before = r.cells.g.clone().view(8, 800)
        relax(PRESET, r.cells, equivalent_seconds(PRESET, 12 * 3600, celsius(150)), gen)
        after = r.cells.g.view(8, 800)
        sb = torch.stack([before[i][ok[i]].std() for i in range(8)])
        sa = torch.stack([after[i][ok[i]].std() for i in range(8)])
        assert bool((sa > sb).all()), s
        growth[s] = float((sa - sb).mean())
    assert growth["hybrid"] < 0.6 * growth["iterative-set"]


def test_stuck_cells_do_not_move_and_zero_time_is_a_no_op():
    r, gen = _programmed("hybrid", 5)
    stuck = r.cells.stuck != STUCK_NONE
    g0 = r.cells.g.clone()
    relax(PRESET, r.cells, 0.0, gen)
    assert torch.equal(r.cells.g, g0)
    relax(PRESET, r.cells, 1e6, gen)
    assert torch.equal(r.cells.g[stuck], g0[stuck])
    assert not torch.equal(r.cells.g, g0)
    assert math.isfinite(float(r.cells.g.sum())) and float(r.cells.g.min()) >= 0


def test_bake_and_age_helpers_return_equivalent_seconds():
    from memlearn.devices import age, bake

    r, gen = _programmed("hybrid", 6, n=200)
    s_bake = bake(PRESET, r.cells, 12, 150, gen)
    s_age = age(PRESET, r.cells, 10, 75, gen)
    assert s_bake == pytest.approx(s_age, rel=0.05)
    assert float(r.cells.age_s.max()) == pytest.approx(1.0 + s_bake + s_age, rel=1e-3)
