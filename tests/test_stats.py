"""The one 95 % confidence interval."""

from __future__ import annotations

import math

import pytest
import torch

from memlearn.stats import ci95


def test_ci95_of_a_known_sample() -> None:
    # values 0, 1 repeated: unbiased std = sqrt(n / (4 (n - 1)))
    n = 400
    values = torch.tensor([0.0, 1.0]).repeat(n // 2)
    expected = 1.96 * math.sqrt(n / (4 * (n - 1))) / math.sqrt(n)
    assert ci95(values) == pytest.approx(expected, rel=1e-12)
    assert ci95(values.double()) == ci95(values) == ci95(values.to(torch.int64))


def test_ci95_edge_cases() -> None:
    assert math.isnan(ci95(torch.tensor([0.7])))
    assert math.isnan(ci95(torch.tensor([])))
    assert ci95(torch.full((10,), 0.3)) == pytest.approx(0.0, abs=1e-15)
