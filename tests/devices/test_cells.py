"""Cell-level physics: read noise law, SET compliance, endurance wear-out, stuck-cell rates."""

from __future__ import annotations

import math

import pytest
import torch

from memlearn.devices import load_preset, program, read, read_sigma, sample_cells
from memlearn.devices.cells import STUCK_HIGH, STUCK_LOW, STUCK_NONE
from memlearn.devices.physics import compliance, gate_voltage, set_pulse

PRESET = load_preset("hfo2-mlc")


def test_read_noise_follows_the_cmo_law():
    gen = torch.Generator().manual_seed(0)
    for g_us in (10.0, 50.0, 150.0):
        g = torch.full((40000,), g_us * 1e-6)
        reads = read(PRESET, g, gen)
        t, tr = PRESET.read_pulse_s, PRESET.read_t_r
        expected = 0.0277 * math.log(g_us) * math.sqrt(math.log((t + tr) / (2 * tr))) * 1e-6
        assert float(reads.std()) == pytest.approx(expected, rel=0.03)
        assert float(read_sigma(PRESET, g[:1])) == pytest.approx(expected, rel=1e-5)


def test_set_conductance_follows_the_compliance():
    gen = torch.Generator().manual_seed(1)
    icc = torch.full((20000,), 40e-6)
    vg = gate_voltage(PRESET, icc)
    assert float(vg[0]) == pytest.approx(round(float(vg[0]) / 5e-3) * 5e-3)  # on the DAC grid
    assert float(compliance(PRESET, vg)[0]) == pytest.approx(40e-6, rel=0.02)
    g, energy = set_pulse(PRESET, torch.full_like(icc, 1e-6), icc, torch.ones_like(icc), gen)
    assert float(g.mean()) == pytest.approx(40e-6 / 0.4, rel=0.02)  # G = I_cc / 0.4 V
    expected_sigma = 0.09 * math.sqrt(100e-6 * 100e-6)
    assert float(g.std()) == pytest.approx(expected_sigma, rel=0.05)
    assert 1e-12 <= float(energy.mean()) <= 20e-12  # 1-20 pJ per pulse (REFERENCE.md s2)
    # a SET never thins an existing filament
    g_hi, _ = set_pulse(PRESET, torch.full_like(icc, 140e-6), icc, torch.ones_like(icc), gen)
    assert bool((g_hi >= 140e-6).all())


def test_stuck_rates_and_endurance_wear_out():
    gen = torch.Generator().manual_seed(2)
    cells = sample_cells(PRESET, (200000,), gen)
    low = float((cells.stuck == STUCK_LOW).float().mean())
    high = float((cells.stuck == STUCK_HIGH).float().mean())
    assert low == pytest.approx(PRESET.stuck_low_rate, rel=0.1)
    assert high == pytest.approx(PRESET.stuck_high_rate, rel=0.15)
    fragile = PRESET.replace(endurance=3.0, endurance_sigma=0.0, stuck_low_rate=0.0,
                             stuck_high_rate=0.0)  # fmt: skip
    cells = sample_cells(fragile, (500,), gen)
    targets = (torch.full((500,), 30e-6), torch.full((500,), 120e-6))
    for i in range(6):
        r = program(fragile, targets[i % 2], "hybrid", generator=gen, cells=cells)
    worn = cells.stuck != STUCK_NONE
    assert bool((worn == (cells.pulses >= 6)).all())  # 3 cycles = 6 pulses
    assert float(worn.float().mean()) > 0.9
    assert bool(r.failed[worn & (r.pulses > 0)].float().mean() > 0.9)
    assert bool((cells.g[worn] == fragile.g_stuck_high).all())
