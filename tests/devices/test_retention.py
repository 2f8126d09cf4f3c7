"""Relaxation, Arrhenius acceleration, bake vs strategies."""

from __future__ import annotations

import math

import pytest
import torch

from memlearn.devices import (
    SECONDS_PER_YEAR,
    acceleration_factor,
    bake,
    celsius,
    equivalent_seconds,
    level_conductances,
    load_preset,
    program,
    relax,
    sample_cells,
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


def _level_spreads(preset, strategy, hours, seed=4, n=800):
    """Per-level std (S) of the healthy, verified cells programmed with ``strategy``, after
    each of ``hours`` at 150 C (one programming, successive bakes)."""
    lv = level_conductances(8, preset.window)
    gen = torch.Generator().manual_seed(seed)
    r = program(preset, lv.repeat_interleave(n), strategy, generator=gen)
    ok = ((r.cells.stuck == STUCK_NONE) & ~r.failed).view(8, n)
    out, done = [], 0.0
    for h in hours:
        relax(preset, r.cells, equivalent_seconds(preset, (h - done) * 3600, celsius(150)), gen)
        done = h
        g = r.cells.g.view(8, n)
        out.append(torch.stack([g[i][ok[i]].std() for i in range(8)]))
    return out


def test_without_drift_a_bake_keeps_every_conductance():
    still = PRESET.replace(relax_fast=0.0, relax_log=0.0, relax_mean=0.0)
    gen = torch.Generator().manual_seed(3)
    r = program(still, level_conductances(8, still.window).repeat_interleave(50), "hybrid",
                generator=gen)  # fmt: skip
    g0 = r.cells.g.clone()
    for hours in (1.0, 12.0, 1000.0):
        bake(still, r.cells, hours, 150.0, gen)
        assert torch.equal(r.cells.g, g0)


@pytest.mark.parametrize("strategy", ["iterative-set", "hybrid"])
def test_with_the_published_drift_the_spread_grows_with_bake_time(strategy):
    # levels from 30 uS: the 10 uS level's spread reaches G = 0, where conductances stop
    spreads = _level_spreads(PRESET, strategy, (0.0, 0.01, 1.0, 100.0), n=3000)
    for before, after in zip(spreads, spreads[1:], strict=False):
        assert bool((after[1:] > before[1:]).all()), (strategy, before, after)


def _relaxed_spread(preset, g_us, seconds, icc=None, depth=0.0, n=20000, seed=0):
    """Std (S) of the conductance change of ``n`` healthy cells at ``g_us`` made by a SET at
    ``icc`` (A; default the nominal one) and RESET ``depth`` e-folds, after ``seconds``."""
    gen = torch.Generator().manual_seed(seed)
    cells = sample_cells(preset.replace(stuck_low_rate=0.0, stuck_high_rate=0.0), (n,), gen)
    cells.g.fill_(g_us * 1e-6)
    cells.set_icc.fill_(g_us * 1e-6 * preset.set_k_volts if icc is None else icc)
    cells.reset_depth.fill_(depth)
    relax(preset, cells, seconds, gen)
    return float((cells.g - g_us * 1e-6).std())


def test_low_compliance_set_states_relax_most():
    """Milo et al. (IRPS 2021): the spread of program-and-verify levels falls with G; the fitted
    law is sigma ∝ I_cc^-relax_icc_exp (Fantini et al., IEDM 2015: low-current SET states are
    the unstable ones)."""
    q = PRESET.relax_icc_exp
    assert q > 0
    seconds = equivalent_seconds(PRESET, 12 * 3600, celsius(150))
    spreads = [_relaxed_spread(PRESET, g, seconds) for g in (20.0, 60.0, 150.0)]
    assert spreads[0] > spreads[1] > spreads[2]
    # 20 uS was made at 8 uA, below the data: the law is held at relax_icc_floor (20 uA)
    floor = PRESET.values["relax_icc_floor"]
    assert floor == pytest.approx(20e-6)
    assert spreads[0] / spreads[2] == pytest.approx((60e-6 / floor) ** q, rel=0.05)
    held = [_relaxed_spread(PRESET, g, seconds) for g in (30.0, 40.0, 50.0)]  # 12-20 uA
    assert held[0] == pytest.approx(held[2], rel=0.03) and held[1] == pytest.approx(
        held[2], rel=0.03
    )
    unheld = _relaxed_spread(PRESET.replace(relax_icc_floor=0.0), 30.0, seconds)
    assert unheld / held[0] == pytest.approx((20e-6 / 12e-6) ** q, rel=0.05)  # extrapolated
    # the same conductance made at a higher compliance (then RESET down) is more stable ...
    at_70 = _relaxed_spread(PRESET.replace(relax_reset_depth=0.0), 70.0, seconds)
    strong = _relaxed_spread(PRESET.replace(relax_reset_depth=0.0), 70.0, seconds, icc=80e-6)
    assert strong / at_70 == pytest.approx((80e-6 / 28e-6) ** -q, rel=0.05)


def test_deeper_reset_states_relax_more():
    """A RESET-terminated state: its SET's filament plus a gap whose instability grows with the
    RESET depth (relax_reset_depth per e-fold, an [E] assumption; 0 switches it off)."""
    k = PRESET.relax_reset_depth
    assert k > 0
    seconds = 1e5
    shallow, deep = (_relaxed_spread(PRESET, 30.0, seconds, 80e-6, d) for d in (0.5, 2.0))
    assert deep / shallow == pytest.approx((1 + 2.0 * k) / (1 + 0.5 * k), rel=0.05)
    off = PRESET.replace(relax_reset_depth=0.0)
    same = [_relaxed_spread(off, 30.0, seconds, 80e-6, d) for d in (0.0, 2.0)]
    assert same[0] == pytest.approx(same[1], rel=0.03)


def test_the_record_of_how_a_state_was_made_follows_the_pulses():
    gen = torch.Generator().manual_seed(5)
    tgt = torch.full((400,), 60e-6)
    for strategy in ("iterative-set", "single-set"):
        r = program(PRESET, tgt, strategy, generator=gen)
        ok = r.cells.stuck == STUCK_NONE
        assert bool((r.cells.reset_depth[ok] == 0).all())  # SET-terminated
        # the compliance that made ~60 uS: ~60 uS x 0.4 V, up to the device's gain spread
        assert float(r.cells.set_icc[ok].median()) == pytest.approx(24e-6, rel=0.15)
    r = program(PRESET, tgt, "iterative-reset", generator=gen)
    ok = (r.cells.stuck == STUCK_NONE) & ~r.failed
    assert bool((r.cells.set_icc[ok] == PRESET.icc_max).all())  # a strong SET, then RESETs
    # the depth is how far the RESETs took G down from where the strong SET left it
    assert float(r.cells.reset_depth[ok].median()) > math.log(150e-6 / 70e-6)
    h = program(PRESET, tgt, "hybrid", generator=gen)
    ok = (h.cells.stuck == STUCK_NONE) & ~h.failed & (h.pulses > 0)
    assert bool((h.cells.reset_depth[ok] >= 0).all())  # a trim pulse may leave G unchanged
    assert 0 < float(h.cells.reset_depth[ok].median()) < 0.5  # a shallow trim
    # hybrid's levels at and above hybrid_split are SET-verified: SET-terminated, no RESET depth
    high = program(PRESET, torch.full((400,), 120e-6), "hybrid", generator=gen)
    ok = (high.cells.stuck == STUCK_NONE) & ~high.failed
    assert bool((high.cells.reset_depth[ok] == 0).all())


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
    s_bake = bake(PRESET, r.cells, hours=12, celsius=150, generator=gen)
    s_age = age(PRESET, r.cells, years=10, celsius=75, generator=gen)
    assert s_bake == pytest.approx(s_age, rel=0.05)
    assert float(r.cells.age_s.max()) == pytest.approx(1.0 + s_bake + s_age, rel=1e-3)
    with pytest.raises(MemlearnError, match="hours must be >= 0"):
        bake(PRESET, r.cells, -1, 150, gen)
    with pytest.raises(MemlearnError, match="years must be >= 0"):
        age(PRESET, r.cells, -1, 75, gen)
    with pytest.raises(MemlearnError, match=r"celsius must be above -273.15"):
        bake(PRESET, r.cells, 1, -300, gen)


def test_preset_files_with_the_strategy_keyed_relaxation_are_refused_clearly(tmp_path):
    import json

    from memlearn.devices.preset import to_dict

    data = to_dict(PRESET)
    del data["read"]["read_noise_rel"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    assert load_preset(str(path)).read_noise_rel == 0.0  # an optional parameter's default
    data["drift"]["relax_fast_reset"] = {"value": 2.2e-6, "source": "old"}
    path.write_text(json.dumps(data))
    with pytest.raises(MemlearnError, match="relax_fast_reset is replaced by relax_fast"):
        load_preset(str(path))
