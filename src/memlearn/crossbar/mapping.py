"""Signed weights ↔ differential pairs of cells on discrete conductance levels.

A weight is ``w = scale * (G+ - G-)`` (``scale`` in weight units per siemens).  The mapping is
sign-magnitude: the magnitude ``|w| / scale`` is rounded to a level *step* above the lowest
level, the cell on the weight's sign side is programmed to that level and the other cell stays
at the lowest level (one cell per weight is written per sign, the partner idles at G_min).
This gives ``2 L - 1`` distinct weights on ``L`` levels, named by a *signed level index*
``k`` in ``[-(L-1), L-1]``: ``(G+, G-) = (L_k, L_0)`` for ``k > 0``, ``(L_0, L_|k|)`` for
``k < 0``, ``(L_0, L_0)`` for 0.

Rounding (``ROUNDINGS``), shared by the on-chip loop and hardware-aware training so both
quantise alike:

- ``"nearest"``: the nearest representable weight;
- ``"stochastic"``: one of the two representable weights around the value, the upper one with
  probability equal to the fraction of the gap covered, so the *expected* weight equals the
  value (unbiased).  Applied to an update (:meth:`DifferentialMapping.update_index`), a change
  smaller than a level step moves the pair one level with probability ``|change| / step``
  instead of being rounded away.

Both clip at the top level.  Works on any leading shape (e.g. ``[tasks, out, in]``) and device;
``scale`` broadcasts against it, so a per-layer scale is a tensor of shape ``[..., 1, 1]``.

The full-scale weight (the weight on the top level, ``scale * (L_top - L_0)``) trades range for
resolution; :func:`search_weight_max` picks it per layer by maximising a score (e.g. the query
accuracy of quantised adaptation on calibration tasks).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from memlearn.devices.levels import nearest_level
from memlearn.errors import MemlearnError

ROUNDINGS = ("nearest", "stochastic")

WEIGHT_MAX_FACTORS = tuple(0.85**i for i in range(15))
"""Candidate full-scale weights of :func:`search_weight_max`, as fractions of a layer's peak
``|w|``: 1 down to 0.10 in steps of 15 % (each step changes the level spacing by 15 %)."""


def check_rounding(rounding: str) -> str:
    """Return ``rounding`` if it is one of ``ROUNDINGS``, else raise ``MemlearnError``."""
    if rounding not in ROUNDINGS:
        raise MemlearnError(f"unknown rounding {rounding!r}; allowed {list(ROUNDINGS)}")
    return rounding


def round_to_levels(
    magnitude: torch.Tensor,
    steps: torch.Tensor,
    rounding: str = "nearest",
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Level index (int64) of each non-negative ``magnitude`` on ``steps`` (ascending, first 0,
    same units), rounded as ``rounding`` says and clipped to the top level.

    ``"stochastic"`` draws one uniform number per element from ``generator``.
    """
    check_rounding(rounding)
    steps = steps.to(device=magnitude.device, dtype=magnitude.dtype).contiguous()
    magnitude = magnitude.contiguous()
    top = steps.numel() - 1
    if rounding == "nearest":
        return nearest_level(magnitude, steps)
    low = (torch.bucketize(magnitude, steps, right=True) - 1).clamp(0, top)
    high = (low + 1).clamp(max=top)
    gap = (steps[high] - steps[low]).clamp_min(torch.finfo(steps.dtype).tiny)
    p_up = ((magnitude - steps[low]) / gap).clamp(0.0, 1.0)
    p_up = torch.where(high == low, torch.zeros_like(p_up), p_up)
    draw = torch.rand(
        magnitude.shape, generator=generator, dtype=magnitude.dtype, device=magnitude.device
    )
    return torch.where(draw < p_up, high, low)


