"""Sequential MNIST benchmarks: permuted MNIST and split MNIST (shared MNIST files).

Images are binarised to +-1 (pixel > 1/2 of full ink, after an optional 2x2 average pool to
14x14 for the chip-sized network): the near-memory engine takes binary inputs.

- ``permuted-mnist``: task 0 is MNIST itself, task t > 0 a fixed random pixel permutation of
  the network's input (drawn from the run's generator); 10 classes.
- ``split-mnist``: task t holds the digits ``2t`` and ``2t + 1`` (at most 5 tasks); the label is
  the digit's parity, one shared 2-way head (domain-incremental).

Evaluation ``split``: ``test`` trains on the 60,000 training images and evaluates on the 10,000
test images; ``validation`` (for choosing hyper-parameters) trains on 50,000 training images
and evaluates on the other 10,000 (a fixed split, ``VALIDATION_SEED``): the test set is never
seen.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch

from memlearn.data.mnist import load_mnist
from memlearn.errors import MemlearnError

BENCHMARKS = ("permuted-mnist", "split-mnist")
SPLIT_TASKS = 5
SPLITS = ("test", "validation")
VALIDATION_IMAGES = 10_000
VALIDATION_SEED = 20_210_505
"""[E] fixes which training images are held out for validation, whatever the run's seed."""


@dataclass
class Task:
    """One task: +-1 images (int8) ``[N, pixels]`` and labels for training and testing."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor


def check_benchmark(benchmark: str, tasks: int) -> int:
    """The number of output classes; ``MemlearnError`` for a bad benchmark or task count."""
    if benchmark not in BENCHMARKS:
        raise MemlearnError(f"unknown benchmark {benchmark!r}; allowed {list(BENCHMARKS)}")
    if isinstance(tasks, bool) or not isinstance(tasks, int) or tasks < 1:
        raise MemlearnError(f"tasks must be an integer >= 1, got {tasks!r}")
    if benchmark == "split-mnist" and tasks > SPLIT_TASKS:
        raise MemlearnError(f"split-mnist has at most {SPLIT_TASKS} tasks, got {tasks}")
    return 10 if benchmark == "permuted-mnist" else 2


def binarise(images: torch.Tensor, side: int) -> torch.Tensor:
    """uint8 ``[N, 28, 28]`` -> int8 ``[N, side*side]`` in {-1, +1}."""
    x = images.float() / 255.0
    if side != 28:
        if 28 % side:
            raise MemlearnError(f"input side must divide 28, got {side}")
        k = 28 // side
        x = torch.nn.functional.avg_pool2d(x[:, None], k)[:, 0]
    return torch.where(x.flatten(1) > 0.5, 1, -1).to(torch.int8)


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise MemlearnError(f"unknown split {split!r}; allowed {list(SPLITS)}")
    return split


def validation_indices(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training, held-out) indices of ``n`` training images for the validation split."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(VALIDATION_SEED))
    return order[:-VALIDATION_IMAGES], order[-VALIDATION_IMAGES:]


@functools.lru_cache(maxsize=4)
def _binarised(side: int, root: str | None, split: str) -> tuple[torch.Tensor, ...]:
    """Binarised MNIST training and evaluation images and labels (cached: loading takes
    seconds); ``split`` chooses the evaluation images (module doc)."""
    train, test = load_mnist("train", root), load_mnist("test", root)
    tr_x, tr_y = binarise(train.images, side), train.labels
    if split == "test":
        return tr_x, tr_y, binarise(test.images, side), test.labels
    keep, held = validation_indices(len(tr_x))
    return tr_x[keep], tr_y[keep], tr_x[held], tr_y[held]


def _subset(n: int, size: int | None, generator: torch.Generator) -> torch.Tensor:
    if size is None or size >= n:
        return torch.arange(n)
    return torch.randperm(n, generator=generator)[:size]


def make_tasks(
    benchmark: str,
    tasks: int,
    side: int,
    generator: torch.Generator,
    train_size: int | None = None,
    test_size: int | None = None,
    root: str | None = None,
    split: str = "test",
) -> list[Task]:
    """The ``tasks`` tasks of ``benchmark`` with at most ``train_size``/``test_size`` images
    each (random subsets); ``test_*`` hold the evaluation images of ``split``."""
    check_benchmark(benchmark, tasks)
    check_split(split)
    tr_x, tr_y, te_x, te_y = _binarised(side, None if root is None else str(root), split)
    out: list[Task] = []
    for t in range(tasks):
        if benchmark == "permuted-mnist":
            perm = (
                torch.arange(side * side)
                if t == 0
                else torch.randperm(side * side, generator=generator)
            )
            i = _subset(len(tr_x), train_size, generator)
            j = _subset(len(te_x), test_size, generator)
            out.append(Task(tr_x[i][:, perm], tr_y[i], te_x[j][:, perm], te_y[j]))
        else:
            keep_tr = torch.nonzero((tr_y // 2) == t).squeeze(1)
            keep_te = torch.nonzero((te_y // 2) == t).squeeze(1)
            i = keep_tr[_subset(len(keep_tr), train_size, generator)]
            j = keep_te[_subset(len(keep_te), test_size, generator)]
            out.append(Task(tr_x[i], tr_y[i] % 2, te_x[j], te_y[j] % 2))
    return out
