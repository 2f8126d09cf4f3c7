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


def check_bits(name: str, bits: int | None) -> int | None:
    """``bits`` of a converter (``name``, for the message): an integer in [2, 24], or ``None``
    (ideal)."""
    if bits is None:
        return None
    if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 24:
        raise MemlearnError(f"{name} must be an integer in [2, 24] or None (ideal), got {bits!r}")
    return bits


def row_inputs(
    volts: torch.Tensor, n_chips: int, rows: int, v_read: float, dac_bits: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row voltages ``volts [n_chips, batch, rows]`` (|V| <= ``v_read``) checked and through the
    DAC: ``(V, V², sum over the batch of V²)`` (V, V², V²; the last ``[n_chips, 1, rows]``)."""
    if volts.dim() != 3 or volts.shape[0] != n_chips or volts.shape[2] != rows:
        raise MemlearnError(
            f"volts must have shape [{n_chips}, batch, {rows}], got {list(volts.shape)}"
        )
    v32 = volts.float()
    vmax = 0.0
    if v32.numel():  # max |V| in one pass; NaN and inf propagate
        low, high = v32.aminmax()
        vmax = max(-float(low), float(high))
    if not math.isfinite(vmax):
        raise MemlearnError("volts must be finite")
    if vmax > v_read * (1 + 1e-6):
        raise MemlearnError(
            f"row voltages must be within ±{v_read} V (the read voltage), got {vmax:g} V"
        )
    v_in = dac(v32, dac_bits, v_read)
    v_sq = v_in * v_in
    # sum_b,r V^2 G as the einsum "nbr,nr->n" computes it (batch summed first), fewer ops
    return v_in, v_sq, v_sq.sum(dim=1).unsqueeze(1)


def dac(volts: torch.Tensor, bits: int | None, v_max: float) -> torch.Tensor:
    """Row voltages through a DAC of ``bits`` magnitude bits over ``[0, v_max]`` volts (the sign
    is the pulse polarity): clipped to ``±v_max`` and rounded to the grid; ``bits=None`` is
    ideal (no clipping, no rounding)."""
    if bits is None:
        return volts
    if not v_max > 0:
        raise MemlearnError(f"DAC range v_max must be > 0 V, got {v_max}")
    steps = 2**bits - 1
    return volts.clamp(-v_max, v_max).div_(v_max).mul_(steps).round_().mul_(v_max / steps)


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
    diff, var = differential_tiles(g_plus, g_minus, tile_rows, sigma_plus, sigma_minus)
    return tiled_product(volts, diff, var, adc_bits, adc_full_scale, generator)


def differential_tiles(
    g_plus: torch.Tensor,
    g_minus: torch.Tensor,
    tile_rows: int,
    sigma_plus: torch.Tensor | None = None,
    sigma_minus: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """What a VMM needs of the cells, per tile: ``G+ - G-`` (S) and, with read noise, the
    summed variance ``sigma+^2 + sigma-^2`` (S^2), each ``[n, tiles, tile_rows, cols]``, rows
    padded with zeros to whole tiles.  It changes only when the cells do (cache it)."""
    n, rows, cols = g_plus.shape
    tiles = math.ceil(rows / tile_rows)
    pad = tiles * tile_rows - rows
    diff = g_plus - g_minus
    var = None
    if sigma_plus is not None and sigma_minus is not None:
        var = sigma_plus * sigma_plus + sigma_minus * sigma_minus
    if pad:
        diff = torch.nn.functional.pad(diff, (0, 0, 0, pad))
        var = None if var is None else torch.nn.functional.pad(var, (0, 0, 0, pad))
    diff = diff.view(n, tiles, tile_rows, cols)
    return diff, None if var is None else var.view(n, tiles, tile_rows, cols)


def tiled_product(
    volts: torch.Tensor,
    diff: torch.Tensor,
    var: torch.Tensor | None,
    adc_bits: int | None,
    adc_full_scale: float,
    generator: torch.Generator | None = None,
    volts_squared: torch.Tensor | None = None,
) -> torch.Tensor:
    """Differential currents (A) ``[n, batch, cols]`` of ``volts [n, batch, rows]`` on the tiles
    of :func:`differential_tiles`: per tile, ``V·ΔG`` plus Gaussian read noise of variance
    ``V²·var``, through the ADC, summed over tiles.  ``volts_squared``: ``volts * volts`` when
    the caller has it already."""
    n, batch, rows = volts.shape
    tiles, tile_rows = diff.shape[1], diff.shape[2]
    pad = tiles * tile_rows - rows
    v = torch.nn.functional.pad(volts, (0, pad)) if pad else volts
    current = _per_tile(v, diff, tiles)
    if var is not None:
        v2 = v * v if volts_squared is None or pad else volts_squared
        noise_var = _per_tile(v2, var, tiles)
        noise = torch.randn(
            current.shape, generator=generator, dtype=current.dtype, device=current.device
        )
        current.add_(noise_var.clamp_min_(0).sqrt_().mul_(noise))
    if adc_bits is not None:  # adc(), in place on this temporary
        lsb = adc_lsb(adc_bits, adc_full_scale)
        current.clamp_(-adc_full_scale, adc_full_scale).div_(lsb).round_().mul_(lsb)
    return current if tiles == 1 else current.sum(dim=2)


def _per_tile(v: torch.Tensor, g: torch.Tensor, tiles: int) -> torch.Tensor:
    """``sum_r v[n, b, t, r] g[n, t, r, c]`` per tile: ``[n, batch, cols]`` for one tile (the
    einsum's own batched product, without its reshaping), ``[n, batch, tiles, cols]`` else.
    ``v``: ``[n, batch, tiles * tile_rows]``; ``g``: ``[n, tiles, tile_rows, cols]``."""
    n, batch, tile_rows = v.shape[0], v.shape[1], g.shape[2]
    if tiles == 1:
        return torch.bmm(v, g.view(n, tile_rows, g.shape[3]))
    return torch.einsum("nbtr,ntrc->nbtc", v.view(n, batch, tiles, tile_rows), g)
