"""Physical bounds on inputs: one module, the same refusal in the library, the CLI and the
server."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memlearn.bounds import (
    MAX_KELVIN,
    MAX_SECONDS,
    MIN_KELVIN,
    check_celsius,
    check_hours,
    check_kelvin,
    check_seconds,
    check_spare_pairs,
    check_volts,
    check_years,
)
from memlearn.chip.base import reference_layout
from memlearn.chip.layout import output_layout
from memlearn.chip.simulated import SimulatedChip
from memlearn.cli.main import app
from memlearn.errors import MemlearnError


def test_in_range_values_pass_unchanged():
    assert check_seconds(0) == 0.0 and check_seconds(MAX_SECONDS) == MAX_SECONDS
    assert check_hours(12) == 12.0 and check_years(10) == 10.0
    assert check_kelvin(MIN_KELVIN) == MIN_KELVIN and check_kelvin(MAX_KELVIN) == MAX_KELVIN
    assert check_celsius(150) == pytest.approx(423.15)
    assert check_volts(-0.2) == -0.2
    assert check_spare_pairs(11, 11) == 11


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: check_seconds(-1), ">= 0"),
        (lambda: check_seconds(1e308), "at most 1e+10"),
        (lambda: check_seconds(math.nan), "got nan"),
        (lambda: check_seconds(math.inf), "got inf"),
        (lambda: check_seconds(True), "a number"),
        (lambda: check_seconds("1"), "a number"),
        (
            lambda: check_hours(1e299, "bake hours"),
            "bake hours must be >= 0 and at most 2.778e+06 h",
        ),
        (lambda: check_years(400), "years"),
        (lambda: check_kelvin(0), "[200, 700] K"),
        (lambda: check_kelvin(5273.15), "[200, 700] K"),
        (lambda: check_celsius(5000), "[-73.15, 426.85] °C"),
        (lambda: check_celsius(-300), "°C"),
        (lambda: check_volts(11), "±10 V"),
        (lambda: check_volts(0.3, limit=0.2), "±0.2 V"),
        (lambda: check_spare_pairs(12, 11), "[0, 11]"),
        (lambda: check_spare_pairs(-1, 11), "[0, 11]"),
        (lambda: check_spare_pairs(1.0, 11), "integer"),
    ],
)
def test_out_of_range_values_name_the_allowed_range(call, words):
    with pytest.raises(MemlearnError) as info:
        call()
    assert words in str(info.value)


def test_the_library_refuses_what_would_overflow():
    chip = SimulatedChip(1, seed=0)
    with pytest.raises(MemlearnError, match="at most 1e"):
        chip.advance(1e308)
    with pytest.raises(MemlearnError, match="700"):
        chip.advance(1.0, kelvin=5000.0)
    chip.advance(MAX_SECONDS, kelvin=MAX_KELVIN)  # the extreme allowed case stays finite
    g_plus, g_minus = chip.true_conductances("fc1")
    assert bool(g_plus.isfinite().all()) and bool(g_minus.isfinite().all())
    with pytest.raises(MemlearnError, match=r"\[0, 11\]"):
        output_layout(reference_layout(), 12)


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--bake-hours", "1e299"], "--bake-hours must be >= 0"),
        (["--bake-hours", "1", "--bake-celsius", "5000"], "--bake-celsius must be"),
        (["--plot", "/no/such/dir/x.png"], "does not exist"),
    ],
)
def test_device_characterize_refuses_unphysical_input(args, words):
    result = CliRunner().invoke(app, ["device", "characterize", "--cells", "10", *args])
    assert result.exit_code == 2
    lines = [ln for ln in result.output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and words in lines[0]
    assert not Path("/no/such").exists()


def test_presets_are_held_to_the_same_voltage_and_temperature_bounds():
    from memlearn.devices.preset import derive, list_presets, load_preset

    for name in list_presets():
        load_preset(name)  # every shipped preset lies within the bounds
    preset = load_preset("hfo2-mlc")
    with pytest.raises(MemlearnError, match=r"v_read must be a voltage within ±10 V, got 200 V"):
        derive(preset, {"v_read": 200.0}, "a mV value given in V")
    with pytest.raises(MemlearnError, match=r"t_ref_k must be a temperature in \[200, 700\] K"):
        derive(preset, {"t_ref_k": 25.0}, "a °C value given in K")
