"""Fixtures of the meta tests: small synthetic class sets in the ClassImages layout."""

from __future__ import annotations

import pytest
import torch

from memlearn.data import ClassImages


def synthetic_classes(n_classes: int, split: str, seed: int) -> ClassImages:
    """Each class: a random 28x28 ink pattern; its 20 drawings: the pattern with pixels flipped
    at random (10 %), so classes are learnable and drawings differ."""
    g = torch.Generator().manual_seed(seed)
    protos = (torch.rand(n_classes, 1, 1, 28, 28, generator=g) < 0.25).float()
    flips = (torch.rand(n_classes, 20, 1, 28, 28, generator=g) < 0.1).float()
    images = (protos - flips).abs()
    alphabet = torch.arange(n_classes) // 10
    names = [f"A{i}" for i in range(int(alphabet.max()) + 1)]
    return ClassImages(
        images, alphabet, names, [f"A{a}/character{i:02d}" for i, a in enumerate(alphabet)], split,
        torch.zeros(n_classes, dtype=torch.int64),
    )  # fmt: skip


@pytest.fixture(scope="session")
def tiny_splits() -> tuple[ClassImages, ClassImages]:
    return synthetic_classes(40, "train", 0), synthetic_classes(20, "val", 1)
