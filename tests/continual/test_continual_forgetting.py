"""A tiny sequential run: metaplastic synapses forget the first task less than plain ones."""

import torch

from memlearn.continual import ContinualConfig, run_continual


def _forgetting(meta: float) -> torch.Tensor:
    config = ContinualConfig(
        tasks=2, meta=meta, memory="software", train_size=2000, test_size=500, epochs=2,
        batch=50, chips=4, curve_points=1, curve_images=100, seed=1,
    )  # fmt: skip
    acc = run_continual(config).accuracy
    return acc[:, 0, 0] - acc[:, 1, 0]  # per chip: task 1 right after learning it - at the end


def test_metaplasticity_forgets_less_than_seed_noise_allows(shared_data):
    plain, meta = _forgetting(0.0), _forgetting(2.0)
    assert (plain > 0.15).all()  # the plain network forgets (catastrophically, at this size)
    # every one of 4 chips with metaplasticity forgets less than every chip without
    assert float(meta.max()) < float(plain.min())
