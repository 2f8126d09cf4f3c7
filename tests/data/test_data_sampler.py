"""N-way K-shot task sampler: shapes, balance, disjoint support/query, determinism, errors."""

from __future__ import annotations

import pytest
import torch

from memlearn.data import ClassImages, TaskSampler


def tagged_classes(alphabet_sizes: list[int], per_class: int = 20) -> ClassImages:
    """Images whose pixels say which class and drawing they are: [c, d, 0, 0, 0] = c and
    [c, d, 0, 0, 1] = d, so a task's content can be traced back exactly."""
    n = sum(alphabet_sizes)
    images = torch.zeros(n, per_class, 1, 28, 28)
    images[:, :, 0, 0, 0] = torch.arange(n, dtype=torch.float32)[:, None]
    images[:, :, 0, 0, 1] = torch.arange(per_class, dtype=torch.float32)[None, :]
    alphabet = torch.repeat_interleave(
        torch.arange(len(alphabet_sizes)), torch.tensor(alphabet_sizes)
    )
    return ClassImages(
        images,
        alphabet,
        [f"A{i}" for i in range(len(alphabet_sizes))],
        [f"c{i}" for i in range(n)],
        "synthetic",
        torch.zeros(n, dtype=torch.int64),
    )


def trace(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[..., 0, 0, 0].long(), x[..., 0, 0, 1].long()


@pytest.mark.parametrize(("ways", "shots", "queries"), [(5, 1, 15), (5, 5, 15), (20, 1, 19)])
def test_tasks_are_well_formed(ways, shots, queries):
    classes = tagged_classes([7, 12, 4, 9])
    tasks = TaskSampler(classes, ways, shots, queries, seed=3).sample(64)
    t = len(tasks)
    assert tasks.support_x.shape == (t, ways * shots, 1, 28, 28)
    assert tasks.query_x.shape == (t, ways * queries, 1, 28, 28)
    assert tasks.support_y.dtype == torch.int64 and tasks.query_y.dtype == torch.int64
    # Labels balanced: each of 0..ways-1 exactly `shots` / `queries` times in every task.
    assert (
        torch.stack([torch.bincount(y, minlength=ways) for y in tasks.support_y]) == shots
    ).all()
    assert (
        torch.stack([torch.bincount(y, minlength=ways) for y in tasks.query_y]) == queries
    ).all()
    # Distinct classes per task, and every example of label j comes from class classes[:, j].
    assert all(len(set(row.tolist())) == ways for row in tasks.classes)
    s_cls, s_draw = trace(tasks.support_x)
    q_cls, q_draw = trace(tasks.query_x)
    assert torch.equal(s_cls, tasks.classes.gather(1, tasks.support_y))
    assert torch.equal(q_cls, tasks.classes.gather(1, tasks.query_y))
    # No drawing is both a support shot and a query of the same task.
    for i in range(t):
        support = set(zip(s_cls[i].tolist(), s_draw[i].tolist(), strict=True))
        query = set(zip(q_cls[i].tolist(), q_draw[i].tolist(), strict=True))
        assert not support & query and len(query) == ways * queries


def test_same_seed_same_tasks_other_seed_other_tasks():
    classes = tagged_classes([10, 10, 10])
    a = TaskSampler(classes, seed=11).sample(16)
    b = TaskSampler(classes, seed=11).sample(16)
    c = TaskSampler(classes, seed=12).sample(16)
    assert torch.equal(a.support_x, b.support_x) and torch.equal(a.query_x, b.query_x)
    assert not torch.equal(a.classes, c.classes)
    sampler = TaskSampler(classes, seed=11)
    first, second = sampler.sample(16), sampler.sample(16)  # the stream moves on
    assert torch.equal(first.classes, a.classes) and not torch.equal(second.classes, a.classes)


def test_labels_randomly_assigned_to_classes():
    # Over many tasks every class is given label 0 about equally often (random relabelling).
    classes = tagged_classes([10])
    tasks = TaskSampler(classes, ways=5, shots=1, queries=1, seed=0).sample(4000)
    counts = torch.bincount(tasks.classes[:, 0], minlength=10).float()
    expected = 4000 / 10
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    assert chi2 < 27.9  # chi-square, 9 degrees of freedom, p = 0.001


def test_within_alphabet_skips_small_alphabets():
    classes = tagged_classes([3, 8, 2, 6])
    tasks = TaskSampler(classes, ways=5, within_alphabet=True, seed=0).sample(200)
    alphabets = classes.alphabet[tasks.classes]
    assert (alphabets == alphabets[:, :1]).all()
    assert set(alphabets[:, 0].tolist()) == {1, 3}  # alphabets 0 and 2 have fewer than 5
    with pytest.raises(ValueError, match=r"no alphabet .* has that many classes \(largest: 8\)"):
        TaskSampler(classes, ways=9, within_alphabet=True)


def test_bad_parameters_give_clear_errors():
    classes = tagged_classes([4, 3])
    with pytest.raises(ValueError, match=r"ways=8 but split 'synthetic' has only 7 classes"):
        TaskSampler(classes, ways=8)
    with pytest.raises(ValueError, match=r"shots \+ queries must be <= 20 .* got 5 \+ 16"):
        TaskSampler(classes, ways=5, shots=5, queries=16)
    with pytest.raises(ValueError, match="queries must be >= 1, got 0"):
        TaskSampler(classes, ways=5, shots=5, queries=0)
    with pytest.raises(ValueError, match="shots must be >= 1"):
        TaskSampler(classes, ways=5, shots=0)
    with pytest.raises(ValueError, match="n_tasks"):
        TaskSampler(classes, ways=5).sample(0)


def test_task_batch_slicing_and_device():
    tasks = TaskSampler(tagged_classes([10]), seed=0).sample(6)
    part = tasks[2:4]
    assert len(part) == 2 and torch.equal(part.query_x, tasks.query_x[2:4])
    assert len(tasks[-1]) == 1 and torch.equal(tasks[-1].classes, tasks.classes[-1:])
    assert tasks.to("cpu").ways == 5
