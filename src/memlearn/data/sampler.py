"""N-way K-shot Q-query task sampling, vectorised over tasks with index tensors."""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from memlearn.data.splits import ClassImages


@dataclass(frozen=True)
class TaskBatch:
    """A batch of few-shot tasks.

    ``support_x`` float [T, ways*shots, 1, 28, 28], ``support_y`` int64 [T, ways*shots] in
    0..ways-1; ``query_x`` [T, ways*queries, 1, 28, 28], ``query_y`` [T, ways*queries].
    Examples are grouped by label (label 0 first). ``classes`` int64 [T, ways]: the index in the
    source :class:`ClassImages` of the class given label ``j`` in each task.
    """

    support_x: torch.Tensor
    support_y: torch.Tensor
    query_x: torch.Tensor
    query_y: torch.Tensor
    classes: torch.Tensor

    def __len__(self) -> int:
        return int(self.support_x.shape[0])

    @property
    def ways(self) -> int:
        return int(self.classes.shape[1])

    def to(self, device: torch.device | str) -> TaskBatch:
        """A copy with every tensor on ``device``."""
        return replace(self, **{k: getattr(self, k).to(device) for k in self.__dataclass_fields__})

    def __getitem__(self, index: slice | int) -> TaskBatch:
        """A sub-batch of tasks (an int keeps the task dimension, of size 1)."""
        if isinstance(index, int):
            index = slice(index, index + 1 if index != -1 else None)
        return replace(self, **{k: getattr(self, k)[index] for k in self.__dataclass_fields__})


class TaskSampler:
    """Draws N-way K-shot tasks from a :class:`ClassImages`.

    Each task picks ``ways`` distinct classes (all from one alphabet when ``within_alphabet``,
    Lake's protocol; the alphabet is drawn uniformly among those with at least ``ways``
    classes), gives them labels 0..ways-1 in a random order, and draws ``shots + queries``
    distinct drawings of each class. Seeded with its own ``torch.Generator``: the same seed gives
    the same sequence of task batches.
    """

    def __init__(
        self,
        classes: ClassImages,
        ways: int = 5,
        shots: int = 1,
        queries: int = 15,
        seed: int = 0,
        within_alphabet: bool = False,
    ) -> None:
        per_class, n_classes = classes.n_per_class, classes.n_classes
        if ways < 2:
            raise ValueError(f"ways must be >= 2, got {ways}")
        if shots < 1:
            raise ValueError(f"shots must be >= 1, got {shots}")
        if queries < 1:
            raise ValueError(f"queries must be >= 1, got {queries}")
        if shots + queries > per_class:
            raise ValueError(
                f"shots + queries must be <= {per_class} (the images of each class), got "
                f"{shots} + {queries}"
            )
        if ways > n_classes:
            raise ValueError(
                f"ways={ways} but split {classes.split!r} has only {n_classes} classes"
            )
        self.classes = classes
        self.ways, self.shots, self.queries = ways, shots, queries
        self.within_alphabet = within_alphabet
        self.generator = torch.Generator().manual_seed(seed)
        alphabet = classes.alphabet.cpu()
        self._alphabet = alphabet
        if within_alphabet:
            counts = torch.bincount(alphabet, minlength=len(classes.alphabet_names))
            self._eligible = torch.nonzero(counts >= ways).flatten()
            if self._eligible.numel() == 0:
                raise ValueError(
                    f"within-alphabet sampling with ways={ways}: no alphabet of split "
                    f"{classes.split!r} has that many classes (largest: {int(counts.max())})"
                )

    def sample(self, n_tasks: int) -> TaskBatch:
        """``n_tasks`` tasks as one :class:`TaskBatch` on the device of the images."""
        return self.gather(*self.indices(n_tasks))

    def indices(self, n_tasks: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The next ``n_tasks`` tasks as indices, drawn as :meth:`sample` draws them: the class
        of each label ``[T, ways]`` and the drawings of each class ``[T, ways, shots +
        queries]`` (the shots first).  :meth:`gather` of any slice of them gives those tasks'
        images, so a large batch can be turned into images a part at a time."""
        if n_tasks < 1:
            raise ValueError(f"n_tasks must be >= 1, got {n_tasks}")
        g, ways, per = self.generator, self.ways, self.shots + self.queries
        n_classes, n_drawings = self.classes.n_classes, self.classes.n_per_class
        scores = torch.rand(n_tasks, n_classes, generator=g)
        if self.within_alphabet:
            pick = torch.randint(len(self._eligible), (n_tasks,), generator=g)
            chosen = self._eligible[pick]
            scores = scores.masked_fill(self._alphabet[None, :] != chosen[:, None], -1.0)
        # The top-`ways` of iid uniform scores: a uniformly random ordered set of classes, so the
        # label given to each class is random too.
        cls = scores.topk(ways, dim=1).indices  # [T, ways]
        draw = torch.rand(n_tasks, ways, n_drawings, generator=g).argsort(dim=2)[..., :per]
        return cls, draw

    def gather(self, classes: torch.Tensor, drawings: torch.Tensor) -> TaskBatch:
        """The tasks of ``classes [T, ways]`` and ``drawings [T, ways, shots + queries]`` (from
        :meth:`indices`) as a :class:`TaskBatch` on the device of the images."""
        ways, per = self.ways, self.shots + self.queries
        if classes.shape[1:] != (ways,) or drawings.shape[1:] != (ways, per):
            raise ValueError(
                f"classes must be [T, {ways}] and drawings [T, {ways}, {per}], got "
                f"{list(classes.shape)} and {list(drawings.shape)}"
            )
        n_tasks, device = classes.shape[0], self.classes.images.device
        cls_d, draw_d = classes.to(device), drawings.to(device)
        x = self.classes.images[cls_d[..., None], draw_d]  # [T, ways, per, 1, 28, 28]
        shape = x.shape[3:]
        labels = torch.arange(ways, device=device)
        s, q = self.shots, self.queries
        return TaskBatch(
            support_x=x[:, :, :s].reshape(n_tasks, ways * s, *shape),
            support_y=labels.repeat_interleave(s).expand(n_tasks, -1).contiguous(),
            query_x=x[:, :, s:].reshape(n_tasks, ways * q, *shape),
            query_y=labels.repeat_interleave(q).expand(n_tasks, -1).contiguous(),
            classes=cls_d,
        )
