"""Bad settings are refused with a clear message before any work."""

from __future__ import annotations

import pytest

from memlearn.ep.config import EPConfig, parse_network, quick
from memlearn.errors import MemlearnError


def test_network_strings():
    assert parse_network("784-500-10") == (784, 500, 10)
    assert parse_network("784-256-128-10") == (784, 256, 128, 10)
    for bad in ("784-10", "784-abc-10", "", "784--10", "784-0-10"):
        with pytest.raises(MemlearnError, match="unknown network string"):
            parse_network(bad)


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("beta", 0.0, "beta must be"),
        ("beta", -0.1, "beta must be"),
        ("levels", 1, "levels must be an integer in \\[2, 64\\]"),
        ("update", "sgd", "unknown update"),
        ("rule", "hebb", "unknown rule"),
        ("network", "784-x-10", "unknown network string"),
        ("chips", 0, "chips must be"),
        ("lrs", (0.1,), "lrs must hold 2"),
        ("t_nudge", 0, "t_nudge must be"),
    ],
)
def test_bad_settings(field, value, message):
    config = EPConfig(**{field: value})
    with pytest.raises(MemlearnError, match=message):
        config.validate()


def test_defaults_and_quick():
    config = EPConfig().validate()
    assert config.sizes == (784, 500, 10) and config.lrs == (0.2, 0.1)
    q = quick(EPConfig()).validate()
    assert q.train_images < 60000 and q.test_images < 10000


def test_validation_is_held_out_of_the_training_set(shared_data):
    from memlearn.ep.run import load_images

    config = EPConfig(network="784-16-10", train_images=300, validation=200).validate()
    x_train, _, x_val, _ = load_images(config)
    assert len(x_train) == 300 and len(x_val) == 200
    seen = {bytes(row.numpy()) for row in (x_train * 255).byte()}
    assert not any(bytes(row.numpy()) in seen for row in (x_val * 255).byte())
    with pytest.raises(MemlearnError, match="validation"):
        EPConfig(train_images=55000, validation=10000).validate()
