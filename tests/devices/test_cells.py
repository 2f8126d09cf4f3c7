"""Cell-level physics: read noise law, SET compliance, endurance wear-out, stuck-cell rates."""

from __future__ import annotations

import math

import pytest
import torch

from memlearn.devices import load_preset, program, read, read_sigma, sample_cells
from memlearn.devices.cells import STUCK_HIGH, STUCK_LOW, STUCK_NONE
from memlearn.devices.physics import (
    compliance,
    gate_voltage,
    read_energy,
    reset_pulse,
    set_pulse,
)

PRESET = load_preset("hfo2-mlc")


def test_read_noise_is_the_cmo_law_in_age_plus_one_percent_of_g_max():
    """aihwkit ReRamCMONoiseModel: sigma = K log10(g / uS) sqrt(ln((t + t_read) / (2 t_read)))
    uS with t the time since programming and t_read = 1 us, plus additive constant noise of
    1 % of the maximum weight (g_max)."""
    assert PRESET.read_t_r == 1e-6 and PRESET.read_noise == 0.0277
    gen = torch.Generator().manual_seed(0)
    g_max = PRESET.g_max
    for age in (1.0, 3600.0, 3e8):
        for g_us in (10.0, 50.0, 150.0):
            g = torch.full((40000,), g_us * 1e-6)
            flicker = 0.0277 * math.log10(g_us) * math.sqrt(math.log((age + 1e-6) / 2e-6)) * 1e-6
            expected = math.hypot(flicker, 0.01 * g_max)
            assert float(read_sigma(PRESET, g[:1], age)) == pytest.approx(expected, rel=1e-5)
            reads = read(PRESET, g, gen, age)
            assert float(reads.std()) == pytest.approx(expected, rel=0.03)
            assert abs(float(reads.mean()) - g_us * 1e-6) < 5 * expected / 200  # n = 40000
    # default age: the settle time (a state's first use); a tensor of ages works per cell
    g = torch.tensor([50e-6, 50e-6])
    assert torch.allclose(read_sigma(PRESET, g[:1]), read_sigma(PRESET, g[:1], PRESET.settle_s))
    per_cell = read_sigma(PRESET, g, torch.tensor([1.0, 3e8]))
    assert float(per_cell[0]) == pytest.approx(float(read_sigma(PRESET, g[:1], 1.0)), rel=1e-6)
    assert float(per_cell[1]) > float(per_cell[0])  # 1/f noise grows with the state's age
    quiet = PRESET.replace(read_noise_rel=0.0)
    # the additive term is the same for every level; the 1/f term vanishes for t <= t_read
    assert float(read_sigma(quiet, g[:1], 0.5e-6)) == 0.0
    sigma = read_sigma(quiet, torch.tensor([1e-5, 1e-4]), 1.0)
    assert float(sigma[1] / sigma[0]) == pytest.approx(2.0, rel=1e-5)  # log10(100) / log10(10)
    flat = read_sigma(PRESET.replace(read_noise=0.0), torch.tensor([1e-5, 1.5e-4]))
    assert torch.allclose(flat, torch.full((2,), 0.01 * g_max))


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
    # energy = V_set * I_cc * t_pulse with the compliance the gate DAC realises
    icc_real = float(compliance(PRESET, vg)[0])
    assert float(energy[0]) == pytest.approx(1.8 * icc_real * 100e-9, rel=1e-6)
    assert 1e-12 <= float(energy[0]) <= 20e-12  # 1-20 pJ per pulse (REFERENCE.md s2)
    # a SET never thins an existing filament
    g_hi, _ = set_pulse(PRESET, torch.full_like(icc, 140e-6), icc, torch.ones_like(icc), gen)
    assert bool((g_hi >= 140e-6).all())


def test_reset_and_verify_read_energies_follow_v_i_t():
    gen = torch.Generator().manual_seed(3)
    g = torch.full((5,), 120e-6)
    _, e_reset = reset_pulse(PRESET, g, 1.4, torch.zeros(5), gen)
    # E = V * I * t with I = (fraction of V across the cell) * G
    expected = 1.4 * (0.5 * 1.4 * 120e-6) * 100e-9
    assert torch.allclose(e_reset.double(), torch.full((5,), expected, dtype=torch.float64))
    e_read = read_energy(PRESET, g)
    assert float(e_read[0]) == pytest.approx(0.2**2 * 120e-6 * 100e-9 + 2e-12, rel=1e-6)


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


@pytest.mark.parametrize("strategy", ["iterative-set", "hybrid", "single-set"])
def test_endurance_runs_out_inside_the_program_operation(strategy):
    """A cell that reaches its endurance in the middle of a program-and-verify operation sticks
    at that pulse: later pulses do nothing and it never verifies."""
    gen = torch.Generator().manual_seed(4)
    fragile = PRESET.replace(endurance=4.0, endurance_sigma=0.0, stuck_low_rate=0.0,
                             stuck_high_rate=0.0)  # 4 cycles = 8 pulses  # fmt: skip
    cells = sample_cells(fragile, (2000,), gen)
    target = torch.full((2000,), 70e-6)
    r = program(fragile, target, strategy, generator=gen, cells=cells)
    worn = cells.stuck == STUCK_HIGH
    assert torch.equal(worn, r.pulses >= 8)
    assert torch.equal(cells.pulses, r.pulses.float())
    assert bool((cells.g[worn] == fragile.g_stuck_high).all())
    if strategy != "single-set":
        assert int(worn.sum()) > 100 and int((~worn).sum()) > 100
        assert bool(r.failed[worn].all()) and not bool(r.failed[~worn].any())
        # once worn out, the controller keeps pulsing to its limit in vain
        assert bool((r.pulses[worn] == int(fragile.max_pulses)).all())


def test_flat_views_follow_the_cells_and_a_replaced_field():
    """``flat()`` is the same object while nothing is replaced, writes through to the cells,
    and sees a field replaced on either side."""
    cells = sample_cells(load_preset("hfo2-mlc"), (2, 3, 4, 2), torch.Generator().manual_seed(0))
    flat = cells.flat()
    assert flat is cells.flat() and flat.g.shape == (48,)
    flat.g[5] = 7e-6
    assert float(cells.g.view(-1)[5]) == pytest.approx(7e-6)
    cells.g = torch.full((2, 3, 4, 2), 1e-5)
    assert cells.flat() is not flat and bool((cells.flat().g == 1e-5).all())
    again = cells.flat()
    again.age_s = torch.ones(48)  # replaced on the flat side: a new view of the cells' own
    assert cells.flat() is not again and not bool(cells.flat().age_s.any())
    part = cells.take(torch.tensor([0, 47]))
    part.g.fill_(2e-5)
    cells.put(torch.tensor([0, 47]), part, frozen=False)
    assert float(cells.g.view(-1)[47]) == pytest.approx(2e-5)
