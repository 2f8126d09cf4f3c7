"""What-if preset variants: a scaled programming spread, another window."""

from __future__ import annotations

import pytest

from memlearn.devices import characterize, load_preset
from memlearn.devices.variants import SPREAD_PARAMETERS, reachable_window, scale_spread, with_window
from memlearn.errors import MemlearnError


def test_scale_spread_scales_the_measured_level_width():
    base = load_preset("hfo2-mlc")
    widths = {}
    for factor in (0.5, 1.0, 2.0):
        ch = characterize(scale_spread(base, factor), "hybrid", levels=8, cells=300, seed=1)
        widths[factor] = float(ch.programmed.stds.median())
    assert widths[0.5] == pytest.approx(widths[1.0] / 2, rel=0.3)
    assert widths[2.0] == pytest.approx(widths[1.0] * 2, rel=0.3)


def test_scale_spread_changes_only_the_spread_and_the_pulse_budget():
    base = load_preset("hfo2-mlc")
    tight, wide = scale_spread(base, 0.25), scale_spread(base, 4)
    changed = {k for k in base.values if tight.values[k] != base.values[k]}
    assert changed == set(SPREAD_PARAMETERS) | {"max_pulses"}
    assert tight.max_pulses == 4 * base.max_pulses and wide.max_pulses == base.max_pulses
    assert wide.verify_tolerance == pytest.approx(4 * base.verify_tolerance)
    assert wide.relax_log_set == base.relax_log_set  # retention drift is not a programming spread
    assert tight.name == "hfo2-mlc-spread0.25" and "overridden" in tight.sources["set_c2c"]
    for bad in (0, 0.01, 21, float("nan")):
        with pytest.raises(MemlearnError, match="spread factor must be in"):
            scale_spread(base, bad)
    with pytest.raises(MemlearnError, match="rram"):
        scale_spread("feram-1t1c", 2)


def test_with_window_checks_what_the_cell_reaches():
    base = load_preset("hfo2-mlc")
    low, high = reachable_window(base)
    assert low < base.g_min < base.g_max < high
    narrow = with_window(base, 10e-6, 30e-6)
    assert narrow.window == (10e-6, 30e-6) and narrow.name == "hfo2-mlc-window10-30uS"
    assert narrow.levels(3).tolist() == pytest.approx([10e-6, 20e-6, 30e-6])
    for lo, hi in ((10e-6, 1e-3), (30e-6, 10e-6), (0.0, 50e-6)):
        with pytest.raises(MemlearnError, match="window must satisfy"):
            with_window(base, lo, hi)
