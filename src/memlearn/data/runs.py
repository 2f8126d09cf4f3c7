"""Lake's one-shot classification runs (``all_runs``): 20 fixed 20-way 1-shot tasks.

Layout (zip or folder, Lake et al., Science 2015, github.com/brendenlake/omniglot):
``runNN/training/classMM.png`` (one drawing of each of the 20 classes of the run),
``runNN/test/itemMM.png`` (20 test drawings) and ``runNN/class_labels.txt`` with one line
``runNN/test/itemMM.png runNN/training/classKK.png`` per test item. The 20 classes of a run
come from one alphabet of the evaluation set (within-alphabet protocol).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import torch

from memlearn.data.layout import RUNS_SET, Source, find_source
from memlearn.data.preprocess import decode_many
from memlearn.data.sampler import TaskBatch
from memlearn.errors import CorruptDataError

_RUN = re.compile(r"^(run\d+)/")


@dataclass(frozen=True)
class OneShotRuns:
    """The runs as one :class:`TaskBatch` (one task per run; support label ``j`` is
    ``classJJ`` of the run in order, queries are the test items in order) and their names."""

    tasks: TaskBatch
    names: list[str]


def _parse_labels(source: Source, run: str, text: str) -> list[tuple[str, str]]:
    pairs: list[tuple[str, str]] = []
    where = source.describe(f"{run}/class_labels.txt")
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 2:
            raise CorruptDataError(
                f"{where} line {number}: expected '<test image> <training image>', got {line!r}"
            )
        test, train = (f.replace("\\", "/") for f in fields)
        for path, part in ((test, "test"), (train, "training")):
            if not path.startswith(f"{run}/{part}/"):
                raise CorruptDataError(
                    f"{where} line {number}: {path!r} is not under {run}/{part}/"
                )
        pairs.append((test, train))
    return pairs


def load_runs(root: str | os.PathLike[str] | None = None) -> OneShotRuns:
    """Read ``all_runs`` from the data root: every run as a ``classes``-way 1-shot task
    (20-way in the official runs), images preprocessed as the image sets (28x28, ink = 1)."""
    source = find_source(RUNS_SET, root)
    members = source.members()
    runs = sorted({m.group(1) for rel in members if (m := _RUN.match(rel))})
    if not runs:
        raise CorruptDataError(
            f"{source.path} holds no runs: expected runNN/training/classNN.png, "
            "runNN/test/itemNN.png and runNN/class_labels.txt"
        )
    member_set = set(members)
    supports, queries, labels = [], [], []
    for run in runs:
        label_file = f"{run}/class_labels.txt"
        if label_file not in member_set:
            raise CorruptDataError(f"{source.describe(label_file)} is missing")
        text = source.read([label_file])[0].decode("utf-8", errors="replace")
        pairs = _parse_labels(source, run, text)
        train = sorted(
            r for r in members if r.startswith(f"{run}/training/") and r.endswith(".png")
        )
        index = {rel: i for i, rel in enumerate(train)}
        tests = [t for t, _ in pairs]
        for t, c in pairs:
            for path in (t, c):
                if path not in member_set:
                    raise CorruptDataError(
                        f"{source.describe(label_file)} names {path}, which is not in the runs"
                    )
        if len(set(tests)) != len(tests) or not train:
            raise CorruptDataError(
                f"{source.describe(label_file)}: each test item must appear once and the run "
                "must have training images"
            )
        supports.append(train)
        queries.append(tests)
        labels.append([index[c] for _, c in pairs])
    shapes = {(len(s), len(q)) for s, q in zip(supports, queries, strict=True)}
    if len(shapes) != 1:
        raise CorruptDataError(
            f"{source.path}: runs differ in size (training, test counts: {sorted(shapes)})"
        )
    n_train, n_test = shapes.pop()
    flat = [rel for s, q in zip(supports, queries, strict=True) for rel in (*s, *q)]
    pixels = decode_many(source.read(flat), [source.describe(r) for r in flat])
    x = torch.from_numpy(pixels).float().div_(255.0).reshape(len(runs), n_train + n_test, 1, 28, 28)
    classes = torch.arange(n_train).expand(len(runs), -1).contiguous()
    tasks = TaskBatch(
        support_x=x[:, :n_train].contiguous(),
        support_y=classes.clone(),
        query_x=x[:, n_train:].contiguous(),
        query_y=torch.tensor(labels, dtype=torch.int64),
        classes=classes,
    )
    return OneShotRuns(tasks, runs)
