"""Programming cells to target conductances: ``program(preset, g_target, strategy, ...)``.

``program`` checks its inputs, lets the preset's cell technology (``technologies``) write the
cells (for resistive cells a write strategy of ``strategies``, run pulse by pulse with verify
reads by ``controller``: a cell stops when its read falls in the band ``target ± tolerance``
or after ``max_pulses`` pulses, or once it stops responding when the preset's
``abandon_pulses`` is set), then applies endurance wear and lets the written cells relax
for ``settle_s`` seconds (the delay before first use).  Failed cells (never verified; for
``single-set`` those outside the band) are reported.

``STRATEGIES`` and ``check_strategy`` (defined in ``strategies``) and ``ENGINES`` (the
program-and-verify engines, ``engines``) are re-exported here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from memlearn.devices.cells import CellState, apply_wear, sample_cells
from memlearn.devices.engines import ENGINES, check_engine, writer_for
from memlearn.devices.preset import DevicePreset, load_preset
from memlearn.devices.retention import relax
from memlearn.devices.strategies import STRATEGIES, check_strategy, get_strategy
from memlearn.devices.technology import WriteTally
from memlearn.errors import MemlearnError

__all__ = ["ENGINES", "STRATEGIES", "ProgramResult", "check_strategy", "program"]


@dataclass
class ProgramResult:
    """Outcome of programming, one entry per cell (same shape as the targets).

    ``conductance`` (S, after ``settle_s`` of relaxation), ``set_pulses``, ``reset_pulses``,
    ``verify_reads`` (int32), ``energy_j`` (J, pulses plus verify reads), ``verify_energy_j``
    (J, the verify reads' share), ``failed`` (bool: the
    cell never verified in its band), ``cells`` (the updated ``CellState``).
    """

    conductance: torch.Tensor
    set_pulses: torch.Tensor
    reset_pulses: torch.Tensor
    verify_reads: torch.Tensor
    energy_j: torch.Tensor
    verify_energy_j: torch.Tensor
    failed: torch.Tensor
    cells: CellState

    @property
    def pulses(self) -> torch.Tensor:
        return self.set_pulses + self.reset_pulses


def program(
    preset: DevicePreset | str,
    g_target: torch.Tensor,
    strategy: str = "hybrid",
    *,
    generator: torch.Generator | None = None,
    cells: CellState | None = None,
    tolerance: float | None = None,
    max_pulses: int | None = None,
    settle_s: float | None = None,
    engine: str | None = None,
) -> ProgramResult:
    """Program cells to ``g_target`` (S, any shape) with ``strategy``.

    ``cells``: the cells to write (modified in place); when ``None`` fresh cells are sampled
    (device-to-device spread, stuck cells) from ``generator``.  ``tolerance`` (S) is the verify
    band half width, ``max_pulses`` the pulse limit per cell, ``settle_s`` the relaxation time
    applied afterwards; each defaults to the preset's value.  ``engine``: one of ``ENGINES``
    running a verified strategy's pulses (``None``: ``"torch"``; ``"fused"``: the compiled
    CPU kernel, see ``engines``).
    """
    preset = load_preset(preset)
    writer = get_strategy(strategy)
    engine = check_engine(engine, g_target.device if isinstance(g_target, torch.Tensor) else None)
    v = preset.values
    if generator is None:
        generator = torch.Generator().manual_seed(0)
    if not isinstance(g_target, torch.Tensor):
        g_target = torch.as_tensor(g_target, dtype=torch.float32)
    g_target = g_target.detach().float()
    if g_target.numel():
        low, high = (float(t) for t in g_target.aminmax())  # one pass; NaN propagates
        if not (low > 0 and high < math.inf):
            raise MemlearnError("g_target must be finite and > 0 siemens")
    tol = v["verify_tolerance"] if tolerance is None else float(tolerance)
    if not tol > 0:
        raise MemlearnError(f"tolerance must be > 0 siemens, got {tol}")
    limit = int(v["max_pulses"] if max_pulses is None else max_pulses)
    if limit < 1:
        raise MemlearnError(f"max_pulses must be >= 1, got {limit}")
    settle = v["settle_s"] if settle_s is None else float(settle_s)
    if cells is None:
        cells = sample_cells(preset, g_target.shape, generator)
    elif cells.shape != g_target.shape:
        raise MemlearnError(
            f"cells have shape {list(cells.shape)} but g_target {list(g_target.shape)}"
        )
    tally = WriteTally.zeros(g_target.numel())
    flat = cells.flat()
    target = g_target.reshape(-1)
    writer = writer_for(writer, engine)
    preset.technology.write(preset, flat, target, writer, tol, limit, generator, tally)
    pulses = tally.set_pulses + tally.reset_pulses
    written = pulses > 0
    flat.pulses += pulses.float()
    apply_wear(preset, flat)
    if bool(written.all()):  # the common case: every cell, in place, no copy out and back
        flat.age_s.zero_()
        views = dict(vars(flat))
        relax(preset, flat, settle, generator)
        for name, view in views.items():  # a technology may replace a field rather than write it
            if getattr(flat, name) is not view:
                view.copy_(getattr(flat, name))
    elif bool(written.any()):
        idx = written.nonzero().squeeze(1)
        part = flat.take(idx)
        part.age_s.zero_()
        relax(preset, part, settle, generator)
        flat.put(idx, part)
    shape = g_target.shape
    return ProgramResult(
        conductance=cells.g.clone(),
        set_pulses=tally.set_pulses.view(shape),
        reset_pulses=tally.reset_pulses.view(shape),
        verify_reads=tally.verify_reads.view(shape),
        energy_j=tally.energy.view(shape),
        verify_energy_j=tally.verify_energy.view(shape),
        failed=tally.failed.view(shape),
        cells=cells,
    )
