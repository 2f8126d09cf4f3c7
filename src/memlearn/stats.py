"""Summary statistics shared by every report: the 95 % confidence interval of a mean."""

from __future__ import annotations

import math

import torch

Z95 = 1.96  # two-sided 95 % quantile of the standard normal distribution [textbook]


def ci95(values: torch.Tensor) -> float:
    """Half-width of the normal 95 % confidence interval of the mean of ``values``.

    Computed in float64 with the unbiased standard deviation; ``nan`` for fewer than two values
    (no spread to estimate).
    """
    values = torch.as_tensor(values)
    n = values.numel()
    if n < 2:
        return float("nan")
    return float(Z95 * values.double().std(unbiased=True) / math.sqrt(n))
