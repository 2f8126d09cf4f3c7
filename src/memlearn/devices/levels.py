"""Target conductance levels in a window, and nearest-level decoding.

Levels are float32 tensors in siemens.  ``spacing="linear"`` (default) spaces them evenly in
G; ``"log"`` evenly in ln(G) (denser at low conductance).  A write strategy may reach a wider
window than the preset's (``strategy_window``: hybrid's RESET-verified low levels reach below
the SET range); ``strategy_levels`` places levels in the window of a strategy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from memlearn.errors import MemlearnError

if TYPE_CHECKING:
    from memlearn.devices.preset import DevicePreset

SPACINGS = ("linear", "log")


def check_window(window: tuple[float, float]) -> tuple[float, float]:
    """Validate a conductance window ``(G_min, G_max)`` in siemens and return it as floats."""
    try:
        lo, hi = (float(window[0]), float(window[1]))
    except (TypeError, ValueError, IndexError) as exc:
        raise MemlearnError(f"window must be (G_min, G_max) in siemens, got {window!r}") from exc
    if not (lo > 0 and hi > lo):
        raise MemlearnError(
            f"window must satisfy 0 < G_min < G_max (siemens), got ({lo:g}, {hi:g})"
        )
    return lo, hi


def level_conductances(
    n: int, window: tuple[float, float], spacing: str = "linear"
) -> torch.Tensor:
    """``n`` (2-64) target conductances in siemens spanning ``window`` inclusive."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 2 or n > 64:
        raise MemlearnError(f"levels must be an integer in [2, 64], got {n!r}")
    lo, hi = check_window(window)
    if spacing == "linear":
        return torch.linspace(lo, hi, n, dtype=torch.float64).float()
    if spacing == "log":
        return torch.logspace(
            torch.log10(torch.tensor(lo)).item(),
            torch.log10(torch.tensor(hi)).item(),
            n,
            dtype=torch.float64,
        ).float()
    raise MemlearnError(f"unknown level spacing {spacing!r}; allowed {list(SPACINGS)}")


def nearest_level(g: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Index (int64) of the level nearest to each conductance of ``g`` (any shape)."""
    levels = levels.to(g.dtype)
    if levels.dim() != 1 or levels.numel() < 2:
        raise MemlearnError("levels must be a 1-D tensor of at least 2 conductances")
    edges = 0.5 * (levels[1:] + levels[:-1])
    return torch.bucketize(g.contiguous(), edges)


def strategy_window(preset: DevicePreset, strategy: str) -> tuple[float, float]:
    """The conductance window (S) the write ``strategy`` programs levels in: the preset's,
    except hybrid's, whose low end is ``hybrid_window_ratio * g_min``."""
    lo, hi = preset.window
    if strategy == "hybrid":
        lo *= preset.values.get("hybrid_window_ratio", 1.0)
    return check_window((lo, hi))


def strategy_levels(
    preset: DevicePreset, n: int, strategy: str, spacing: str = "linear"
) -> torch.Tensor:
    """``n`` target conductances (S) spanning the window of ``strategy`` (``strategy_window``)."""
    return level_conductances(n, strategy_window(preset, strategy), spacing)
