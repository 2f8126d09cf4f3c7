"""Preset variants for sweeps: spread scaled relative to the level spacing, and the window."""

from __future__ import annotations

import pytest

from memlearn.devices import characterize, load_preset, save_preset
from memlearn.devices.variants import (
    RESOLUTION_PARAMETERS,
    SPREAD_PARAMETERS,
    match_spread,
    reachable_window,
    scale_spread,
    spread_ratio,
    with_window,
)
from memlearn.errors import MemlearnError

BASE = load_preset("hfo2-mlc")


@pytest.fixture(scope="module")
def ratios():
    """Measured sigma / spacing and pulses per cell at spread factors 0.5, 1, 2 (8 levels)."""
    out = {}
    for f in (0.5, 1.0, 2.0):
        p = scale_spread(BASE, f)
        ch = characterize(p, "hybrid", 8, 400, seed=2)
        out[f] = (spread_ratio(p, 8, "hybrid", 400, seed=2), ch.pulses_per_cell, ch)
    return out


def test_scaled_spread_widens_the_states_in_proportion(ratios):
    r1 = ratios[1.0][0]
    assert 0.05 < r1 < 0.4
    assert ratios[0.5][0] / r1 == pytest.approx(0.5, rel=0.15)
    assert ratios[2.0][0] / r1 == pytest.approx(2.0, rel=0.15)
    # the controller's resolution scales too, so convergence costs about the same pulses
    for f in (0.5, 2.0):
        assert ratios[f][1] == pytest.approx(ratios[1.0][1], rel=0.2)
    # more spread relative to the spacing, more overlap
    errors = [ratios[f][2].programmed.error_rate for f in (0.5, 1.0, 2.0)]
    assert errors[0] < errors[1] < errors[2]


def test_scale_spread_changes_only_the_spread_and_says_so():
    p = scale_spread("hfo2-mlc", 0.5)
    for key in (*SPREAD_PARAMETERS, *RESOLUTION_PARAMETERS):
        assert p.values[key] == pytest.approx(0.5 * BASE.values[key])
        assert p.sources[key].startswith("[E] scaled x0.5 by scale_spread (was ")
    assert p.iset_start == pytest.approx(1 - (1 - BASE.iset_start) * 0.5)
    for key in ("g_min", "g_max", "relax_mean", "stuck_low_rate", "endurance", "ea_ev"):
        assert p.values[key] == BASE.values[key]
    assert BASE.set_c2c == load_preset("hfo2-mlc").set_c2c  # the original is untouched
    assert p.with_spread(2.0).set_c2c == pytest.approx(BASE.set_c2c)
    assert p.with_spread(2.0).meta["spread_factor"] == "1"
    with pytest.raises(MemlearnError, match=r"spread factor must be in \[0.001, 3\]"):
        scale_spread(BASE, 0.0)
    with pytest.raises(MemlearnError, match="needs a resistive"):
        scale_spread("feram-1t1c", 0.5)


def test_match_spread_hits_the_requested_ratio():
    p = match_spread(BASE, 0.08, levels=8, cells=300)
    assert float(p.meta["spread_ratio"]) == pytest.approx(0.08, rel=0.03)
    assert spread_ratio(p, 8, "hybrid", 300) == pytest.approx(0.08, rel=0.03)
    assert 0.3 < float(p.meta["spread_factor"]) < 0.8
    with pytest.raises(MemlearnError, match="ratio .* must be > 0"):
        match_spread(BASE, 0.0)
    with pytest.raises(MemlearnError, match="could not reach"):
        match_spread(BASE, 50.0, cells=100)


def test_with_window_moves_the_levels_and_checks_reachability(tmp_path):
    p = with_window(BASE, 20e-6, 120e-6)
    assert p.window == (20e-6, 120e-6)
    assert float(p.levels(6)[0]) == pytest.approx(20e-6)
    assert float(p.levels(6)[-1]) == pytest.approx(120e-6)
    assert p.sources["g_max"].startswith("[E] window set by with_window")
    again = load_preset(str(save_preset(p, tmp_path / "narrow.toml")))
    assert again.values == p.values
    floor, ceiling = reachable_window(BASE)
    assert ceiling == pytest.approx(BASE.icc_max / BASE.set_k_volts)
    assert 0 < floor < BASE.g_min
    with pytest.raises(MemlearnError, match=r"g_max <= 200 uS"):
        BASE.with_window(10e-6, 300e-6)
    with pytest.raises(MemlearnError, match="0 < G_min < G_max"):
        BASE.with_window(100e-6, 50e-6)


def test_wider_window_at_a_fixed_spread_lowers_the_error_rate():
    rates = [
        characterize(BASE.with_window(10e-6, hi), "hybrid", 8, 400, seed=3).programmed.error_rate
        for hi in (70e-6, 110e-6, 190e-6)
    ]
    assert rates[0] > rates[1] > rates[2]
