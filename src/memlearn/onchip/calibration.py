"""``weight_max`` of each layer (the weight on the top conductance level), calibrated.

``weight_max`` trades range for resolution: with ``L`` levels a layer holds ``2 L - 1``
weights ``±k · weight_max / (L - 1)``.  Too large, and the updates of a few-shot adaptation
(often a fraction of a level step) are lost or coarsely rounded; too small, and large weights
clip.  The largest ``|w|`` ideal adaptation visits (``rule="peak"``) is far too coarse for 8
levels: the peak is set by a few outliers.

``rule="accuracy"`` (default) chooses, per layer, the ``weight_max`` that maximises the query
accuracy of :func:`quantised_adapt` – the loop's own policy on a noise-free chip with the chip's
levels – on *calibration* tasks (from the training alphabets, never the tasks to be learned),
by :func:`memlearn.crossbar.mapping.search_weight_max` over fractions of the peak.  The
simulation runs the one inner loop (:func:`memlearn.meta.inner.inner_loop`) with the policy's
own :meth:`~memlearn.onchip.policies.UpdatePolicy.next_index` and the shared rounding of
:mod:`memlearn.crossbar.mapping`, so what is calibrated is what runs on the chip (the
``manhattan`` policy, which does not target levels, is calibrated with the ``verify`` rule).

A noise-free chip is the wrong judge of ``weight_max``: it rewards a large one, which keeps
small updates, and cannot see that the weight error of a misprogrammed or stuck cell grows with
it.  Given ``level_samples`` (``[levels, samples]`` S: conductances that program-and-verify left
in fresh cells programmed to each level, e.g. :func:`device_level_samples`, failed cells
included), each cell the loop programs draws one sample of its target level instead, and the
loop reads and updates those weights, as on the chip.  Scored that way, on within-alphabet
training tasks (:func:`memlearn.onchip.run.calibration_tasks`), the search picks a smaller
``weight_max`` than a noise-free one, and the chip learns more (the README has the figures).
"""

from __future__ import annotations

import torch

from memlearn.crossbar.mapping import DifferentialMapping, search_weight_max
from memlearn.devices.preset import DevicePreset
from memlearn.meta.inner import Tasks, inner_loop
from memlearn.nn.rates import Rates
from memlearn.onchip import head
from memlearn.onchip.policies import (
    DEFAULT_POLICY,
    POLICIES,
    AccumulatePolicy,
    LevelUpdate,
    UpdatePolicy,
    make_policy,
)

WEIGHT_MAX_RULES = ("accuracy", "peak")
LEVEL_SAMPLES = 1000  # cells programmed per level to measure a device's level distributions


def device_level_samples(
    preset: str | DevicePreset,
    strategy: str,
    levels: torch.Tensor,
    samples: int = LEVEL_SAMPLES,
    seed: int = 0,
) -> torch.Tensor:
    """``[len(levels), samples]`` conductances (S) that ``strategy`` leaves in fresh cells of
    ``preset`` (a name or a :class:`~memlearn.devices.DevicePreset`) programmed to each of the
    uniform ``levels`` (S), stuck and failed cells included (:func:`memlearn.devices.characterize`).
    """
    from memlearn.devices import characterize

    levels = torch.as_tensor(levels, dtype=torch.float32).flatten()
    window = (float(levels[0]), float(levels[-1]))
    measured = characterize(preset, strategy, int(levels.numel()), samples, window, seed=seed)
    targets = measured.programmed.targets.float()
    if not torch.allclose(targets, levels, rtol=1e-4, atol=0.0):
        raise ValueError(
            "device_level_samples needs levels evenly spaced in their window; got "
            f"{levels.tolist()} (S)"
        )
    return measured.programmed.samples.float()


class _Pairs:
    """The conductances (S) of one layer's differential pairs on the float chip: each cell the
    loop programs to a new level draws one of that level's measured samples."""

    def __init__(
        self,
        mapping: DifferentialMapping,
        samples: torch.Tensor,
        index: torch.Tensor,
        generator: torch.Generator,
    ) -> None:
        self.mapping, self.samples, self.generator = mapping, samples, generator
        self.plus, self.minus = index.clamp(min=0), (-index).clamp(min=0)
        self.g_plus, self.g_minus = self._draw(self.plus), self._draw(self.minus)

    def _draw(self, level: torch.Tensor) -> torch.Tensor:
        pick = torch.randint(self.samples.shape[1], level.shape, generator=self.generator)
        return self.samples[level, pick]

    def program(self, index: torch.Tensor) -> None:
        """Write the cells whose target level differs from the one they hold."""
        plus, minus = index.clamp(min=0), (-index).clamp(min=0)
        self.g_plus = torch.where(plus != self.plus, self._draw(plus), self.g_plus)
        self.g_minus = torch.where(minus != self.minus, self._draw(minus), self.g_minus)
        self.plus, self.minus = plus, minus

    def weights(self) -> torch.Tensor:
        return self.mapping.to_weight(self.g_plus, self.g_minus)


