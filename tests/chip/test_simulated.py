"""SimulatedChip behind the Chip interface: shapes, per-chip variation, seeds, time, ledger."""

from __future__ import annotations

import pytest
import torch

from memlearn.chip.base import Chip, ProgramReport, reference_layout
from memlearn.chip.simulated import SimulatedChip
from memlearn.crossbar import DifferentialMapping
from memlearn.errors import MemlearnError


def weights_to_targets(chip, array, seed=0):
    spec = chip.layout.array(array)
    w = torch.randn(
        chip.n_chips, spec.rows, spec.cols, generator=torch.Generator().manual_seed(seed)
    )
    return DifferentialMapping.from_weights(w, chip.levels).to_conductance(w)


@pytest.fixture(scope="module")
def programmed():
    chip = SimulatedChip(4, preset="hfo2-mlc", layout=reference_layout(), levels=8, seed=3)
    reports = {a: chip.program(a, *weights_to_targets(chip, a)) for a in ("fc1", "fc2")}
    return chip, reports


def test_interface_shapes_and_reports(programmed):
    chip, reports = programmed
    assert isinstance(chip, Chip)
    assert chip.conductance_window == (10e-6, 150e-6)
    assert chip.read_voltage == pytest.approx(0.2)
    for name, rows, cols in (("fc1", 32, 16), ("fc2", 16, 5)):
        r = reports[name]
        assert isinstance(r, ProgramReport)
        assert r.cells_written.shape == (4,) and r.energy_j.shape == (4,)
        assert bool((r.cells_written <= 2 * rows * cols).all())
        assert bool((r.verify_reads == r.set_pulses + r.reset_pulses + r.cells_written).any())
        gp, gm = chip.read_conductances(name)
        assert gp.shape == gm.shape == (4, rows, cols)
        wp, wm = chip.write_counts(name)
        assert wp.shape == (4, rows, cols) and wp.dtype == torch.int32
        assert torch.equal((wp + wm).sum(dim=(1, 2)).long(), r.cells_written)
        out = chip.multiply(name, torch.rand(4, 3, rows) * 0.2)
        assert out.shape == (4, 3, cols)
    ledger = chip.energy_ledger()
    assert set(ledger) >= {"program", "verify", "read", "dac", "adc"}
    assert all(t.shape == (4,) for t in ledger.values())
    total_prog = reports["fc1"].energy_j + reports["fc2"].energy_j
    assert torch.allclose(ledger["program"] + ledger["verify"], total_prog)
    # energy of a full deployment of the 2 kbit chip stays far below the 10 uJ budget
    assert float(total_prog.max()) < 1e-6


def test_chips_differ_but_seeds_reproduce():
    a = SimulatedChip(2, seed=7)
    b = SimulatedChip(2, seed=7)
    c = SimulatedChip(2, seed=8)
    for chip in (a, b, c):
        chip.program("fc1", *weights_to_targets(chip, "fc1"), strategy="single-set")
    ga, _ = a.true_conductances("fc1")
    gb, _ = b.true_conductances("fc1")
    gc, _ = c.true_conductances("fc1")
    assert torch.equal(ga, gb)
    assert not torch.equal(ga, gc)
    assert not torch.equal(ga[0], ga[1])  # same targets, different devices per chip
    assert not torch.equal(a.arrays["fc1"].cells.set_gain[0], a.arrays["fc1"].cells.set_gain[1])


def test_advance_bake_widens_and_counts_no_writes(programmed):
    chip = SimulatedChip(4, seed=3)
    gp_t, gm_t = weights_to_targets(chip, "fc1")
    chip.program("fc1", gp_t, gm_t, strategy="iterative-set")
    g0, _ = chip.true_conductances("fc1")
    writes0 = chip.write_counts("fc1")[0].clone()
    chip.advance(12 * 3600, kelvin=423.15)
    g1, _ = chip.true_conductances("fc1")
    assert float((g1 - gp_t).abs().mean()) > float((g0 - gp_t).abs().mean())
    assert torch.equal(chip.write_counts("fc1")[0], writes0)
    with pytest.raises(MemlearnError, match="seconds"):
        chip.advance(-1.0)
    with pytest.raises(MemlearnError, match="kelvin"):
        chip.advance(1.0, kelvin=0.0)


def test_fixed_pulses_and_errors(programmed):
    chip = SimulatedChip(2, seed=1)
    chip.program("fc2", *weights_to_targets(chip, "fc2"))
    plus = torch.zeros(2, 16, 5, dtype=torch.int64)
    plus[:, 0, 0] = 1
    rep = chip.pulse("fc2", plus, torch.zeros_like(plus))
    assert rep.set_pulses.tolist() == [1, 1] and rep.cells_written.tolist() == [1, 1]
    with pytest.raises(MemlearnError, match="unknown array 'fc9'"):
        chip.read_conductances("fc9")
    with pytest.raises(MemlearnError, match="unknown strategy"):
        chip.program("fc2", *weights_to_targets(chip, "fc2"), strategy="best")
    with pytest.raises(MemlearnError, match="n_chips"):
        SimulatedChip(0)
    with pytest.raises(MemlearnError, match="unknown preset"):
        SimulatedChip(1, preset="nope")
    with pytest.raises(MemlearnError, match="levels"):
        SimulatedChip(1, levels=1)
