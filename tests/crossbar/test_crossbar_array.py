"""Crossbar arrays: writes only changed cells, exact counters, ledger, VMM accuracy."""

from __future__ import annotations

import math

import pytest
import torch

from memlearn.crossbar import CrossbarArray, DifferentialMapping, Ledger, adc_lsb, dac
from memlearn.crossbar.ledger import ADC_SECONDS_PER_BIT, DAC_SETTLE_S
from memlearn.devices.cells import STUCK_NONE
from memlearn.devices.preset import load_preset
from memlearn.errors import MemlearnError


def make(n=3, rows=40, cols=6, **kw):
    return CrossbarArray(
        "hfo2-mlc", n, rows, cols, generator=torch.Generator().manual_seed(0), **kw
    )


def targets(arr, seed=0):
    w = torch.randn(arr.n_chips, arr.rows, arr.cols, generator=torch.Generator().manual_seed(seed))
    m = DifferentialMapping.from_weights(w, arr.preset.levels(8))
    return m.to_conductance(w)


def test_program_writes_only_changed_cells_and_counts_them_exactly():
    arr = make()
    gp, gm = targets(arr)
    first = arr.program(gp, gm, "hybrid")
    assert torch.equal(arr.writes.sum(dim=(1, 2, 3)).double(), first.cells_written)
    assert int(first.cells_written.sum()) > 0.95 * arr.cells.g.numel()
    again = arr.program(gp, gm, "hybrid")
    assert float(again.cells_written.sum()) == 0 and float(again.energy_j.sum()) == 0
    # change the G+ targets of one column of chip 1 only
    gp2 = gp.clone()
    gp2[1, :, 2] = torch.where(gp[1, :, 2] > 50e-6, 10e-6, 130e-6)
    before = arr.writes.clone()
    third = arr.program(gp2, gm, "iterative-set")
    delta = arr.writes - before
    assert int(delta.sum()) == int(third.cells_written.sum())
    changed = torch.zeros_like(delta, dtype=torch.bool)
    changed[1, :, 2, 0] = True
    assert bool((delta[~changed] == 0).all())
    assert int(third.cells_written[1]) == int(delta[1].sum()) and int(delta[1].sum()) > 30
    # a mask excludes pairs even when their targets changed
    mask = torch.zeros(arr.n_chips, arr.rows, arr.cols, dtype=torch.bool)
    fourth = arr.program(gp, gm, "hybrid", mask=mask)
    assert float(fourth.cells_written.sum()) == 0


def test_ledger_totals_equal_the_sum_of_their_parts():
    arr = make()
    gp, gm = targets(arr)
    reports = [arr.program(gp, gm, "hybrid")]
    arr.read()
    arr.multiply(torch.rand(arr.n_chips, 7, arr.rows) * 0.2)
    reports.append(arr.pulse(torch.ones_like(gp, dtype=torch.int8), torch.zeros_like(gp).long()))
    e = arr.ledger.energy_by_category()
    total = arr.ledger.total_energy()
    assert torch.allclose(total, sum(e.values()))
    prog = sum(r.energy_j for r in reports)
    assert torch.allclose(e["program"] + e["verify"], prog, rtol=1e-6)
    assert torch.allclose(e["verify"], reports[0].verify_energy_j, rtol=1e-6)
    assert all(bool((e[c] > 0).all()) for c in ("program", "verify", "read", "dac", "adc"))
    merged = Ledger(arr.n_chips)
    merged.merge(arr.ledger)
    merged.merge(arr.ledger)
    assert torch.allclose(merged.total_energy(), 2 * total)


