from __future__ import annotations

from typing import Any

import pytest
import torch

from memlearn.experiments.sweep import point_seeds, run_sweep


def noisy_mean(point: dict[str, Any], seed: int) -> dict[str, Any]:
    """A seeded Monte Carlo point: the mean of ``n`` normal draws with spread ``sigma``."""
    gen = torch.Generator().manual_seed(seed)
    draws = torch.randn(point["n"], generator=gen) * point["sigma"]
    return {"sigma": point["sigma"], "mean": float(draws.mean()), "std": float(draws.std())}


POINTS = [{"n": 20_000, "sigma": s} for s in (0.5, 1.0, 2.0, 4.0)]


def test_point_seeds_depend_only_on_base_seed_and_index() -> None:
    assert point_seeds(7, 5) == point_seeds(7, 5)
    assert point_seeds(7, 5)[:3] == point_seeds(7, 3)
    assert len(set(point_seeds(7, 50))) == 50
    assert point_seeds(7, 3) != point_seeds(8, 3)
    with pytest.raises(ValueError, match="seed"):
        point_seeds(-1, 3)


def test_local_sweep_keeps_point_order_and_is_reproducible() -> None:
    first = run_sweep(noisy_mean, POINTS, seed=3, progress=False)
    assert [r["sigma"] for r in first] == [p["sigma"] for p in POINTS]
    # Monte Carlo spread follows the parameter (within 3 % for 20,000 draws).
    for r in first:
        assert r["std"] == pytest.approx(r["sigma"], rel=0.03)
    assert run_sweep(noisy_mean, POINTS, seed=3, progress=False) == first
    assert run_sweep(noisy_mean, POINTS, seed=4, progress=False) != first


def test_unknown_backend_is_named() -> None:
    with pytest.raises(ValueError, match="allowed: local, ray"):
        run_sweep(noisy_mean, POINTS, backend="dask")


# The Ray backend against the local one, on a local Ray started for the sweep and shut down
# after it: tests/experiments/test_studies.py::test_ray_and_local_backends_agree_on_a_study_sweep
# (study points; one Ray start for the suite).
