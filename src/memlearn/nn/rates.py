"""Inner learning rates of the head's SGD steps: one rate per FC layer, either shared by every
step (``[L]``) or one row per step (``[S, L]``, a per-step schedule as in MAML++).

A schedule of ``S`` rows drives ``S`` updates; an update beyond the last row reuses the last
row, so a model meta-trained for 5 updates can still be run for more.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

Rates = Sequence[float] | Sequence[Sequence[float]]


def rate_table(rates: Rates | torch.Tensor, layers: int | None = 2) -> list[list[float]]:
    """``rates`` as validated rows (one per step; a shared list gives one row).

    ``layers``: the number of rates per row (``None``: whatever the first row holds).

    Raises ``ValueError`` naming the problem: wrong number of layers, ragged rows, or a rate
    that is not a finite number > 0.
    """
    if torch.is_tensor(rates):
        rates = rates.detach().cpu().tolist()
    if isinstance(rates, (int, float)) or not isinstance(rates, Sequence) or not rates:
        raise ValueError(
            f"inner_lrs must be {layers} rates (one per FC layer) or a list of such rows (one "
            f"per update), got {rates!r}"
        )
    rows = [rates] if all(isinstance(r, (int, float)) for r in rates) else list(rates)
    if layers is None:
        layers = len(rows[0]) if isinstance(rows[0], Sequence) else 0
    table = []
    for row in rows:
        if isinstance(row, (int, float)) or not isinstance(row, Sequence) or len(row) != layers:
            raise ValueError(
                f"every row of inner_lrs must hold {layers} rates (one per FC layer), got {row!r}"
            )
        values = [float(v) for v in row]
        if not all(math.isfinite(v) and v > 0 for v in values):
            raise ValueError(f"inner_lrs must be finite rates > 0, got {values}")
        table.append(values)
    return table


def stored_rates(rates: Rates | torch.Tensor, layers: int = 2) -> list[float] | list[list[float]]:
    """``rates`` validated and kept in the form given, as plain floats: one list of ``layers``
    rates (shared) or one row per step (a schedule)."""
    table = rate_table(rates, layers)
    per_step = rates.dim() == 2 if torch.is_tensor(rates) else isinstance(rates[0], Sequence)
    return table if per_step else table[0]


def rates_at(rates: Rates | torch.Tensor, step: int) -> list[float]:
    """The per-layer rates of update ``step`` (0-based) of a shared list or a schedule."""
    table = rate_table(rates, None)
    return table[min(step, len(table) - 1)]


def step_rates(rates: torch.Tensor, step: int) -> torch.Tensor:
    """Differentiable :func:`rates_at` for a tensor ``[L]`` (shared) or ``[S, L]``."""
    if rates.dim() == 1:
        return rates
    return rates[min(step, rates.shape[0] - 1)]
