"""The full-scale weight of each layer (the weight on the top conductance level), calibrated.

The full scale trades range for resolution: with ``L`` levels a layer holds ``2 L - 1``
weights ``±k · w_max / (L - 1)``.  Too large, and the updates of a few-shot adaptation (often a
fraction of a level step) are lost or coarsely rounded; too small, and large weights clip.  The
largest ``|w|`` ideal adaptation visits (``rule="peak"``) is far too coarse for 8 levels: the
peak is set by a few outliers.

``rule="accuracy"`` (default) chooses, per layer, the full scale that maximises the query
accuracy of :func:`quantised_adapt` – the loop's own policy on a noise-free chip with the chip's
levels – on *calibration* tasks (from the training alphabets, never the tasks to be learned),
by :func:`memlearn.crossbar.mapping.search_full_scale` over fractions of the peak.  The
simulation uses the policy's own :meth:`~memlearn.onchip.policies.UpdatePolicy.next_index`
and the shared rounding of :mod:`memlearn.crossbar.mapping`, so what is calibrated is what
runs on the chip (the ``manhattan`` policy, which does not target levels, is calibrated with
the ``verify`` rule).
"""

from __future__ import annotations

import torch

from memlearn.crossbar.mapping import search_full_scale
from memlearn.nn.rates import Rates, rates_at
from memlearn.onchip import head
from memlearn.onchip.mapping import WeightMapping
from memlearn.onchip.policies import POLICIES, AccumulatePolicy, make_policy

WEIGHT_MAX_RULES = ("accuracy", "peak")


def quantised_adapt(
    support_x: torch.Tensor,
    support_y: torch.Tensor,
    query_x: torch.Tensor,
    query_y: torch.Tensor,
    weights: list[torch.Tensor],
    inner_lrs: Rates,
    steps: int,
    weight_max: list[float],
    levels: torch.Tensor,
    policy: str = "stochastic",
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The on-chip loop on an ideal chip, in float: weights exactly on their levels.

    Deploys ``weights`` (``[in, out]`` per layer) to the nearest level (full scale
    ``weight_max[l]``, ``levels`` in S), then ``steps`` times computes the gradient at the
    levelled weights and lets ``policy`` pick the new levels.  Returns query accuracy and loss,
    each ``[T, steps + 1]`` (index 0: as deployed).
    """
    if policy not in POLICIES:
        raise ValueError(f"unknown update policy {policy!r}; allowed: {list(POLICIES)}")
    if len(weight_max) != len(weights) or not all(w > 0 for w in weight_max):
        raise ValueError(f"weight_max must hold {len(weights)} values > 0, got {weight_max}")
    rule = make_policy("verify" if policy == "manhattan" else policy, seed)
    tasks = support_x.shape[0]
    maps = [WeightMapping.from_full_scale(m, levels) for m in weight_max]
    per_task = head.per_task(weights, tasks)
    index = [m.index(w) for m, w in zip(maps, per_task, strict=True)]
    copies = [m.clip(w) for m, w in zip(maps, per_task, strict=True)] if rule.keeps_copy else None
    accuracy = torch.empty(tasks, steps + 1)
    loss = torch.empty(tasks, steps + 1)
    for k in range(steps + 1):
        w = [m.index_weights(i) for m, i in zip(maps, index, strict=True)]
        loss[:, k], accuracy[:, k] = head.loss_and_accuracy(head.forward(query_x, w)[-1], query_y)
        if k == steps:
            break
        grads = head.gradients(support_x, head.forward(support_x, w), w, support_y)
        new = [wi - lr * g for wi, g, lr in zip(w, grads, rates_at(inner_lrs, k), strict=True)]
        if copies is not None:  # the accumulate policy's float copy in the computer
            copies = [
                AccumulatePolicy.accumulate(m, c, wi, n)
                for m, c, wi, n in zip(maps, copies, w, new, strict=True)
            ]
            new = copies
        index = [
            rule.next_index(m, i, wi, n, rule.generator)
            for m, i, wi, n in zip(maps, index, w, new, strict=True)
        ]
    return accuracy, loss


def weight_max_for(
    support_x: torch.Tensor,
    support_y: torch.Tensor,
    query_x: torch.Tensor,
    query_y: torch.Tensor,
    weights: list[torch.Tensor],
    inner_lrs: Rates,
    steps: int,
    levels: torch.Tensor,
    policy: str = "stochastic",
    rule: str = "accuracy",
    margin: float = 1.0,
    seed: int = 0,
    start: list[float] | None = None,
) -> list[float]:
    """Per-layer full-scale weight from calibration tasks' features (``[T, B, in]``) and labels.

    ``rule="peak"``: ``margin`` (≥ 1) times the largest ``|w|`` ideal adaptation visits on the
    support sets (what hardware-aware meta-training uses today).  ``rule="accuracy"``: the
    full scales, fractions of that peak or ``start`` (e.g. a checkpoint's ``weight_max``, kept
    unless beaten), that maximise the mean query accuracy after ``steps`` of
    :func:`quantised_adapt` (every candidate is scored with the same random numbers).
    """
    if rule not in WEIGHT_MAX_RULES:
        raise ValueError(f"unknown weight_max rule {rule!r}; allowed: {list(WEIGHT_MAX_RULES)}")
    if margin < 1:
        raise ValueError(f"margin must be >= 1, got {margin}")
    peaks = head.weight_peaks(support_x, support_y, weights, inner_lrs, steps)
    if rule == "peak":
        return [p * margin for p in peaks]

    def score(full_scales: list[float]) -> float:
        accuracy, _ = quantised_adapt(
            support_x, support_y, query_x, query_y, weights, inner_lrs, steps,
            full_scales, levels, policy, seed,
        )  # fmt: skip
        return float(accuracy[:, -1].mean())

    return search_full_scale(score, peaks, start=start)
