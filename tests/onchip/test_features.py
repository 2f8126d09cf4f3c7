"""Tasks as features (memlearn.onchip.features): chunk-independent extractor features, and query
features gathered from the split's distinct images."""

from __future__ import annotations

import torch

from memlearn.data import TaskSampler, load_split
from memlearn.data.splits import ClassImages
from memlearn.nn import FewShotNet
from memlearn.onchip import features
from memlearn.onchip.deploy import DeployConfig, prepare
from memlearn.onchip.run import with_copies


def test_an_images_features_do_not_depend_on_its_chunk(monkeypatch):
    """Any chunking, a last chunk of one image and a lone image included, gives every image the
    features it has in one large batch, bit for bit."""
    torch.manual_seed(0)
    extractor = features.deployed_extractor(FewShotNet(ways=5).eval())
    images = torch.rand(9, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    whole = features.image_features(extractor, images)
    assert whole.shape == (9, 32) and whole.dtype == torch.float32
    for chunk in (2, 4, 8):  # 9 = 2+2+2+2+1, 4+4+1, 8+1: the last joins a chunk
        monkeypatch.setattr(features, "FEATURE_CHUNK", chunk)
        assert torch.equal(features.image_features(extractor, images), whole), chunk
    for i in (0, 8):
        assert torch.equal(features.image_features(extractor, images[i : i + 1]), whole[i : i + 1])
    assert features.image_features(extractor, images[:0]).shape[0] == 0


def _split(classes: int, per_class: int, seed: int) -> ClassImages:
    """A small synthetic split of random 16x16 'drawings'."""
    images = torch.rand(
        classes, per_class, 1, 16, 16, generator=torch.Generator().manual_seed(seed)
    )
    alphabet = torch.zeros(classes, dtype=torch.int64)
    names = [f"c{i}" for i in range(classes)]
    return ClassImages(images, alphabet, ["A"], names, "synthetic", alphabet)


def test_query_features_are_gathered_once_per_distinct_image(monkeypatch):
    """The gathered query features are those computed task by task, bit for bit, and the
    extractor sees each distinct query image once: never more images than the split has,
    however many tasks."""
    torch.manual_seed(0)
    net = FewShotNet(ways=5, widths=(8, 8, 8, 12), hidden=6, image_size=16).eval()
    classes = _split(8, 6, seed=1)  # 48 images
    seen: list[int] = []
    run = features.image_features

    def counted(extractor: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
        seen.append(images.shape[0])
        return run(extractor, images)

    monkeypatch.setattr(features, "image_features", counted)
    monkeypatch.setattr(features, "FEATURE_CHUNK", 16)
    counts: list[int] = []
    for n_tasks in (1, 30, 300):
        sampler = TaskSampler(classes, 5, 1, 4, seed=n_tasks)
        cls, draw = sampler.indices(n_tasks)
        seen.clear()
        got = features.query_features(sampler, cls, draw, net)
        distinct = torch.unique(cls[..., None] * 6 + draw[..., 1:]).numel()
        counts.append(sum(seen))
        assert counts[-1] == distinct <= 48 and max(seen) <= 17
        want = features.task_features(net, sampler.gather(cls, draw).query_x)
        assert got.shape == want.shape == (n_tasks, 20, 12)
        assert torch.equal(got, want)
    assert counts[0] == 20 and counts[-1] <= 48 < 300 * 20  # task by task: 20, 600, 6,000


def test_sampled_head_tasks_are_the_tasks_with_their_copies(shared_data):
    """sampled_head_tasks is head_tasks of the sampled tasks with their distorted copies."""
    net = prepare(DeployConfig(tasks=1, split="val", root=shared_data)).net
    classes = load_split("val", shared_data, rotations=False)
    got = features.sampled_head_tasks(TaskSampler(classes, 5, 2, 3, seed=4), 7, net, 2, 9)
    batch = with_copies(TaskSampler(classes, 5, 2, 3, seed=4).sample(7), 2, 9)
    want = features.head_tasks(net, batch)
    assert got.support_x.shape == (7, 5 * 2 * 3, 32) and got.query_x.shape == (7, 15, 32)
    for name in ("support_x", "support_y", "query_x", "query_y"):
        assert torch.equal(getattr(got, name), getattr(want, name)), name