def test_ledger_entries_follow_their_formulas():
    """Each category recomputed from V, G, t and the named constants."""
    arr = make(n=2, rows=40, cols=6)
    p = arr.preset
    gp, gm = targets(arr)
    rep = arr.program(gp, gm, "hybrid")
    # verify reads: v_read^2 G t + sense overhead each, with G between the window's ends
    n_reads = rep.verify_reads
    lo = n_reads * (p.v_read**2 * 0.0 * p.read_pulse_s + p.read_overhead_j)
    hi = n_reads * (p.v_read**2 * 250e-6 * p.read_pulse_s + p.read_overhead_j)
    e = arr.ledger.energy_by_category()
    assert bool((e["verify"] >= lo).all() and (e["verify"] <= hi).all())
    t = arr.ledger.latency_by_category()
    assert torch.allclose(t["verify"], n_reads * p.read_pulse_s)
    pulses_t = rep.set_pulses * p.set_pulse_s + rep.reset_pulses * p.reset_pulse_s
    assert torch.allclose(t["program"], pulses_t)
    # a VMM: cell energy sum V^2 G t, DAC per row, ADC per tile column (Walden), latencies
    before_e, before_t = arr.ledger.energy_by_category(), arr.ledger.latency_by_category()
    batch = 5
    volts = torch.rand(2, batch, 40, generator=torch.Generator().manual_seed(9)) * p.v_read
    arr.multiply(volts)
    e, t = arr.ledger.energy_by_category(), arr.ledger.latency_by_category()
    v_in = dac(volts, 8, p.v_read).double()
    g = arr.cells.g.double().sum(-1)  # G+ + G- per pair
    cell = torch.einsum("nbr,nrc->n", v_in**2, g) * p.read_pulse_s
    assert torch.allclose(e["read"] - before_e["read"], cell, rtol=1e-5)
    assert torch.allclose(e["dac"] - before_e["dac"], torch.full((2,), batch * 40 * p.dac_j,
                                                                  dtype=torch.float64))  # fmt: skip
    conversions = batch * 2 * 6  # 2 row tiles x 6 columns per input vector
    e_adc = conversions * p.adc_fom_j * 2**8
    assert torch.allclose(e["adc"] - before_e["adc"], torch.full((2,), e_adc, dtype=torch.float64))
    assert float((t["read"] - before_t["read"])[0]) == pytest.approx(batch * p.read_pulse_s)
    assert float((t["dac"] - before_t["dac"])[0]) == pytest.approx(batch * DAC_SETTLE_S)
    assert float((t["adc"] - before_t["adc"])[0]) == pytest.approx(batch * 8 * ADC_SECONDS_PER_BIT)


def test_ideal_tile_reproduces_the_float_product_of_the_weights():
    """Noise-free cells written exactly to 64 levels, 16-bit converters: the VMM, mapped back
    to weight units, equals x @ W within the level quantisation and converter bounds."""
    n, rows, cols = 2, 50, 7
    arr = make(n=n, rows=rows, cols=cols, read_noise=False, adc_bits=16, dac_bits=16,
               adc_full_scale=5e-4)  # fmt: skip
    w = torch.randn(n, rows, cols, generator=torch.Generator().manual_seed(4))
    m = DifferentialMapping.from_weights(w, arr.preset.levels(64))
    gp, gm = m.to_conductance(w)
    arr.cells.g.copy_(torch.stack((gp, gm), dim=-1))  # an ideal write (no programming noise)
    x = torch.rand(n, 3, rows, generator=torch.Generator().manual_seed(5))
    out = arr.multiply(x * arr.v_read) / arr.v_read * m.scale.view(n, 1, 1)
    exact = torch.einsum("nbr,nrc->nbc", x.double(), w.double())
    dw = float(m.weight_step.max()) / 2  # level quantisation, per weight
    dv = 1.0 / (2**16 - 1) / 2  # DAC, per input (relative to v_read)
    lsb = adc_lsb(16, arr.adc_full_scale) / 2 * math.ceil(rows / 32)
    bound = (
        x.abs().sum(-1, keepdim=True).double() * dw
        + rows * dv * float(w.abs().max())
        + lsb / arr.v_read * float(m.scale.max())
    )
    err = (out.double() - exact).abs()
    assert bool((err <= bound * 1.01).all())
    assert float(err.max()) < 0.02 * float(exact.abs().max())


