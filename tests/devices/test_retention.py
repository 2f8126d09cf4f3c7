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
        growth[s] = sa - sb
    # hybrid's RESET-verified levels (below its split) drift like RESET-terminated states;
    # its SET-verified levels like iterative SET's
    trimmed = lv < PRESET.values["hybrid_split"]
    hybrid, iset = growth["hybrid"], growth["iterative-set"]
    assert float(hybrid[trimmed].mean()) < 0.6 * float(iset[trimmed].mean())
    assert float(hybrid.mean()) < float(iset.mean())


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


def _relaxed_spread(preset, g_us, reset_final, seconds, n=20000, seed=0):
    """Std (S) of the conductance change of ``n`` healthy cells at ``g_us`` after ``seconds``."""
    gen = torch.Generator().manual_seed(seed)
    cells = sample_cells(preset.replace(stuck_low_rate=0.0, stuck_high_rate=0.0), (n,), gen)
    cells.g.fill_(g_us * 1e-6)
    cells.reset_final.fill_(reset_final)
    relax(preset, cells, seconds, gen)
    return float((cells.g - g_us * 1e-6).std())


@pytest.mark.parametrize("exponent", [0.0, 0.5, 1.0])
def test_relaxation_spread_follows_the_level_law(exponent):
    preset = PRESET.replace(relax_g_exp=exponent)
    low, high = (_relaxed_spread(preset, g, False, 1e4) for g in (30.0, 150.0))
    assert high / low == pytest.approx(5.0**exponent, rel=0.05)


def test_set_terminated_states_relax_more_than_reset_terminated_ones():
    """Same level, same time: the ratio of the spreads is the ratio of the preset's
    SET-terminated and RESET-terminated parameters (fast part + log(t) growth)."""
    seconds = equivalent_seconds(PRESET, 12 * 3600, celsius(150))
    set_sd = _relaxed_spread(PRESET, 70.0, False, seconds)
    reset_sd = _relaxed_spread(PRESET, 70.0, True, seconds)
    ell = math.log1p(seconds / PRESET.relax_t0_s)
    expected = math.hypot(PRESET.relax_fast_set, PRESET.relax_log_set * ell) / math.hypot(
        PRESET.relax_fast_reset, PRESET.relax_log_reset * ell
    )
    assert set_sd / reset_sd == pytest.approx(expected, rel=0.05)
    assert set_sd > 1.5 * reset_sd


def test_older_preset_files_without_the_level_exponent_still_load(tmp_path):
    import json

    from memlearn.devices.preset import to_dict

    data = to_dict(PRESET)
    del data["drift"]["relax_g_exp"]
    del data["read"]["read_noise_rel"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(data))
    old = load_preset(str(path))
    assert old.relax_g_exp == 0.5 and old.read_noise_rel == 0.0
    assert old.sources["relax_g_exp"].startswith("[I]")