@dataclass
class DifferentialMapping:
    """Levels (S, ascending 1-D) and a scale (weight per siemens, broadcastable to weights)."""

    levels: torch.Tensor
    scale: torch.Tensor

    def __post_init__(self) -> None:
        self.levels = torch.as_tensor(self.levels, dtype=torch.float32).flatten()
        self.scale = torch.as_tensor(self.scale, dtype=torch.float32)
        if self.levels.numel() < 2:
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
        leading dimensions keep their own scale.  An all-zero matrix gets scale
        ``1 / (L_top - L_0)`` (full scale 1).
        """
        if headroom <= 0:
            raise MemlearnError(f"headroom must be > 0, got {headroom}")
        levels = torch.as_tensor(levels, dtype=torch.float32).flatten()
        span = float(levels[-1] - levels[0])
        wmax = weights.detach().abs().float().amax(dim=dims, keepdim=True) * headroom
        wmax = torch.where(wmax > 0, wmax, torch.ones_like(wmax))
        return cls(levels=levels, scale=wmax / span)

    @classmethod
    def from_weight_max(
        cls, weight_max: float | torch.Tensor, levels: torch.Tensor
    ) -> DifferentialMapping:
        """A mapping whose top level holds the weight ``weight_max`` (> 0; a float or a tensor
        broadcastable to the weights, e.g. ``[n_chips, 1, 1]``)."""
        levels = torch.as_tensor(levels, dtype=torch.float32).flatten()
        full = torch.as_tensor(weight_max, dtype=torch.float32)
        if not bool(torch.isfinite(full).all()) or bool((full <= 0).any()):
            raise MemlearnError(f"weight_max must be finite and > 0, got {weight_max}")
        return cls(levels=levels, scale=full / float(levels[-1] - levels[0]))

    @property
    def steps(self) -> torch.Tensor:
        """Conductance magnitudes available above the lowest level (S), starting at 0 (cached
        while ``levels`` is unchanged: do not modify it)."""
        return self._level_terms()[0]

    def _level_terms(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(steps, edges)``: :attr:`steps` and the midpoints between them (S, what nearest
        rounding compares with), computed once per ``levels`` tensor and version."""
        levels = self.levels
        cached = self.__dict__.get("_terms")
        if cached is None or cached[0] is not levels or cached[1] != levels._version:
            steps = levels - levels[0]
            cached = (levels, levels._version, steps, 0.5 * (steps[1:] + steps[:-1]))
            self.__dict__["_terms"] = cached
        return cached[2], cached[3]

    @property
    def n_levels(self) -> int:
        return int(self.levels.numel())

    # -- signed level indices ---------------------------------------------------------------
    def index(
        self,
        weights: torch.Tensor,
        rounding: str = "nearest",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Signed level index (int64) of each weight, rounded as ``rounding`` says."""
        w = weights.detach().float()
        scale = self.scale.to(w.device)
        magnitude = w.abs() / scale
        if rounding == "nearest":  # round_to_levels' nearest_level, its edges cached
            edges = self._level_terms()[1].to(w.device)
            k = torch.bucketize(magnitude.contiguous(), edges)
        else:
            k = round_to_levels(magnitude, self.steps, rounding, generator)
        return torch.where(w < 0, -k, k)

    def index_conductances(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Target conductances ``(G+, G-)`` (S) of signed level indices."""
        levels = self.levels.to(index.device)
        g_on = levels[index.abs()]
        g_off = levels[0].expand_as(g_on)
        positive = index > 0
        return torch.where(positive, g_on, g_off), torch.where(positive, g_off, g_on)

    def index_weights(self, index: torch.Tensor) -> torch.Tensor:
        """Nominal weights of signed level indices: ``sign(k) * scale * (L_|k| - L_0)``."""
        steps = self.steps.to(index.device)
        return torch.sign(index).float() * self.scale.to(index.device) * steps[index.abs()]

    def update_index(
        self,
        index: torch.Tensor,
        delta: torch.Tensor,
        rounding: str = "stochastic",
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The signed index nearest (``rounding``) to the nominal weight of ``index`` plus
        ``delta`` (weight units): how an update is applied from the last programmed level."""
        return self.index(self.index_weights(index) + delta.detach().float(), rounding, generator)

    # -- weights ↔ conductances ---------------------------------------------------------------
    def to_indices(self, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Level indices (int64, ``0..L-1``) of the G+ and G- cell of each weight (nearest)."""
        k = self.index(weights)
        return k.clamp(min=0), (-k).clamp(min=0)

    def to_conductance(self, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Target conductances ``(G+, G-)`` in siemens for ``weights`` (any shape, nearest)."""
        return self.index_conductances(self.index(weights))

    def to_weight(self, g_plus: torch.Tensor, g_minus: torch.Tensor) -> torch.Tensor:
        """Weights ``scale * (G+ - G-)`` of conductance pairs (S)."""
        if g_plus.shape != g_minus.shape:
            raise MemlearnError(
                f"G+ and G- shapes differ: {list(g_plus.shape)} vs {list(g_minus.shape)}"
            )
        return self.scale * (g_plus - g_minus)

    def quantize(self, weights: torch.Tensor) -> torch.Tensor:
        """The weights the levels can represent nearest to ``weights`` (same shape)."""
        return self.index_weights(self.index(weights))

    @property
    def weight_step(self) -> torch.Tensor:
        """Largest spacing between representable weight magnitudes (weight units)."""
        return self.scale * (self.levels[1:] - self.levels[:-1]).max()

    @property
    def min_weight_step(self) -> torch.Tensor:
        """Smallest spacing between representable weight magnitudes (weight units)."""
        return self.scale * (self.levels[1:] - self.levels[:-1]).min()

    @property
    def weight_max(self) -> torch.Tensor:
        """The weight on the top level (weight units)."""
        return self.scale * self.steps[-1]

    def clip(self, weights: torch.Tensor) -> torch.Tensor:
        """``weights`` clipped to ``±`` the full scale (what the pair can hold)."""
        full = self.weight_max.to(device=weights.device, dtype=weights.dtype)
        return torch.maximum(torch.minimum(weights, full), -full)

    def accumulate(self, copy: torch.Tensor, delta: torch.Tensor) -> torch.Tensor:
        """A float copy of the weights after the update ``delta``, clipped to the full scale:
        the ``accumulate`` rule, whose pair then goes to the level nearest the copy."""
        return self.clip(copy + delta.detach())


def search_weight_max(
    score: Callable[[list[float]], float],
    peaks: Sequence[float],
    factors: Sequence[float] = WEIGHT_MAX_FACTORS,
    sweeps: int = 2,
    start: Sequence[float] | None = None,
) -> list[float]:
    """Per-layer full-scale weights ``weight_max`` that maximise ``score(weight_max)``.

    Coordinate search: from ``start`` (default ``peaks``; one value per layer, > 0), each layer
    in turn, last to first, tries ``factor * peak`` for every ``factor`` and its ``start``
    value, keeping the best (a tie keeps the larger full scale), for ``sweeps`` passes; the
    result never scores below ``start``.  ``peaks`` is typically the largest ``|w|`` adaptation
    visits.  The score should be evaluated on calibration data (training tasks), never on the
    tasks to be learned.
    """
    peaks = [float(p) for p in peaks]
    if not peaks or not all(p > 0 for p in peaks):
        raise MemlearnError(f"peaks must be one or more values > 0, got {peaks}")
    if not factors or not all(0 < f <= 1 for f in factors):
        raise MemlearnError(f"factors must be values in (0, 1], got {list(factors)}")
    if sweeps < 1:
        raise MemlearnError(f"sweeps must be >= 1, got {sweeps}")
    best = list(peaks) if start is None else [float(v) for v in start]
    if len(best) != len(peaks) or not all(v > 0 for v in best):
        raise MemlearnError(f"start must hold {len(peaks)} values > 0, got {start}")
    candidates = [
        sorted({f * p for f in factors} | {best[i]}, reverse=True) for i, p in enumerate(peaks)
    ]
    cache: dict[tuple[float, ...], float] = {}

    def evaluate(candidate: list[float]) -> float:
        key = tuple(candidate)
        if key not in cache:
            cache[key] = float(score(list(candidate)))
        return cache[key]

    top_score = evaluate(best)
    for _ in range(sweeps):
        for layer in reversed(range(len(peaks))):
            for value in candidates[layer]:
                candidate = list(best)
                candidate[layer] = value
                s = evaluate(candidate)
                if s > top_score or (s == top_score and value > best[layer]):
                    top_score, best = s, candidate
    return best