class QuantisedHead:
    """A :class:`~memlearn.meta.inner.WeightHolder` of the on-chip loop in float: per layer, the
    signed level index of each pair (and the policy's float copy), the weights exactly on their
    levels or, with ``pairs``, on conductances drawn from the device's measured levels."""

    def __init__(
        self,
        maps: list[DifferentialMapping],
        weights: list[torch.Tensor],
        rule: UpdatePolicy,
        pairs: list[_Pairs] | None = None,
    ) -> None:
        self.maps, self.rule, self.pairs = maps, rule, pairs
        self.index = [m.index(w) for m, w in zip(maps, weights, strict=True)]
        self.copies = (
            [m.clip(w) for m, w in zip(maps, weights, strict=True)] if rule.keeps_copy else None
        )

    def read(self) -> list[torch.Tensor]:
        if self.pairs is None:
            return [m.index_weights(i) for m, i in zip(self.maps, self.index, strict=True)]
        return [p.weights() for p in self.pairs]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return head.forward(x, self.read())

    def write(self, step: int, read: list[torch.Tensor], new: list[torch.Tensor]) -> None:
        if self.copies is not None:  # the accumulate policy's float copy in the computer
            self.copies = [
                AccumulatePolicy.accumulate(m, c, wi, n)
                for m, c, wi, n in zip(self.maps, self.copies, read, new, strict=True)
            ]
            new = self.copies
        self.index = [
            self.rule.next_index(LevelUpdate(m, i, wi, n))
            for m, i, wi, n in zip(self.maps, self.index, read, new, strict=True)
        ]
        for p, i in zip(self.pairs or [], self.index, strict=False):
            p.program(i)


def quantised_adapt(
    tasks: Tasks,
    weights: list[torch.Tensor],
    inner_lrs: Rates,
    steps: int,
    weight_max: list[float],
    levels: torch.Tensor,
    policy: str = DEFAULT_POLICY,
    seed: int = 0,
    level_samples: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The on-chip loop in float (:func:`~memlearn.meta.inner.inner_loop` on a
    :class:`QuantisedHead`): weights exactly on their levels, or with ``level_samples``
    (``[len(levels), samples]`` S) on conductances drawn from the device's measured levels.

    ``tasks``: head inputs and labels (e.g. :class:`~memlearn.meta.inner.HeadTasks`).
    Deploys ``weights`` (``[in, out]`` per layer) to the nearest level (top level
    ``weight_max[l]``, ``levels`` in S), then ``steps`` times computes the gradient at the
    weights the chip holds and lets ``policy`` pick the new levels.  Returns query accuracy and
    loss, each ``[T, steps + 1]`` (index 0: as deployed).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown update policy {policy!r}; allowed: {list(POLICIES)}")
    if len(weight_max) != len(weights) or not all(w > 0 for w in weight_max):
        raise ValueError(f"weight_max must hold {len(weights)} values > 0, got {weight_max}")
    if level_samples is not None and (
        level_samples.dim() != 2 or level_samples.shape[0] != levels.numel()
    ):
        raise ValueError(
            f"level_samples must be [{levels.numel()} levels, samples], got "
            f"{list(level_samples.shape)}"
        )
    rule = make_policy("verify" if policy == "manhattan" else policy, seed)
    maps = [DifferentialMapping.from_weight_max(m, levels) for m in weight_max]
    holder = QuantisedHead(maps, head.per_task(weights, tasks.support_x.shape[0]), rule)
    if level_samples is not None:
        draws = torch.Generator().manual_seed(seed + 1)
        holder.pairs = [
            _Pairs(m, level_samples.float(), i, draws)
            for m, i in zip(maps, holder.index, strict=True)
        ]
    curves = head.QueryCurves(tasks, steps)
    inner_loop(holder, tasks, inner_lrs, steps, head.gradients, observe=curves)
    return curves.accuracy, curves.loss


def weight_max_for(
    tasks: Tasks,
    weights: list[torch.Tensor],
    inner_lrs: Rates,
    steps: int,
    levels: torch.Tensor,
    policy: str = DEFAULT_POLICY,
    rule: str = "accuracy",
    margin: float = 1.0,
    seed: int = 0,
    start: list[float] | None = None,
    level_samples: torch.Tensor | None = None,
) -> list[float]:
    """Per-layer ``weight_max`` from calibration ``tasks`` (features ``[T, B, in]``, labels).

    ``rule="peak"``: ``margin`` (≥ 1) times the largest ``|w|`` ideal adaptation visits on the
    support sets (what hardware-aware meta-training uses today).  ``rule="accuracy"``: the
    values, fractions of that peak or ``start`` (e.g. a checkpoint's ``weight_max``, kept
    unless beaten), that maximise the mean query accuracy after ``steps`` of
    :func:`quantised_adapt` (every candidate is scored with the same random numbers), on the
    device's ``level_samples`` when given (see the module docstring: it should be).
    """
    if rule not in WEIGHT_MAX_RULES:
        raise ValueError(f"unknown weight_max rule {rule!r}; allowed: {list(WEIGHT_MAX_RULES)}")
    if margin < 1:
        raise ValueError(f"margin must be >= 1, got {margin}")
    peaks = head.weight_peaks(tasks, weights, inner_lrs, steps)
    if rule == "peak":
        return [p * margin for p in peaks]

    def score(candidate: list[float]) -> float:
        accuracy, _ = quantised_adapt(
            tasks, weights, inner_lrs, steps, candidate, levels, policy, seed, level_samples
        )
        return float(accuracy[:, -1].mean())

    return search_weight_max(score, peaks, start=start)
