"""Signed weights ↔ differential conductance targets on a chip's levels.

A weight is ``w = s · (G+ − G−)`` with a per-layer scale ``s`` (weight units per siemens).
Levels are the conductances a cell is programmed to, ``L_0 < L_1 < … < L_{N-1}`` (uniform in the
chip's window unless given).  The pair uses one cell at a time: a weight on level ``k > 0`` is
``(G+, G−) = (L_k, L_0)``, on level ``−k`` it is ``(L_0, L_k)``, zero is ``(L_0, L_0)``; that gives
``2N − 1`` weight levels ``±s·(L_k − L_0)``.  The scale is chosen at deployment so the largest
``|w|`` of the layer (times ``headroom`` ≥ 1, room for adaptation to grow weights) sits on the
top level: ``s = headroom · max|w| / (L_{N-1} − L_0)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


def uniform_levels(g_min: float, g_max: float, levels: int) -> torch.Tensor:
    """``levels`` conductances (S) evenly spaced over ``[g_min, g_max]``."""
    if levels < 2:
        raise ValueError(f"levels must be >= 2, got {levels}")
    if not 0 <= g_min < g_max:
        raise ValueError(
            f"conductance window must satisfy 0 <= G_min < G_max, got {g_min}, {g_max}"
        )
    return torch.linspace(g_min, g_max, levels, dtype=torch.float64).float()


@dataclass
class WeightMapping:
    """Mapping of one layer: ``levels`` (S, ascending, ``[N]``) and ``scale`` (weight per S).

    ``scale`` is a float or a tensor broadcastable to the leading (chip) dimension, ``[n_chips,
    1, 1]``.
    """

    levels: torch.Tensor
    scale: torch.Tensor

    def __post_init__(self) -> None:
        levels = torch.as_tensor(self.levels, dtype=torch.float32).flatten()
        if levels.numel() < 2 or not bool((levels[1:] > levels[:-1]).all()):
            raise ValueError("levels must hold >= 2 strictly increasing conductances")
        self.levels = levels
        self.scale = torch.as_tensor(self.scale, dtype=torch.float32)
        if not bool((self.scale > 0).all()) or not bool(torch.isfinite(self.scale).all()):
            raise ValueError("weight scale must be finite and > 0")
        # Weight-level magnitudes per unit scale: L_k − L_0 (S), k = 0..N-1.
        self._steps = self.levels - self.levels[0]

    @classmethod
    def for_weights(
        cls, weights: torch.Tensor, levels: torch.Tensor, headroom: float = 1.0
    ) -> WeightMapping:
        """Scale per chip so ``headroom · max|w|`` of each chip's matrix hits the top level.

        ``weights``: ``[n_chips, rows, cols]``.
        """
        if headroom < 1.0:
            raise ValueError(f"headroom must be >= 1, got {headroom}")
        levels = torch.as_tensor(levels, dtype=torch.float32)
        span = float(levels[-1] - levels[0])
        peak = weights.detach().abs().amax(dim=(-2, -1), keepdim=True).float()
        peak = torch.where(peak > 0, peak, torch.ones_like(peak))
        return cls(levels, headroom * peak / span)

    @property
    def n_levels(self) -> int:
        return int(self.levels.numel())

    def level_step(self) -> torch.Tensor:
        """Smallest weight change between adjacent weight levels (weight units, per chip)."""
        return self.scale * (self.levels[1:] - self.levels[:-1]).min()

    def max_weight(self) -> torch.Tensor:
        return self.scale * self._steps[-1]

    def quantise(self, weights: torch.Tensor) -> torch.Tensor:
        """Signed level index of each weight (nearest weight level, clipped), ``int64``."""
        magnitude = weights.abs() / self.scale  # siemens
        mids = 0.5 * (self._steps[1:] + self._steps[:-1])
        k = torch.bucketize(magnitude.contiguous(), mids.contiguous())
        return torch.where(weights < 0, -k, k)

    def quantise_stochastic(
        self, weights: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Signed level index, rounded up or down at random so that its expected weight equals
        ``weights`` (unbiased stochastic rounding; clipped at the top level)."""
        magnitude = (weights.abs() / self.scale).contiguous()
        top = self.n_levels - 1
        low = (torch.bucketize(magnitude, self._steps.contiguous(), right=True) - 1).clamp(0, top)
        high = (low + 1).clamp(max=top)
        gap = (self._steps[high] - self._steps[low]).clamp_min(1e-30)
        p_up = ((magnitude - self._steps[low]) / gap).clamp(0.0, 1.0)
        p_up = torch.where(high == low, torch.zeros_like(p_up), p_up)
        draw = torch.rand(magnitude.shape, generator=generator)
        k = torch.where(draw < p_up, high, low)
        return torch.where(weights < 0, -k, k)

    def targets(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(G+, G−)`` targets (S) of signed level indices."""
        k = index.abs()
        g_on = self.levels[k]
        g_off = self.levels[0].expand_as(g_on)
        positive = index > 0
        return torch.where(positive, g_on, g_off), torch.where(positive, g_off, g_on)

    def weights_of_index(self, index: torch.Tensor) -> torch.Tensor:
        """Weight values of signed level indices."""
        return torch.sign(index).float() * self.scale * self._steps[index.abs()]

    def to_weights(self, g_plus: torch.Tensor, g_minus: torch.Tensor) -> torch.Tensor:
        """Weights of read-out conductances: ``s · (G+ − G−)``."""
        return self.scale * (g_plus - g_minus)
