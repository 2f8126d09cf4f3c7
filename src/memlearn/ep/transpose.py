"""The transposed product ``W^T e`` read from a crossbar: current in through the columns.

The relaxation needs each layer's influence on the layer below, ``W^T e``.  On a crossbar of
differential pairs this is the columns-to-rows read: the pair ``(G+, G-)`` of weight
``(i, j)`` sits on row ``i`` and physical columns ``2 j``, ``2 j + 1``; driving column ``2 j``
at ``+V_j`` and column ``2 j + 1`` at ``-V_j`` (the row lines held at virtual ground by the
row sense amplifiers) gives a row current ``I_i = sum_j V_j (G+_ij - G-_ij)``.  Modelled with
the same pieces as the forward product (:mod:`memlearn.crossbar.vmm`): a DAC per column, the
read noise of every cell, first-order IR drop (the forward geometry's wire segments, [E] the
same first-order resistance per cell whichever end drives), and one ADC per row per tile,
each tile summing ``tile_cols / 2`` pairs.  Signed inputs of any scale are normalised per
vector to ``±V_read`` and the result scaled back digitally.
"""

from __future__ import annotations

import math

import torch

from memlearn.crossbar.array import CrossbarArray
from memlearn.crossbar.ledger import ADC_SECONDS_PER_BIT, DAC_SETTLE_S
from memlearn.crossbar.vmm import analog_vmm, dac, ir_drop


def transpose_full_scale(array: CrossbarArray) -> float:
    """ADC full scale (A) of a row read: ±4 sigma of a tile's row current, the forward
    default's formula [E] with ``tile_cols / 2`` pairs per tile."""
    v = array.preset.values
    pairs = min(array.cols, array.tile_cols // 2)
    return 4.0 / 3.0 * array.v_read * (v["g_max"] - v["g_min"]) * math.sqrt(pairs)


def _transposed_cells(array: CrossbarArray, cache: dict | None) -> tuple[torch.Tensor, ...]:
    """``(G+^T, G-^T, sigma+^T, sigma-^T, sum_rows(G+ + G-))`` as the transposed read sees them
    (IR drop applied; sigmas ``None`` without read noise).  With a ``cache`` they are computed
    once per state of the cells: the key is the conductance and age tensors and their in-place
    version counters, so any programming, pulse, drift or time passing recomputes them.  The
    read noise is that of each cell's age, as the forward read's
    (:meth:`~memlearn.crossbar.array.CrossbarArray.read_sigmas`)."""
    g, age = array.cells.g, array.cells.age_s
    key = (g, g._version, age, age._version, array.read_noise)
    old = cache.get("key") if cache is not None else None
    if old is not None and all(
        a is b or (not isinstance(a, torch.Tensor) and a == b)
        for a, b in zip(old, key, strict=True)
    ):
        return cache["value"]
    gp = ir_drop(g[..., 0], array.wire_ohms, array.tile_rows, array.tile_cols, 0)
    gm = ir_drop(g[..., 1], array.wire_ohms, array.tile_rows, array.tile_cols, 1)
    sp = sm = None
    if array.read_noise:
        sp, sm = (s.transpose(1, 2) for s in array.read_sigmas())
    value = (gp.transpose(1, 2), gm.transpose(1, 2), sp, sm, (gp + gm).sum(dim=1))
    if cache is not None:
        cache["key"], cache["value"] = key, value
    return value


def transpose_multiply(
    array: CrossbarArray, e: torch.Tensor, cache: dict | None = None
) -> torch.Tensor:
    """``sum_j e_j (G+_ij - G-_ij)`` per row, ``[n, batch, rows]`` (siemens times the units of
    ``e [n, batch, cols]``, any scale), as measured.  Charges the array's ledger.  ``cache``
    (a dict the caller keeps per array) holds the cells' transposed view between reads."""
    n, batch, cols = e.shape
    peak = e.abs().amax(dim=-1, keepdim=True).clamp_min(1e-30)
    volts = dac(e / peak * array.v_read, array.dac_bits, array.v_read)
    gpt, gmt, sp, sm, g_sum = _transposed_cells(array, cache)
    current = analog_vmm(
        volts,
        gpt,
        gmt,
        tile_rows=array.tile_cols // 2,
        adc_bits=array.adc_bits,
        adc_full_scale=transpose_full_scale(array),
        sigma_plus=sp,
        sigma_minus=sm,
        generator=array.generator,
    )
    v = array.preset.values
    t_read = v["read_pulse_s"]
    cell_energy = torch.einsum("nbc,nc->n", volts * volts, g_sum) * t_read
    array.ledger.add("read", cell_energy, batch * t_read)
    e_dac = torch.full((n,), batch * 2 * cols * v["dac_j"])  # two column drivers per pair
    array.ledger.add("dac", e_dac, batch * DAC_SETTLE_S)
    if array.adc_bits is not None:
        conversions = batch * array.tiles[1] * array.rows
        e_adc = conversions * v["adc_fom_j"] * 2**array.adc_bits
        array.ledger.add(
            "adc", torch.full((n,), e_adc), batch * array.adc_bits * ADC_SECONDS_PER_BIT
        )
    return current * (peak / array.v_read)