def test_ideal_tile_product_matches_float_matmul_within_quantisation():
    arr = make(n=2, rows=70, cols=5, read_noise=False, adc_bits=16, dac_bits=12)
    gp, gm = targets(arr, seed=1)
    arr.program(gp, gm, "hybrid")
    volts = torch.rand(2, 9, 70, generator=torch.Generator().manual_seed(2)) * arr.v_read
    out = arr.multiply(volts)
    tp, tm = arr.conductances()
    exact = torch.einsum("nbr,nrc->nbc", volts.double(), (tp - tm).double())
    tiles = math.ceil(70 / 32)
    dv = arr.v_read / (2**12 - 1) / 2
    bound = 70 * dv * float((tp - tm).abs().max()) + tiles * adc_lsb(16, arr.adc_full_scale) / 2
    err = (out.double() - exact).abs().max()
    assert float(err) <= bound * 1.01 + 1e-12
    assert float(exact.abs().max()) > 100 * bound  # the bound is tight relative to the signal
    # with noise and 8-bit converters the error grows but stays a small fraction
    noisy = make(n=2, rows=70, cols=5)
    noisy.cells = arr.cells
    err8 = (noisy.multiply(volts).double() - exact).abs().max()
    assert float(err) < float(err8) < 0.1 * float(exact.abs().max())


def test_adc_clips_and_ir_drop_lowers_currents():
    arr = make(n=1, rows=32, cols=4, read_noise=False, adc_bits=None, dac_bits=None)
    gp = torch.full((1, 32, 4), 150e-6)
    gm = torch.full((1, 32, 4), 10e-6)
    arr.program(gp, gm, "hybrid")
    v = torch.full((1, 1, 32), arr.v_read)
    ideal = arr.multiply(v)
    clipped = make(n=1, rows=32, cols=4, read_noise=False, adc_bits=8, adc_full_scale=1e-4)
    clipped.cells = arr.cells
    assert float(clipped.multiply(v).max()) <= 1e-4 + 1e-12 < float(ideal.max())
    drops = []
    for ohms in (0.0, 2.0, 10.0):
        a = make(n=1, rows=32, cols=4, read_noise=False, adc_bits=None, dac_bits=None,
                 wire_ohms=ohms)  # fmt: skip
        a.cells = arr.cells
        drops.append(float(a.multiply(v).sum()))
    assert drops[0] > drops[1] > drops[2] > 0


def test_pulses_move_conductance_in_their_direction():
    arr = make(n=2, rows=32, cols=8)
    arr.program(torch.full((2, 32, 8), 70e-6), torch.full((2, 32, 8), 70e-6), "hybrid")
    g0p, g0m = arr.conductances()
    up = torch.ones(2, 32, 8, dtype=torch.int64)
    rep = arr.pulse(up, -up)
    gp, gm = arr.conductances()
    assert float((gp - g0p).mean()) > 1e-6 and float((gm - g0m).mean()) < -1e-6
    assert torch.equal(rep.set_pulses, torch.full((2,), 256.0, dtype=torch.float64))
    assert torch.equal(rep.reset_pulses, rep.set_pulses)
    # after a pulse the cell's last target is forgotten, so re-programming rewrites it
    again = arr.program(torch.full((2, 32, 8), 70e-6), torch.full((2, 32, 8), 70e-6), "hybrid")
    assert float(again.cells_written.sum()) > 0


def test_bad_inputs():
    arr = make()
    gp, gm = targets(arr)
    with pytest.raises(MemlearnError, match="shape"):
        arr.program(gp[:, :3], gm, "hybrid")
    with pytest.raises(MemlearnError, match="window"):
        arr.program(gp * 10, gm, "hybrid")
    with pytest.raises(MemlearnError, match="unknown strategy"):
        arr.program(gp, gm, "fast")
    with pytest.raises(MemlearnError, match="within"):
        arr.multiply(torch.ones(arr.n_chips, 2, arr.rows))
    with pytest.raises(MemlearnError, match="volts must have shape"):
        arr.multiply(torch.zeros(arr.n_chips, 2, arr.rows + 1))
    with pytest.raises(MemlearnError, match=r"\{-1, 0, 1\}"):
        arr.pulse(torch.full(gp.shape, 2), torch.zeros(gp.shape, dtype=torch.int64))
    with pytest.raises(MemlearnError, match="adc_bits"):
        make(adc_bits=1)
    with pytest.raises(MemlearnError, match="rows"):
        make(rows=0)


