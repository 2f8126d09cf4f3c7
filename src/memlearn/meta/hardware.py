"""Hardware-aware weights: how the chip will hold and re-program the FC weights.

A weight ``w`` of a layer is a differential pair of cells, ``w = weight_max (G+ − G−) / (G_max −
G_min)``: a positive weight puts ``G+`` on a level of ``G_min + |w| / weight_max (G_max − G_min)``
and leaves ``G−`` at ``G_min`` (the other way round for a negative weight).  Each cell has
``levels`` equally spaced targets in the window ``[G_min, G_max]``; programming lands near its
target with the strategy's spread.

The level arithmetic is the chip loop's own (:class:`memlearn.crossbar.DifferentialMapping`):
deployment rounds each weight to the nearest level; an update ``Δw`` is applied as the loop's
policy of the same name does (``rounding``): ``stochastic`` from the last *programmed level*,
rounded stochastically (unbiased: a pair moves one level with probability ``|Δw| / step``);
``verify`` from the last level, to the nearest; ``accumulate`` to a float copy of the weights
(the computer's, clipped to the full scale), the pair going to the level nearest the copy.
Only *cells* whose target level changed are re-programmed (a chip does not rewrite a cell it
need not touch); the others keep their conductances.

Gradients pass straight through (``w + (programmed − w).detach()``): the inner loop differen-
tiates as if programming were exact, but sees the quantised, noisy weights in its forward pass.

Two programmers follow the :class:`WeightProgrammer` protocol: :class:`IdealProgrammer` (exact
float weights, for plain MAML) and :class:`LevelProgrammer` (levels + programming spread).  The
spread of :class:`LevelProgrammer` comes from a ``spread`` function of the target conductance;
:func:`milo_spread` is the default and :func:`device_spread` takes it from a device preset of
``memlearn.devices`` when that layer provides one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Protocol

import torch

from memlearn.crossbar.mapping import DifferentialMapping

# Conductance window [E] (REFERENCE.md §2: ~10–150 µS for a multi-level HfO2 cell).
DEFAULT_G_MIN = 10e-6  # siemens
DEFAULT_G_MAX = 150e-6  # siemens
# Levels per cell: 4–9 shown on a 4 kb 1T1R array [P] Esmanhotto et al., IEDM 2020; 8 is a
# 3-bit cell inside that range [E].
DEFAULT_LEVELS = 8


def milo_spread(g: torch.Tensor) -> torch.Tensor:
    """Std (S) of a cell programmed with program-and-verify to target ``g`` (S).

    σ = max(−0.009107·G + 4.782, 0) µS with G in µS: [S] CrossSim RRAM_Milo (Milo et al.,
    IRPS 2021), REFERENCE.md §2.
    """
    g_us = g * 1e6
    return torch.clamp(-0.009107 * g_us + 4.782, min=0.0) * 1e-6


@dataclass
class Programmed:
    """Weights as programmed into differential pairs, with the state needed for the next write.

    ``weight`` carries straight-through gradients to the weights that were asked for;
    ``g_plus``/``g_minus`` (S) and ``level_plus``/``level_minus`` (level indices) are detached.
    ``written`` (bool) marks the pairs with a cell re-programmed by the call that produced this
    state.  ``copy``: the float copy of the weights (``accumulate`` updates only; detached).
    """

    weight: torch.Tensor
    g_plus: torch.Tensor | None = None
    g_minus: torch.Tensor | None = None
    level_plus: torch.Tensor | None = None
    level_minus: torch.Tensor | None = None
    written: torch.Tensor | None = None
    copy: torch.Tensor | None = None


# How an update reaches the levels: the loop's policies of the same names
# (memlearn.onchip.policies).
UPDATE_RULES = ("stochastic", "verify", "accumulate")
# Former names of update rules, still found in saved configs and checkpoints: "nearest" was
# the training name of the loop's "verify" policy.
_FORMER_UPDATE_RULES = {"nearest": "verify"}


def update_rule_name(name: str) -> str:
    """The current name of an update rule read from a saved config or checkpoint."""
    return _FORMER_UPDATE_RULES.get(name, name)


class WeightProgrammer(Protocol):
    """``programmer(w, previous, weight_max, generator) -> Programmed``.

    ``w``: requested weights (any shape, e.g. ``[T, rows, cols]``); ``previous``: what the
    array holds now (``None`` at deployment: every pair is written); ``weight_max``: the weight that
    maps to the full window, a float or a tensor broadcastable to ``w``.
    """

    def __call__(
        self,
        w: torch.Tensor,
        previous: Programmed | None,
        weight_max: float | torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> Programmed: ...


class IdealProgrammer:
    """Exact float weights: plain (software) MAML."""

    name = "ideal"

    def __call__(
        self,
        w: torch.Tensor,
        previous: Programmed | None,
        weight_max: float | torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> Programmed:
        return Programmed(weight=w)


class LevelProgrammer:
    """Differential pairs on ``levels`` levels per cell in ``[g_min, g_max]`` S, programmed with
    a spread ``spread(g_target) -> σ`` (S); conductances are clamped at 0 (a cell cannot go
    negative).  Updates reach the levels as ``rounding`` says (:data:`UPDATE_RULES`: the chip
    loop's policies ``stochastic``, ``verify`` and ``accumulate``); only cells whose target
    level changed are re-programmed.
    """

    def __init__(
        self,
        levels: int = DEFAULT_LEVELS,
        g_min: float = DEFAULT_G_MIN,
        g_max: float = DEFAULT_G_MAX,
        spread: Callable[[torch.Tensor], torch.Tensor] | None = milo_spread,
        name: str = "levels",
        rounding: str = "stochastic",
    ) -> None:
        if int(levels) != levels or levels < 2:
            raise ValueError(f"levels must be an integer >= 2, got {levels}")
        if not (0.0 < g_min < g_max):
            raise ValueError(
                f"conductance window must satisfy 0 < g_min < g_max (siemens), got "
                f"g_min={g_min}, g_max={g_max}"
            )
        if rounding not in UPDATE_RULES:
            raise ValueError(f"unknown rounding {rounding!r}; allowed: {list(UPDATE_RULES)}")
        self.levels = int(levels)
        self.g_min = float(g_min)
        self.g_max = float(g_max)
        self.spread = spread
        self.name = name
        self.rounding = rounding
        self.conductances = torch.linspace(self.g_min, self.g_max, self.levels)

    @property
    def step(self) -> float:
        """Conductance between adjacent levels (S)."""
        return (self.g_max - self.g_min) / (self.levels - 1)

    def mapping(self, weight_max: float | torch.Tensor) -> DifferentialMapping:
        """The chip loop's mapping of a layer whose full-scale weight is ``weight_max``."""
        if isinstance(weight_max, torch.Tensor):
            if (weight_max <= 0).any():
                raise ValueError("weight_max must be > 0")
        elif not weight_max > 0:
            raise ValueError(f"weight_max must be > 0, got {weight_max}")
        return DifferentialMapping.from_weight_max(weight_max, self.conductances)

    def target_levels(
        self, w: torch.Tensor, weight_max: float | torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Level indices ``(plus, minus)`` (int64, 0..levels-1) nearest to weights ``w``."""
        k = self.mapping(weight_max).index(w)
        return k.clamp(min=0), (-k).clamp(min=0)

    def __call__(
        self,
        w: torch.Tensor,
        previous: Programmed | None,
        weight_max: float | torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> Programmed:
        mapping = self.mapping(weight_max)
        if previous is not None and previous.level_plus is None:
            previous = None  # an ideal programmer's state: deploy afresh
        if previous is not None and previous.level_plus.shape != w.shape:
            raise ValueError(
                f"previous state has shape {list(previous.level_plus.shape)}, weights "
                f"{list(w.shape)}"
            )
        k, copy = self._next_index(mapping, w, previous, generator)
        lp, lm = k.clamp(min=0), (-k).clamp(min=0)
        gp = self._program(lp, w.dtype, generator)
        gm = self._program(lm, w.dtype, generator)
        if previous is None:
            write = torch.ones_like(lp, dtype=torch.bool)
        else:  # only cells whose level changed are re-programmed
            write_p, write_m = lp != previous.level_plus, lm != previous.level_minus
            gp = torch.where(write_p, gp, previous.g_plus)
            gm = torch.where(write_m, gm, previous.g_minus)
            write = write_p | write_m
        value = mapping.to_weight(gp, gm).to(w.dtype)
        weight = w + (value - w).detach()
        return Programmed(weight, gp, gm, lp, lm, write, copy)

    def _next_index(
        self,
        mapping: DifferentialMapping,
        w: torch.Tensor,
        previous: Programmed | None,
        generator: torch.Generator | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The signed level index of each pair for the requested weights ``w``, and the float
        copy (``accumulate`` only): nearest to ``w`` at deployment (``previous`` None), else
        the update ``w - previous.weight`` applied as :attr:`rounding` says."""
        accumulate = self.rounding == "accumulate"
        if previous is None:
            return mapping.index(w), mapping.clip(w.detach()) if accumulate else None
        delta = (w - previous.weight).detach()
        if accumulate:
            start = previous.copy if previous.copy is not None else previous.weight.detach()
            copy = mapping.accumulate(start, delta)
            return mapping.index(copy), copy
        last = previous.level_plus - previous.level_minus
        rounding = "stochastic" if self.rounding == "stochastic" else "nearest"
        return mapping.update_index(last, delta, rounding, generator), None

    def _program(
        self, level: torch.Tensor, dtype: torch.dtype, generator: torch.Generator | None
    ) -> torch.Tensor:
        target = self.g_min + level.to(dtype) * self.step
        if self.spread is None:
            return target
        sigma = self.spread(target)
        noise = torch.randn(target.shape, generator=generator, dtype=dtype, device=target.device)
        return (target + sigma * noise).clamp(min=0.0)


class ClipAwareProgrammer:
    """A :class:`LevelProgrammer` whose straight-through gradient stops at the full scale.

    A pair whose weight (the ``accumulate`` copy, else the requested weight) is at or beyond
    ``±weight_max`` passes no gradient: asking it for more changes nothing it holds.  The plain
    straight-through gradient counts such clipped updates as if they were held, so an inner
    rate learned through it can grow without bound (the curve phase's, ``curve_device``).
    """

    def __init__(self, programmer: LevelProgrammer) -> None:
        self.programmer = programmer
        self.name = programmer.name

    def __call__(
        self,
        w: torch.Tensor,
        previous: Programmed | None,
        weight_max: float | torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> Programmed:
        state = self.programmer(w, previous, weight_max, generator)
        held = state.copy if state.copy is not None else w.detach()
        full = self.programmer.mapping(weight_max).weight_max.to(device=w.device, dtype=w.dtype)
        inside = held.abs() < full
        return replace(state, weight=torch.where(inside, state.weight, state.weight.detach()))


def make_programmer(
    kind: str = "ideal",
    levels: int = DEFAULT_LEVELS,
    g_min: float = DEFAULT_G_MIN,
    g_max: float = DEFAULT_G_MAX,
    noise: bool = True,
) -> WeightProgrammer:
    """``kind``: ``ideal`` (float weights) or ``levels`` (levels + Milo program-and-verify
    spread, :func:`milo_spread`; ``noise=False`` quantises only)."""
    if kind == "ideal":
        return IdealProgrammer()
    if kind == "levels":
        return LevelProgrammer(levels, g_min, g_max, milo_spread if noise else None)
    raise ValueError(f"unknown programmer kind {kind!r}; allowed: 'ideal', 'levels'")


class TableProgrammer(LevelProgrammer):
    """Levels programmed with the measured statistics of a device preset and write strategy.

    ``table [levels, samples]`` (S) holds conductances that ``memlearn.devices.program`` left
    behind when it programmed ``samples`` fresh cells to each level, pulse by pulse with verify
    reads; programming a cell here draws one of its level's samples at random, so the level
    distributions keep their measured shape (tails and failed cells included) at the cost of a
    gather.
    """

    def __init__(
        self,
        table: torch.Tensor,
        g_min: float,
        g_max: float,
        name: str = "device",
        rounding: str = "stochastic",
    ):
        if table.dim() != 2 or table.shape[0] < 2 or table.shape[1] < 1:
            raise ValueError(f"table must be [levels >= 2, samples >= 1], got {list(table.shape)}")
        super().__init__(table.shape[0], g_min, g_max, spread=None, name=name, rounding=rounding)
        self.table = table

    @classmethod
    def from_device(
        cls,
        preset: str = "hfo2-mlc",
        strategy: str = "hybrid",
        levels: int = DEFAULT_LEVELS,
        samples: int = 1000,
        seed: int = 0,
        rounding: str = "stochastic",
    ) -> TableProgrammer:
        """Measure the table by programming ``samples`` cells per level with the device model;
        ``rounding``: how updates reach the levels (:data:`UPDATE_RULES`)."""
        from memlearn.devices import load_preset, program

        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        dev = load_preset(preset)
        g_min, g_max = dev.window
        targets = dev.levels(levels).repeat_interleave(samples)
        result = program(dev, targets, strategy, generator=torch.Generator().manual_seed(seed))
        table = result.conductance.float().view(levels, samples)
        return cls(table, g_min, g_max, name=f"{dev.name}/{strategy}", rounding=rounding)

    def _program(
        self, level: torch.Tensor, dtype: torch.dtype, generator: torch.Generator | None
    ) -> torch.Tensor:
        table = self.table.to(device=level.device, dtype=dtype)
        pick = torch.randint(table.shape[1], level.shape, generator=generator, device=level.device)
        return table[level, pick]
