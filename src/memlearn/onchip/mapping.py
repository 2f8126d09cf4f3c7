"""Signed weights ↔ differential conductance targets on a chip's levels, per chip.

A weight is ``w = s · (G+ − G−)`` with a per-layer scale ``s`` (weight units per siemens).
Levels are the conductances a cell is programmed to, ``L_0 < L_1 < … < L_{N-1}`` (uniform in the
chip's window unless given).  The pair uses one cell at a time: a weight on level ``k > 0`` is
``(G+, G−) = (L_k, L_0)``, on level ``−k`` it is ``(L_0, L_k)``, zero is ``(L_0, L_0)``; that gives
``2N − 1`` weight levels ``±s·(L_k − L_0)``.

:class:`WeightMapping` is :class:`memlearn.crossbar.mapping.DifferentialMapping` (the same
rounding rules, shared with hardware-aware meta-training) with the loop's names and a per-chip
scale ``[n_chips, 1, 1]``.
"""

from __future__ import annotations

import torch

from memlearn.crossbar.mapping import DifferentialMapping


def uniform_levels(g_min: float, g_max: float, levels: int) -> torch.Tensor:
    """``levels`` conductances (S) evenly spaced over ``[g_min, g_max]``."""
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels}")
    if not 0 < g_min < g_max:
        raise ValueError(f"conductance window must satisfy 0 < G_min < G_max, got {g_min}, {g_max}")
    return torch.linspace(g_min, g_max, levels, dtype=torch.float64).float()


class WeightMapping(DifferentialMapping):
    """Mapping of one layer: ``levels`` (S, ascending, ``[N]``) and ``scale`` (weight per S),
    a float or a tensor broadcastable to the leading (chip) dimension, ``[n_chips, 1, 1]``."""

    @classmethod
    def for_weights(
        cls, weights: torch.Tensor, levels: torch.Tensor, headroom: float = 1.0
    ) -> WeightMapping:
        """Scale per chip so ``headroom · max|w|`` of each chip's matrix hits the top level.

        ``weights``: ``[n_chips, rows, cols]``.
        """
        if headroom < 1.0:
            raise ValueError(f"headroom must be >= 1, got {headroom}")
        m = DifferentialMapping.from_weights(weights, levels, headroom=headroom)
        return cls(m.levels, m.scale)

    def level_step(self) -> torch.Tensor:
        """Smallest weight change between adjacent weight levels (weight units, per chip)."""
        return self.min_weight_step

    def max_weight(self) -> torch.Tensor:
        """The weight on the top level (weight units, per chip)."""
        return self.full_scale

    def quantise(self, weights: torch.Tensor) -> torch.Tensor:
        """Signed level index of each weight (nearest weight level, clipped), ``int64``."""
        return self.index(weights, "nearest")

    def quantise_stochastic(
        self, weights: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Signed level index, rounded up or down at random so that its expected weight equals
        ``weights`` (unbiased stochastic rounding; clipped at the top level)."""
        return self.index(weights, "stochastic", generator)

    def targets(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(G+, G−)`` targets (S) of signed level indices."""
        return self.index_conductances(index)

    def weights_of_index(self, index: torch.Tensor) -> torch.Tensor:
        """Weight values of signed level indices."""
        return self.index_weights(index)

    def to_weights(self, g_plus: torch.Tensor, g_minus: torch.Tensor) -> torch.Tensor:
        """Weights of read-out conductances: ``s · (G+ − G−)``."""
        return self.to_weight(g_plus, g_minus)
