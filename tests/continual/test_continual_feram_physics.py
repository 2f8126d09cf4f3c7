"""FeRAM polarisation physics: switching law, wake-up and fatigue, retention, energy."""

import pytest
import torch

from memlearn.devices.feram import (
    retained_fraction,
    sense_lifetime_cycles,
    switched_fraction,
    switching_energy,
    window_fraction,
)
from memlearn.devices.preset import load_preset
from memlearn.devices.programming import program
from memlearn.devices.retention import relax

FE = load_preset("feram-1t1c")


def test_switching_grows_with_amplitude_and_width():
    v = torch.tensor([1.5, 2.0, 2.5, 3.0])
    p = switched_fraction(FE, v, 4e-9)
    assert (p.diff() > 0).all()
    assert float(p[2]) > 0.999  # [P] 4 ns switching at 2.5 V
    assert float(p[0]) < 0.01
    assert float(switched_fraction(FE, 2.0, 40e-9)) > float(switched_fraction(FE, 2.0, 4e-9))


def test_wake_up_then_fatigue_and_the_sense_lifetime():
    n = torch.tensor([0.0, 1e3, 1e5, 1e7, 1e9])
    w = window_fraction(FE, n)
    assert float(w[0]) == pytest.approx(FE.values["fe_wake_fraction"])
    assert float(w[2]) > float(w[1]) > float(w[0])  # wake-up
    assert float(w[4]) < float(w[3]) < float(w[2])  # fatigue
    life = sense_lifetime_cycles(FE)
    assert float(window_fraction(FE, life)) == pytest.approx(FE.values["fe_sense_margin"], 1e-3)


def test_retention_loss_and_energy():
    r = retained_fraction(FE, torch.tensor([0.0, 1e3, 3e8]))
    assert float(r[0]) == 1.0 and (r.diff() < 0).all()
    e = switching_energy(FE)
    assert 10e-15 < e < 1e-12  # the order of Nat. Electron. 2025's 100 fJ per write


def test_worn_out_cells_stop_switching():
    g = torch.Generator().manual_seed(0)
    target = torch.full((10,), FE.values["g_max"])
    fresh = program(FE, target, generator=g)
    assert not fresh.failed.any()
    worn = program(FE, torch.full((10,), FE.values["g_min"]), generator=g)
    cells = worn.cells
    cells.pulses[:5] = 4 * FE.values["fe_fatigue_cycles"]  # far past the sense lifetime
    again = program(FE, target, generator=g, cells=cells)
    assert again.failed[:5].all() and not again.failed[5:].any()
    relax(FE, again.cells, 1e3, g)
    assert (again.cells.g[5:] == FE.values["g_max"]).all()  # a short wait loses nothing
