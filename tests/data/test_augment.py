"""Affine distortions and the support copies the adaptation learns from."""

from __future__ import annotations

import pytest
import torch

from memlearn.data import TaskBatch
from memlearn.data.augment import Affine, with_support_copies


def _strokes(n: int) -> torch.Tensor:
    """``n`` 28x28 images of ink 1 on a 0 background: plus signs 3 px thick, centred on the
    diagonal 4 px apart, five positions in turn."""
    images = torch.zeros(n, 1, 28, 28)
    for i in range(n):
        c = 6 + 4 * (i % 5)
        images[i, 0, c - 1 : c + 2, 4:24] = 1.0
        images[i, 0, 4:24, c - 1 : c + 2] = 1.0
    return images


def _tasks(t: int = 3, ways: int = 5, queries: int = 2) -> TaskBatch:
    support = _strokes(t * ways).view(t, ways, 1, 28, 28)
    query = _strokes(t * ways * queries).view(t, ways * queries, 1, 28, 28)
    labels = torch.arange(ways).repeat(t, 1)
    return TaskBatch(
        support, labels, query, torch.arange(ways).repeat_interleave(queries).repeat(t, 1),
        torch.arange(ways).repeat(t, 1),
    )  # fmt: skip


def test_affine_keeps_the_ink_and_moves_it():
    images = _strokes(64)
    out = Affine()(images, torch.Generator().manual_seed(0))
    assert out.shape == images.shape
    ink, moved = images.sum(dim=(1, 2, 3)), out.sum(dim=(1, 2, 3))
    # a zoom of at most 10 % changes the ink of a stroke by its length: within 25 %
    assert torch.allclose(moved, ink, rtol=0.25)
    assert (out - images).abs().sum(dim=(1, 2, 3)).min() > 0  # every image changed
    zero = Affine(degrees=0, scale=0, shift=0)(images, torch.Generator().manual_seed(0))
    assert torch.allclose(zero, images, atol=1e-5)  # the identity distortion is exact


def test_support_copies_shape_order_and_labels():
    tasks = _tasks()
    out = with_support_copies(tasks, 3, torch.Generator().manual_seed(1))
    assert out.support_x.shape == (3, 4 * 5, 1, 28, 28)
    assert torch.equal(out.support_x[:, :5], tasks.support_x)  # the shots come first, unchanged
    assert torch.equal(out.support_y, tasks.support_y.repeat(1, 4))
    for r in range(1, 4):  # each round is a distortion of every shot, in the same order
        copy = out.support_x[:, 5 * r : 5 * (r + 1)]
        assert not torch.equal(copy, tasks.support_x)
        # each copy overlaps its own shot more than any other shot of its task
        overlap = torch.einsum("tiabc,tjabc->tij", copy, tasks.support_x)
        assert torch.equal(overlap.argmax(dim=2), torch.arange(5).expand(3, 5))
    assert out.query_x is tasks.query_x and out.query_y is tasks.query_y
    assert torch.equal(out.classes, tasks.classes)


def test_support_copies_are_seeded_and_zero_is_the_identity():
    tasks = _tasks()
    a = with_support_copies(tasks, 2, torch.Generator().manual_seed(5))
    b = with_support_copies(tasks, 2, torch.Generator().manual_seed(5))
    c = with_support_copies(tasks, 2, torch.Generator().manual_seed(6))
    assert torch.equal(a.support_x, b.support_x)
    assert not torch.equal(a.support_x, c.support_x)
    assert with_support_copies(tasks, 0, torch.Generator()) is tasks
    with pytest.raises(ValueError, match="support copies must be >= 0"):
        with_support_copies(tasks, -1, torch.Generator())
