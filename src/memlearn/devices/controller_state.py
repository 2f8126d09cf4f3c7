"""The state of the program-and-verify controller (``controller``): what it knows of each cell
still being programmed, in 1-D tensors, and how they are compacted.

The next actions a write strategy gives a cell (``FULL_RESET`` ... ``STRONG_SET``), the
per-cell fields compaction carries (``CARRIED``, ``WATCHED``), and ``subset`` (a field at some
positions, or the whole field when every cell takes part).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from memlearn.devices.preset import DevicePreset

if TYPE_CHECKING:
    from memlearn.devices.strategies import VerifiedStrategy

# next action of a cell (ControllerState.action, int8); the SET actions are the ones >= SET
FULL_RESET, RESET, SET, STRONG_SET = 0, 1, 2, 3

Trim = tuple[torch.Tensor | None, torch.Tensor]
"""The cells that received a trim pulse: their positions (``None``: every cell) and
amplitudes (V)."""

CARRIED = (
    "index", "g", "target", "gain", "shift", "life", "healthy", "worn", "reset_final", "icc",
    "depth", "k", "volts", "action", "energy", "verify_energy", "sets", "r_prev", "onset",
    "onset_var", "k_mem", "lo", "hi", "hi_coarse", "aim", "reset_aim", "trimmed", "untrimmed",
)  # fmt: skip
"""The per-cell fields of ``ControllerState`` that compaction carries (the derived ones too:
selecting them is cheaper than deriving them again, and gives the same values)."""
WATCHED = ("r_ref", "still")
"""The per-cell fields compaction carries too when unresponsive cells are abandoned."""
PARALLEL_NONZERO = 32768
"""Mask length from which ``ControllerState.positions`` uses ``nonzero`` (torch's intra-op
grain size: from there on it splits the work over threads)."""


@dataclass
class ControllerState:
    """Controller state of the cells still being programmed (1-D tensors, one entry per cell).

    Carried (``CARRIED``): ``index`` the cell's flat index in the operation; ``g`` true
    conductance (S); ``target`` (S); ``gain``, ``shift`` the cell's device-to-device SET gain
    and RESET onset shift (V), known to the physics only; ``life`` pulses it had left when the
    operation began; ``healthy`` not stuck; ``worn`` worn out during this operation;
    ``reset_final`` its last pulse was a RESET; ``icc`` (A) the compliance of the last SET that
    grew its filament and ``depth`` the RESET depth since (e-folds of G; ``CellState.set_icc``,
    ``reset_depth``); ``action`` the next pulse (``FULL_RESET`` ...
    ``RESET``); ``energy``, ``verify_energy`` (J) spent so far; ``sets`` (int32) SET pulses so
    far.  What the controller learns of the cell, from its reads only: ``r_prev`` (S) the last
    read; ``onset`` (V) its estimated RESET-onset shift and ``onset_var`` (V^2) the variance of
    that estimate; ``k`` the SET ramp index of the next SET and ``k_mem`` the index a ramp
    restarts from (the remembered compliance); ``volts`` (V) the next trim amplitude.
    Derived from the target (``derive``): ``lo``, ``hi`` (S) the verify band; ``hi_coarse``
    (S) the top of the band a SET aimed above the target is content with; ``aim`` (A) the
    nominal compliance of the SET aim (``VerifiedStrategy.set_aim``); ``reset_aim`` (S) the
    conductance a RESET-verify trim aims its first amplitude at (``strategies.trim_start``);
    ``trimmed`` the cell is RESET-verified (``WriteStrategy.reset_terminated``) and
    ``untrimmed`` its negation; ``life_min`` the least ``life`` (a bound: no cell wears out
    before ``pulses`` reaches it); ``pos`` the positions (``arange``); ``sick`` the positions
    of the cells not ``healthy``.
    Shared: ``pulses`` given to every unfinished cell so far; ``n_live`` unfinished cells
    (positions of retired cells stay until half of them are, then ``compact`` drops
    them); ``any_worn`` some cell wore out; ``tol`` (S) the band half width; ``strategy`` the
    write strategy; ``dac`` the compliance (A) and SET energy (J) by gate DAC code
    (``physics.dac_table``).  Abandoning unresponsive cells (``abandon`` pulses, 0: never;
    ``watch``): ``r_ref`` (S) the read the cell has stayed near and ``still`` (int32) the SET
    and full RESET pulses since it last moved.
    """

    index: torch.Tensor
    g: torch.Tensor
    target: torch.Tensor
    gain: torch.Tensor
    shift: torch.Tensor
    life: torch.Tensor
    healthy: torch.Tensor
    worn: torch.Tensor
    reset_final: torch.Tensor
    icc: torch.Tensor
    depth: torch.Tensor
    k: torch.Tensor
    volts: torch.Tensor
    action: torch.Tensor
    energy: torch.Tensor
    verify_energy: torch.Tensor
    sets: torch.Tensor
    r_prev: torch.Tensor
    onset: torch.Tensor
    onset_var: torch.Tensor
    k_mem: torch.Tensor
    tol: float
    strategy: VerifiedStrategy
    pulses: int = 0
    n_live: int = 0
    any_worn: bool = False
    lo: torch.Tensor | None = None
    hi: torch.Tensor | None = None
    hi_coarse: torch.Tensor | None = None
    aim: torch.Tensor | None = None
    reset_aim: torch.Tensor | None = None
    trimmed: torch.Tensor | None = None
    untrimmed: torch.Tensor | None = None
    life_min: float = math.inf
    pos: torch.Tensor | None = None
    sick: torch.Tensor | None = None
    dac: tuple[torch.Tensor, torch.Tensor] | None = None
    abandon: int = 0
    r_ref: torch.Tensor | None = None
    still: torch.Tensor | None = None

    def derive(self, preset: DevicePreset) -> None:
        """(Re)compute the band, the SET and RESET aims, the trimmed cells and ``life_min``
        from ``target`` and ``life``."""
        tgt, tol, margin = self.target, self.tol, self.strategy.margin(preset)
        self.lo, self.hi = tgt - tol, tgt + tol
        self.hi_coarse = self.hi + 2.0 * margin * tgt + 2.0 * tol
        self.aim = self.strategy.set_aim(preset, tgt)
        self.reset_aim = tgt * (1.0 + preset.values["ireset_margin"])
        self.trimmed = self.strategy.reset_terminated(preset, tgt)
        self.untrimmed = ~self.trimmed
        self.life_min = float(self.life.min()) if self.life.numel() else math.inf
        self.pos = torch.arange(self.g.numel())
        self.sick = self.positions(~self.healthy)

    def compact(self, preset: DevicePreset, keep: torch.Tensor) -> None:
        """Keep only the cells at positions ``keep`` (1-D index), in place."""
        for name in CARRIED + (WATCHED if self.abandon else ()):
            setattr(self, name, getattr(self, name).index_select(0, keep))
        self.n_live = keep.numel()
        self.life_min = float(self.life.min())
        self.pos = self.pos[: keep.numel()]
        self.sick = self.positions(~self.healthy)

    def positions(self, mask: torch.Tensor) -> torch.Tensor:
        """The positions (int64, ascending) where the 1-D ``mask`` (at most as long as the
        state) holds: ``mask.nonzero()``'s.  Small masks select them from ``pos`` (fewer
        instructions than ``nonzero``); large ones use ``nonzero``, which runs on every intra-op
        thread where ``masked_select`` runs on one."""
        if mask.numel() >= PARALLEL_NONZERO:
            return mask.nonzero().view(-1)
        pos = self.pos if mask.numel() == self.pos.numel() else self.pos[: mask.numel()]
        return pos.masked_select(mask)


def subset(x: torch.Tensor, sel: torch.Tensor | None) -> torch.Tensor:
    """``x`` at positions ``sel`` (a copy), or ``x`` itself for ``None`` (every cell)."""
    return x if sel is None else x.index_select(0, sel)