def _quiet_aging_array(n=4, rows=32, cols=16):
    """Cells programmed to one level on a preset whose read noise is the 1/f term alone and
    whose states do not drift (so only their age changes with time)."""
    preset = load_preset("hfo2-mlc").replace(
        read_noise_rel=0.0, relax_fast=0.0, relax_log=0.0, relax_mean=0.0
    )
    arr = CrossbarArray(
        preset, n, rows, cols, generator=torch.Generator().manual_seed(5), adc_bits=None,
        dac_bits=None,
    )  # fmt: skip
    level = torch.full((n, rows, cols), 100e-6)
    arr.program(level, level, "hybrid")
    return arr


def _band(preset, age_s: float) -> float:
    """The 1/f law's time factor sqrt(ln((t + t_r) / (2 t_r))) at ``age_s``."""
    t_r = preset.values["read_t_r"]
    return math.sqrt(math.log((age_s + t_r) / (2 * t_r)))


def test_older_cells_read_noisier_as_the_1_over_f_law_says():
    """Reads and products take each cell's age: a month after programming the spread of the
    reads and of the column currents has grown by the law's time factor (same conductances)."""
    arr = _quiet_aging_array()
    v = arr.preset.values
    settle, month = v["settle_s"], 30 * 86400.0
    assert torch.equal(arr.cells.age_s, torch.full_like(arr.cells.age_s, settle))
    healthy = (arr.cells.stuck == STUCK_NONE) & (arr.cells.g > 10e-6)  # stuck cells: no 1/f

    def read_spread() -> float:
        g = arr.cells.g
        unit = v["read_noise"] * 1e-6 * torch.log10(g / 1e-6)  # sigma per unit of time factor
        z = torch.stack([torch.stack(arr.read(), dim=-1) - g for _ in range(4)]) / unit
        return float(z[:, healthy].std())

    volts = torch.full((arr.n_chips, 64, arr.rows), 0.5 * arr.v_read)

    def current_spread() -> torch.Tensor:
        return arr.multiply(volts).std(dim=1).mean()

    g0 = arr.cells.g.clone()
    young_read, young_current = read_spread(), current_spread()
    arr.advance(month)
    assert torch.equal(arr.cells.g, g0)  # no drift: only the age moved
    assert torch.allclose(arr.cells.age_s, torch.full_like(g0, settle + month))
    old_read, old_current = read_spread(), current_spread()
    assert young_read == pytest.approx(_band(arr.preset, settle), rel=0.03)
    assert old_read == pytest.approx(_band(arr.preset, settle + month), rel=0.03)
    ratio = _band(arr.preset, settle + month) / _band(arr.preset, settle)  # ~1.46
    assert float(old_current / young_current) == pytest.approx(ratio, rel=0.05)


def test_a_repeated_input_is_converted_again_once_it_or_the_cells_change():
    """The array keeps the DAC output of its last inputs: an input changed in place, or cells
    changed since, give the product of what they are now, as a fresh array computes it."""
    kept, fresh = make(read_noise=False), make(read_noise=False)
    volts = torch.rand(3, 4, 40, generator=torch.Generator().manual_seed(1)) * kept.v_read
    assert torch.equal(kept.multiply(volts), fresh.multiply(volts.clone()))
    volts.mul_(0.5)  # the same tensor, new values
    assert torch.equal(kept.multiply(volts), fresh.multiply(volts.clone()))
    for arr in (kept, fresh):
        arr.cells.g.mul_(1.5)
    assert torch.equal(kept.multiply(volts), fresh.multiply(volts.clone()))
    with pytest.raises(MemlearnError, match="within"):
        kept.multiply(volts.mul_(4.0))  # changed in place beyond v_read: checked again
