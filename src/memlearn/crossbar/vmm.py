"""Analog vector-matrix product on differential pairs: DAC, tiled column currents with read
noise and optional first-order IR drop, ADC per tile.

Shapes: ``volts [n, batch, rows]``, conductances ``[n, rows, cols]`` (S) for the G+ and G-
cells, result ``[n, batch, cols]`` differential currents I+ - I- in amperes.  Rows are split
into tiles of ``tile_rows``; each tile's column currents are digitised separately and summed
digitally, as on a chip with one ADC per tile column.
"""

from __future__ import annotations

import math

import torch

from memlearn.errors import MemlearnError


def dac(volts: torch.Tensor, bits: int | None, v_max: float) -> torch.Tensor:
    """Row voltages through a DAC of ``bits`` magnitude bits over ``[0, v_max]`` volts (the sign
    is the pulse polarity): clipped to ``±v_max`` and rounded to the grid; ``bits=None`` is
    ideal (no clipping, no rounding)."""
    if bits is None:
        return volts
    if not v_max > 0:
        raise MemlearnError(f"DAC range v_max must be > 0 V, got {v_max}")
    steps = 2**bits - 1
    return torch.round(volts.clamp(-v_max, v_max) / v_max * steps) * (v_max / steps)


def adc(current: torch.Tensor, bits: int | None, full_scale: float) -> torch.Tensor:
    """Clip to ``±full_scale`` amperes and quantise with ``bits`` bits (sign included);
    ``bits=None`` is ideal (no clipping, no quantisation)."""
    if bits is None:
        return current
    steps = 2 ** (bits - 1) - 1
    lsb = full_scale / steps
    return torch.round(current.clamp(-full_scale, full_scale) / lsb) * lsb


def adc_lsb(bits: int | None, full_scale: float) -> float:
    """Current step (A) of the ADC; 0 for an ideal one."""
    return 0.0 if bits is None else full_scale / (2 ** (bits - 1) - 1)


def ir_drop(g: torch.Tensor, wire_ohms: float, tile_rows: int, tile_cols: int, column: int):
    """First-order IR drop: each cell in series with the wire segments between it and its row
    driver (along the word line) and its column's sense amplifier (along the bit line).

    ``g [n, rows, cols]`` conductances (S) of the cells in physical column ``2 j + column``
    (``column`` 0 for G+, 1 for G-); returns ``G / (1 + G R_wire)``.  Driver at the tile's
    left edge, sense amplifiers at its bottom; ``wire_ohms`` per cell pitch.
    """
    if wire_ohms <= 0:
        return g
    rows, cols = g.shape[-2], g.shape[-1]
    local_row = torch.arange(rows) % tile_rows
    local_col = (2 * torch.arange(cols) + column) % tile_cols
    segments = (local_col[None, :] + 1) + (tile_rows - local_row[:, None])
    r = wire_ohms * segments.to(g.dtype)
    return g / (1.0 + g * r)


def analog_vmm(
    volts: torch.Tensor,
    g_plus: torch.Tensor,
    g_minus: torch.Tensor,
    *,
    tile_rows: int,
    adc_bits: int | None,
    adc_full_scale: float,
    sigma_plus: torch.Tensor | None = None,
    sigma_minus: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Tiled differential VMM (see module docstring); ``sigma_*`` (S) add read noise."""
    n, batch, rows = volts.shape
    if g_plus.shape[:2] != (n, rows) or g_plus.shape != g_minus.shape:
        raise MemlearnError(
            f"volts {list(volts.shape)} do not match conductances {list(g_plus.shape)}"
        )
    cols = g_plus.shape[2]
    tiles = math.ceil(rows / tile_rows)
    pad = tiles * tile_rows - rows
    diff = g_plus - g_minus
    v = volts
    if pad:
        v = torch.nn.functional.pad(v, (0, pad))
        diff = torch.nn.functional.pad(diff, (0, 0, 0, pad))
    v4 = v.view(n, batch, tiles, tile_rows)
    current = torch.einsum("nbtr,ntrc->nbtc", v4, diff.view(n, tiles, tile_rows, cols))
    if sigma_plus is not None and sigma_minus is not None:
        var = sigma_plus * sigma_plus + sigma_minus * sigma_minus
        if pad:
            var = torch.nn.functional.pad(var, (0, 0, 0, pad))
        noise_var = torch.einsum("nbtr,ntrc->nbtc", v4 * v4, var.view(n, tiles, tile_rows, cols))
        noise = torch.randn(current.shape, generator=generator, dtype=current.dtype)
        current = current + noise_var.clamp_min(0).sqrt() * noise
    return adc(current, adc_bits, adc_full_scale).sum(dim=2)
