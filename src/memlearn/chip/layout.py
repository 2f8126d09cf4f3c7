"""The physical layout of a deployment: spare column pairs beside a model's output array.

A memory array carries spare columns for repair.  :func:`tile_spares` counts the pairs a tile
leaves unused beside an array (they cost no extra tile), :func:`with_spares` adds pairs to an
array and :func:`output_layout` gives the layout a chip is built on for a model's ``layout``:
its output (last) array with spare pairs (:mod:`memlearn.chip.repair` puts the outputs on the
healthiest of them).
"""

from __future__ import annotations

from memlearn.bounds import check_spare_pairs
from memlearn.chip.base import ArraySpec, ChipLayout


def tile_spares(layout: ChipLayout, array: str) -> int:
    """The pairs left unused in the last tile ``array``'s columns reach into (the spares that
    cost no extra tile): 11 for FC2's 5 pairs of a 32-column tile."""
    per_tile = layout.tile_cols // 2
    return -layout.array(array).cols % per_tile


def with_spares(layout: ChipLayout, array: str, spares: int) -> ChipLayout:
    """``layout`` with ``spares`` more column pairs in ``array`` (the physical array)."""
    if spares < 0:
        raise ValueError(f"spare pairs must be >= 0, got {spares}")
    arrays = tuple(
        ArraySpec(a.name, a.rows, a.cols + spares) if a.name == array else a for a in layout.arrays
    )
    layout.array(array)  # raises naming the arrays when there is no such array
    return ChipLayout(arrays, tile_rows=layout.tile_rows, tile_cols=layout.tile_cols)


def output_layout(layout: ChipLayout, spares: int | None = None) -> ChipLayout:
    """The physical layout for a model's ``layout``: its output (last) array with ``spares``
    more column pairs (``None``: the rest of that array's tile, :func:`tile_spares`)."""
    output = layout.arrays[-1].name
    free = tile_spares(layout, output)
    return with_spares(layout, output, free if spares is None else check_spare_pairs(spares, free))
