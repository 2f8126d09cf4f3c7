"""Signed weights ↔ differential conductance targets on a chip's levels, per chip.

A weight is ``w = s · (G+ − G−)`` with a per-layer scale ``s`` (weight units per siemens).
Levels are the conductances a cell is programmed to, ``L_0 < L_1 < … < L_{N-1}`` (uniform in the
chip's window unless given).  The pair uses one cell at a time: a weight on level ``k > 0`` is
``(G+, G−) = (L_k, L_0)``, on level ``−k`` it is ``(L_0, L_k)``, zero is ``(L_0, L_0)``; that gives
``2N − 1`` weight levels ``±s·(L_k − L_0)``.

The mapping itself is :class:`memlearn.crossbar.mapping.DifferentialMapping` (the same rounding
rules as hardware-aware meta-training), with a per-chip scale ``[n_chips, 1, 1]``; this module
places the levels.
"""

from __future__ import annotations

import torch


def uniform_levels(g_min: float, g_max: float, levels: int) -> torch.Tensor:
    """``levels`` conductances (S) evenly spaced over ``[g_min, g_max]``."""
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels}")
    if not 0 < g_min < g_max:
        raise ValueError(f"conductance window must satisfy 0 < G_min < G_max, got {g_min}, {g_max}")
    return torch.linspace(g_min, g_max, levels, dtype=torch.float64).float()
