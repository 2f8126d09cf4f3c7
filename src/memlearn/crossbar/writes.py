"""What a crossbar write checks and what it reports: its input checks (target conductances,
selection masks, pulse directions) and its per-chip totals (:class:`WriteSummary`,
:func:`per_chip_sums`), for :class:`~memlearn.crossbar.array.CrossbarArray`."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from memlearn.errors import MemlearnError

STACKED_SUMS_MAX = 1 << 16
"""[E] Per-cell values (cells × quantities) up to which a write's per-chip sums are taken in one
``bincount`` (fewer calls for small writes) rather than one per quantity (less memory)."""


@dataclass
class WriteSummary:
    """Per-chip totals of one program/pulse call (each ``[n_chips]``)."""

    cells_written: torch.Tensor
    set_pulses: torch.Tensor
    reset_pulses: torch.Tensor
    verify_reads: torch.Tensor
    energy_j: torch.Tensor
    verify_energy_j: torch.Tensor
    failed_cells: torch.Tensor


def check_targets(
    shape: tuple[int, int, int],
    window: tuple[float, float],
    g_plus: torch.Tensor,
    g_minus: torch.Tensor,
) -> torch.Tensor:
    """The pairs' targets (S) ``[chips, rows, cols, 2]`` (float32), clamped into ``window``
    after checking the shapes (``shape``: chips, rows, cols) and that every value is finite and
    within ``window`` (up to 1e-4 of its width)."""
    for name, t in (("g_plus", g_plus), ("g_minus", g_minus)):
        if tuple(t.shape) != shape:
            raise MemlearnError(f"{name} must have shape {list(shape)}, got {list(t.shape)}")
    target = torch.stack((g_plus, g_minus), dim=-1).float()
    lo, hi = window
    slack = 1e-4 * (hi - lo)
    low, high = (float(t) for t in target.aminmax())  # one pass; NaN propagates
    if not (math.isfinite(low) and math.isfinite(high)):
        raise MemlearnError("target conductances must be finite")
    if low < lo - slack or high > hi + slack:
        raise MemlearnError(
            f"target conductances must lie in the window [{lo:g}, {hi:g}] S; got values "
            f"in [{low:g}, {high:g}] S"
        )
    return target.clamp_(lo, hi)


def check_mask(shape: tuple[int, int, int], mask: torch.Tensor | None) -> torch.Tensor | None:
    """A pair selection ``[chips, rows, cols]`` (bool) expanded to both cells of each pair."""
    if mask is None:
        return None
    if tuple(mask.shape) != shape or mask.dtype != torch.bool:
        raise MemlearnError(f"mask must be a bool tensor of shape {list(shape)}")
    return mask[..., None].expand(shape + (2,))


def check_directions(
    shape: tuple[int, int, int], plus: torch.Tensor, minus: torch.Tensor
) -> torch.Tensor:
    """Pulse directions of the G+ and G- cells (+1 SET, -1 RESET, 0 none), checked and stacked
    to ``[chips, rows, cols, 2]`` (int8)."""
    for name, t in (("plus", plus), ("minus", minus)):
        if tuple(t.shape) != shape:
            raise MemlearnError(f"{name} must have shape {list(shape)}, got {list(t.shape)}")
        if t.dtype.is_floating_point or t.dtype == torch.bool:
            raise MemlearnError(f"{name} must be an integer tensor with values in {{-1, 0, 1}}")
        if bool(((t < -1) | (t > 1)).any()):
            raise MemlearnError(f"{name} values must be in {{-1, 0, 1}}")
    return torch.stack((plus, minus), dim=-1).to(torch.int8)


def per_chip_sums(
    index: torch.Tensor,
    cells_per_chip: int,
    n_chips: int,
    offsets: dict[int, torch.Tensor],
    *values: torch.Tensor,
) -> torch.Tensor:
    """Per-chip sums (float64) of per-cell ``values`` at flat cell ``index``: ``[len(values),
    n_chips]``.  Every sum adds its cells in index order (``bincount``), whether the values go
    through one ``bincount`` each or, when they are few (small writes: fewer calls), through one
    ``bincount`` in which each (value, chip) is its own bin (``offsets``: the caller's cache of
    those bins' offsets per value count).  Counts (bool or integer values) are summed as
    floats, exactly (they are far below 2^24)."""
    n, k = n_chips, len(values)
    chip = torch.div(index, cells_per_chip, rounding_mode="floor")
    if index.numel() * k <= STACKED_SUMS_MAX:
        offset = offsets.get(k)
        if offset is None:
            offset = offsets[k] = n * torch.arange(k).unsqueeze(1)
        bins = (chip + offset).view(-1)
        weights = torch.stack(values).to(torch.float32).double().view(-1)
        return torch.bincount(bins, weights=weights, minlength=n * k).view(k, n)
    out = torch.empty(k, n, dtype=torch.float64)
    for row, v in zip(out, values, strict=True):
        row.copy_(torch.bincount(chip, weights=v.double(), minlength=n))
    return out
