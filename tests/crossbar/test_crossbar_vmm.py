"""Converters and the tiled VMM kernel: grids, clipping, tiling equals one big matmul."""

from __future__ import annotations

import pytest
import torch

from memlearn.crossbar import adc, adc_lsb, analog_vmm, dac


def test_dac_grid_and_error_bound():
    v = torch.linspace(-0.2, 0.2, 1001)
    q = dac(v, 4, 0.2)
    step = 0.2 / 15
    assert torch.allclose(torch.round(q / step) * step, q)
    assert float((q - v).abs().max()) <= step / 2 + 1e-7
    assert torch.equal(dac(v, None, 0.2), v)
    # inputs beyond the range clip to it
    clipped = dac(torch.tensor([-0.5, 0.3, 0.1]), 4, 0.2)
    assert clipped.tolist()[:2] == pytest.approx([-0.2, 0.2])


def test_adc_clips_and_quantises_symmetrically():
    i = torch.linspace(-2e-4, 2e-4, 801)
    q = adc(i, 6, 1e-4)
    lsb = adc_lsb(6, 1e-4)
    assert float(q.abs().max()) <= 1e-4 * (1 + 1e-6)
    inside = i.abs() <= 1e-4
    assert float((q - i)[inside].abs().max()) <= lsb / 2 + 1e-12
    assert torch.allclose(adc(-i, 6, 1e-4), -q)


def test_tiling_without_converters_equals_one_matmul():
    gen = torch.Generator().manual_seed(0)
    volts = torch.rand(3, 4, 50, generator=gen) * 0.2
    gp = torch.rand(3, 50, 7, generator=gen) * 1e-4
    gm = torch.rand(3, 50, 7, generator=gen) * 1e-4
    exact = torch.einsum("nbr,nrc->nbc", volts, gp - gm)
    for tile_rows in (1, 16, 32, 50, 64):
        out = analog_vmm(volts, gp, gm, tile_rows=tile_rows, adc_bits=None, adc_full_scale=1.0)
        assert torch.allclose(out, exact, rtol=1e-5, atol=1e-10)
    # read noise adds variance V^2 (sigma+^2 + sigma-^2) summed over the rows
    sigma = torch.full_like(gp, 1e-6)
    draws = torch.stack([
        analog_vmm(volts, gp, gm, tile_rows=32, adc_bits=None, adc_full_scale=1.0,
                   sigma_plus=sigma, sigma_minus=sigma, generator=gen) - exact
        for _ in range(400)
    ])  # fmt: skip
    expected = (2 * (volts**2).sum(-1, keepdim=True) * 1e-12).sqrt().expand_as(exact)
    assert torch.allclose(draws.std(0).mean(), expected.mean(), rtol=0.05)
