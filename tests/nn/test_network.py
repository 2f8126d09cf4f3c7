"""The few-shot network: shapes, BN folding, the functional head, bad inputs."""

from __future__ import annotations

import copy

import pytest
import torch

from memlearn.nn import ConvExtractor, FewShotNet, fold_batchnorm, head_forward


def _trained_bn_net(seed: int = 0) -> FewShotNet:
    """A network whose BN statistics and affine parameters are far from their defaults."""
    torch.manual_seed(seed)
    net = FewShotNet()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.weight.uniform_(0.5, 2.0, generator=gen)
                module.bias.normal_(0.0, 0.5, generator=gen)
    net.train()
    for _ in range(3):  # accumulate running statistics on shifted inputs
        net(torch.rand(16, 1, 28, 28, generator=gen) * 0.7 + 0.1)
    return net.eval()


def test_shapes_and_nonnegative_features() -> None:
    net = FewShotNet(ways=5).eval()
    x = torch.rand(6, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    feats = net.features(x)
    assert feats.shape == (6, 32)
    assert (feats >= 0).all()
    assert net.fc1.weight.shape == (16, 32) and net.fc1.bias is None
    assert net.fc2.weight.shape == (5, 16) and net.fc2.bias is None
    assert net(x).shape == (6, 5)


def test_fold_batchnorm_matches_eval_mode() -> None:
    net = _trained_bn_net()
    x = torch.rand(10, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    folded = net.fold_batchnorm()
    assert folded.extractor.folded and not net.extractor.folded
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    torch.testing.assert_close(folded.features(x), net.features(x), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(folded(x), net(x), atol=1e-5, rtol=1e-5)


def test_folded_output_independent_of_batch() -> None:
    """No batch statistics at deployment: an image's features do not depend on its batch."""
    folded = fold_batchnorm(_trained_bn_net().extractor)
    gen = torch.Generator().manual_seed(3)
    x = torch.rand(8, 1, 28, 28, generator=gen)
    other = torch.rand(8, 1, 28, 28, generator=gen) * 0.2
    alone = folded(x[:1])
    mixed = folded(torch.cat([x[:1], other]))[:1]
    torch.testing.assert_close(alone, mixed, atol=1e-6, rtol=1e-6)
    assert folded(x).shape == (8, 32)


def test_functional_head_equals_module_head() -> None:
    net = FewShotNet(ways=5).eval()
    gen = torch.Generator().manual_seed(4)
    feats = torch.rand(3, 7, 32, generator=gen)
    w1 = net.fc1.weight.expand(3, -1, -1)
    w2 = net.fc2.weight.expand(3, -1, -1)
    batched = net.head(feats, w1, w2)
    module = net.fc2(torch.relu(net.fc1(feats)))
    torch.testing.assert_close(batched, module)
    torch.testing.assert_close(head_forward(feats[0], w1[0], w2[0]), module[0])


def test_head_uses_each_tasks_own_weights() -> None:
    gen = torch.Generator().manual_seed(5)
    feats = torch.rand(2, 4, 32, generator=gen)
    w1 = torch.randn(2, 16, 32, generator=gen)
    w2 = torch.randn(2, 5, 16, generator=gen)
    out = head_forward(feats, w1, w2)
    for t in range(2):
        torch.testing.assert_close(out[t], torch.relu(feats[t] @ w1[t].T) @ w2[t].T)


def test_config_round_trip() -> None:
    net = FewShotNet(ways=3, widths=(8, 8, 8, 8), hidden=6)
    again = FewShotNet.from_config(net.config)
    assert again.config == net.config
    assert again.fc2.weight.shape == (3, 6) and again.extractor.features == 8


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"ways": 1}, "ways"),
        ({"hidden": 0}, "hidden"),
        ({"widths": ()}, "widths"),
        ({"image_size": 64, "pooling": "floor"}, "image_size"),
        ({"image_size": 0}, "image_size"),
        ({"pooling": "mean"}, "pooling"),
        ({"normalize": "l1"}, "normalize"),
    ],
)
def test_bad_construction(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FewShotNet(**kwargs)


def test_bad_shapes() -> None:
    net = FewShotNet()
    with pytest.raises(ValueError, match="images must be"):
        net.features(torch.zeros(2, 3, 28, 28))
    with pytest.raises(ValueError, match="inputs"):
        head_forward(torch.zeros(1, 2, 31), torch.zeros(1, 16, 32), torch.zeros(1, 5, 16))
    with pytest.raises(ValueError, match="task dimension"):
        head_forward(torch.zeros(2, 2, 32), torch.zeros(1, 16, 32), torch.zeros(1, 5, 16))
    with pytest.raises(ValueError, match="unknown network options"):
        FewShotNet.from_config({"ways": 5, "depth": 3})
    with pytest.raises(TypeError):
        fold_batchnorm(torch.nn.Linear(2, 2))  # type: ignore[arg-type]


def test_extractor_depth_configurable() -> None:
    ext = ConvExtractor(widths=(8, 8, 16), image_size=8)
    assert ext(torch.rand(2, 1, 8, 8)).shape == (2, 16)


def test_pooling_map_sizes() -> None:
    """28x28 shrinks 14, 7, 3, 1 with "floor" pooling and 14, 7, 4, 1 with "cover"."""
    for pooling, sizes in (("floor", [14, 7, 3, 1]), ("cover", [14, 7, 4, 1])):
        ext = ConvExtractor(pooling=pooling).eval()
        x = torch.rand(2, 1, 28, 28)
        seen = []
        for block in ext.blocks:
            x = block(x)
            seen.append(x.shape[-1])
        assert seen == sizes, pooling


def test_l2_features_have_norm_sqrt_features() -> None:
    ext = ConvExtractor(normalize="l2").eval()
    feats = ext(torch.rand(4, 1, 28, 28, generator=torch.Generator().manual_seed(1)))
    assert torch.allclose(feats.norm(dim=1), torch.full((4,), 32**0.5), rtol=1e-5)


def test_old_checkpoint_configs_keep_their_architecture() -> None:
    old = {"ways": 5, "widths": [8, 8, 8, 8], "hidden": 6, "in_channels": 1, "image_size": 28}
    net = FewShotNet.from_config(old)
    assert net.extractor.pooling == "floor" and net.extractor.normalize == "none"


def test_task_batchnorm_uses_each_tasks_statistics() -> None:
    """The transductive extra equals train-mode BN run on each task's images alone."""
    net = _trained_bn_net(6)
    x = torch.rand(3, 7, 1, 28, 28, generator=torch.Generator().manual_seed(7))
    per_task = net.extractor.forward_task_batchnorm(x)
    for t in range(3):
        alone = copy.deepcopy(net.extractor).train()
        torch.testing.assert_close(per_task[t], alone(x[t]), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="folded"):
        net.fold_batchnorm().extractor.forward_task_batchnorm(x)
