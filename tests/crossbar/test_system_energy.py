"""The system-level energy estimate beside the array ledger."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from memlearn.crossbar.system_energy import (
    LINES,
    SOURCES,
    SYSTEM_130NM,
    Activity,
    SystemConstants,
    constants_record,
    read_operations,
    system_energy,
)
from memlearn.devices.preset import load_preset

PRESET = load_preset("hfo2-mlc")
ACTIVITY = Activity(
    energy_j={"program": 25e-9, "verify": 9e-9, "read": 26e-9, "dac": 0.6e-9, "adc": 10e-9},
    latency_s={"program": 0.36e-3, "verify": 0.3e-3, "read": 0.8e-3, "dac": 1e-6, "adc": 1e-6},
    set_pulses=2000.0,
    reset_pulses=1600.0,
    verify_reads=3000.0,
)


def test_lines_add_up_and_keep_the_array_figure():
    lines = system_energy(ACTIVITY, PRESET)
    assert list(lines) == [*LINES, "total"]
    assert lines["array"] == pytest.approx(sum(ACTIVITY.energy_j.values()))
    assert lines["total"] == pytest.approx(sum(lines[k] for k in LINES))
    assert all(lines[k] > 0 for k in LINES)
    assert lines["total"] > 2 * lines["array"]  # the arrays are a small part of the chip


def test_static_bias_is_power_times_the_ledger_latency():
    c = SYSTEM_130NM
    lines = system_energy(ACTIVITY, PRESET)
    serial = sum(ACTIVITY.latency_s.values())
    programming = ACTIVITY.latency_s["program"] + ACTIVITY.latency_s["verify"]
    assert lines["static_bias"] == pytest.approx(c.bias_w * serial + c.hv_generator_w * programming)
    pulse_energy = ACTIVITY.energy_j["program"]
    assert lines["voltage_generation"] == pytest.approx(pulse_energy * (1 / c.pump_efficiency - 1))
    reads = ACTIVITY.verify_reads + 0.8e-3 / PRESET.values["read_pulse_s"]
    assert read_operations(ACTIVITY, PRESET) == pytest.approx(0.8e-3 / 100e-9)
    assert lines["control_logic"] == pytest.approx(c.control_j * (3600 + reads))


def test_estimate_is_linear_in_the_activity():
    doubled = Activity(
        {k: 2 * v for k, v in ACTIVITY.energy_j.items()},
        {k: 2 * v for k, v in ACTIVITY.latency_s.items()},
        4000.0,
        3200.0,
        6000.0,
    )
    one, two = system_energy(ACTIVITY, PRESET), system_energy(doubled, PRESET)
    for k in one:
        assert two[k] == pytest.approx(2 * one[k])
    idle = system_energy(Activity({}, {}, 0, 0, 0), PRESET)
    assert all(v == 0 for v in idle.values())


def test_constants_have_sources_and_are_checked():
    record = constants_record()
    assert set(record) == set(SOURCES)
    assert all(r["source"].startswith(("[E]", "[P]", "[S]", "[I]")) for r in record.values())
    with pytest.raises(ValueError, match="pump_efficiency"):
        SystemConstants(pump_efficiency=0.0)
    with pytest.raises(ValueError, match="bias_w"):
        SystemConstants(bias_w=-1.0)
    with pytest.raises(ValueError, match=">= 0"):
        Activity({"program": -1.0}, {}, 0, 0, 0)
    # a better pump costs less
    better = dataclasses.replace(SYSTEM_130NM, pump_efficiency=0.6)
    assert (
        system_energy(ACTIVITY, PRESET, better)["total"] < system_energy(ACTIVITY, PRESET)["total"]
    )


def test_a_simulated_chip_s_ledger_feeds_the_estimate():
    from memlearn.chip.base import ArraySpec, ChipLayout
    from memlearn.chip.simulated import SimulatedChip

    chip = SimulatedChip(2, preset=PRESET, layout=ChipLayout((ArraySpec("a", 8, 4),)), levels=8)
    target = torch.full((2, 8, 4), float(chip.levels[5]))
    report = chip.program("a", target, torch.full_like(target, float(chip.levels[0])))
    chip.read_conductances("a")
    energy = {k: float(v[0]) for k, v in chip.energy_ledger().items()}
    latency = {k: float(v[0]) for k, v in chip.latency_ledger().items()}
    activity = Activity(
        energy,
        latency,
        float(report.set_pulses[0]),
        float(report.reset_pulses[0]),
        float(report.verify_reads[0]),
    )
    assert read_operations(activity, PRESET) == pytest.approx(8 * 4 * 2)  # one read per cell
    lines = system_energy(activity, PRESET)
    assert lines["total"] > lines["array"] > 0
