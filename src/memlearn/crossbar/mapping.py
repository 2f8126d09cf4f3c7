"""Signed weights ↔ differential pairs of cells on discrete conductance levels.

A weight is ``w = scale * (G+ - G-)`` (``scale`` in weight units per siemens).  The mapping is
sign-magnitude: the magnitude ``|w| / scale`` is rounded to the nearest level *step* above the
lowest level, the cell on the weight's sign side is programmed to that level and the other
cell stays at the lowest level (one cell per weight is written per sign, the partner idles at
G_min).  This gives ``2 L - 1`` distinct weights on ``L`` levels.

Works on any leading shape (e.g. ``[tasks, out, in]``); ``scale`` broadcasts against it, so a
per-layer scale is a tensor of shape ``[..., 1, 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memlearn.errors import MemlearnError


@dataclass
class DifferentialMapping:
    """Levels (S, ascending 1-D) and a scale (weight per siemens, broadcastable to weights)."""

    levels: torch.Tensor
    scale: torch.Tensor

    def __post_init__(self) -> None:
        self.levels = torch.as_tensor(self.levels, dtype=torch.float32)
        self.scale = torch.as_tensor(self.scale, dtype=torch.float32)
        if self.levels.dim() != 1 or self.levels.numel() < 2:
            raise MemlearnError("levels must be a 1-D tensor of at least 2 conductances (S)")
        if not bool((self.levels[1:] > self.levels[:-1]).all()) or self.levels[0] <= 0:
            raise MemlearnError("levels must be positive and strictly increasing (siemens)")
        if not bool(torch.isfinite(self.scale).all()) or bool((self.scale <= 0).any()):
            raise MemlearnError("scale must be finite and > 0 (weight units per siemens)")

    @classmethod
    def from_weights(
        cls,
        weights: torch.Tensor,
        levels: torch.Tensor,
        dims: tuple[int, ...] = (-2, -1),
        headroom: float = 1.0,
    ) -> DifferentialMapping:
        """A mapping whose scale puts ``max |w| * headroom`` over ``dims`` at the top level.

        ``dims`` are reduced (default: the last two, one scale per matrix); the remaining
        leading dimensions keep their own scale.
        """
        if headroom <= 0:
            raise MemlearnError(f"headroom must be > 0, got {headroom}")
        levels = torch.as_tensor(levels, dtype=torch.float32)
        span = float(levels[-1] - levels[0])
        wmax = weights.detach().abs().float().amax(dim=dims, keepdim=True) * headroom
        wmax = torch.where(wmax > 0, wmax, torch.ones_like(wmax))
        return cls(levels=levels, scale=wmax / span)

    @property
    def steps(self) -> torch.Tensor:
        """Conductance magnitudes available above the lowest level (S), starting at 0."""
        return self.levels - self.levels[0]

    def to_indices(self, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Level indices (int64) of the G+ and G- cell of each weight."""
        mag = (weights.detach().float().abs() / self.scale).contiguous()
        edges = 0.5 * (self.steps[1:] + self.steps[:-1])
        q = torch.bucketize(mag, edges)
        zero = torch.zeros_like(q)
        positive = weights > 0
        return torch.where(positive, q, zero), torch.where(positive, zero, q)

    def to_conductance(self, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Target conductances ``(G+, G-)`` in siemens for ``weights`` (any shape)."""
        ip, im = self.to_indices(weights)
        return self.levels[ip], self.levels[im]

    def to_weight(self, g_plus: torch.Tensor, g_minus: torch.Tensor) -> torch.Tensor:
        """Weights ``scale * (G+ - G-)`` of conductance pairs (S)."""
        if g_plus.shape != g_minus.shape:
            raise MemlearnError(
                f"G+ and G- shapes differ: {list(g_plus.shape)} vs {list(g_minus.shape)}"
            )
        return self.scale * (g_plus - g_minus)

    def quantize(self, weights: torch.Tensor) -> torch.Tensor:
        """The weights the levels can represent nearest to ``weights`` (same shape)."""
        return self.to_weight(*self.to_conductance(weights))

    @property
    def weight_step(self) -> torch.Tensor:
        """Largest spacing between representable weight magnitudes (weight units)."""
        return self.scale * (self.levels[1:] - self.levels[:-1]).max()
