"""Checkpoints: round trip, atomic companions, clear errors."""

from __future__ import annotations

import json

import pytest
import torch

from memlearn.errors import CorruptDataError, MemlearnError
from memlearn.meta.checkpoint import load_checkpoint, save_checkpoint
from memlearn.nn import FewShotNet


def _net() -> FewShotNet:
    torch.manual_seed(0)
    net = FewShotNet(widths=(8, 8, 8, 8))
    net.train()
    net(torch.rand(4, 1, 28, 28))  # non-default BN statistics
    return net.eval()


def test_round_trip(tmp_path) -> None:
    net = _net()
    path = save_checkpoint(
        tmp_path / "m.pt", net, torch.tensor([0.2, 0.5]), weight_max=[0.3, 0.4],
        hardware_aware=True, device={"preset": "hfo2-mlc"}, metrics={"val": 0.9},
        command="memlearn meta-train",
    )  # fmt: skip
    again, info = load_checkpoint(path)
    assert not again.training
    for (k, a), (_, b) in zip(net.state_dict().items(), again.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    x = torch.rand(3, 1, 28, 28)
    torch.testing.assert_close(again(x), net(x))
    assert info["inner_lrs"] == pytest.approx([0.2, 0.5])
    assert info["weight_max"] == pytest.approx([0.3, 0.4])
    assert info["hardware_aware"] is True and info["device"] == {"preset": "hfo2-mlc"}
    assert info["command"] == "memlearn meta-train" and info["config"] == net.config
    meta = json.loads((tmp_path / "m.json").read_text())
    assert meta["inner_lrs"] == info["inner_lrs"] and "state_dict" not in meta
    assert not list(tmp_path.glob("*.tmp"))


def test_errors(tmp_path) -> None:
    with pytest.raises(MemlearnError, match="does not exist"):
        load_checkpoint(tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(CorruptDataError, match="cannot be read"):
        load_checkpoint(bad)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(2)}, other)
    with pytest.raises(CorruptDataError, match="not a memlearn"):
        load_checkpoint(other)
    path = save_checkpoint(tmp_path / "m.pt", _net(), [0.1, 0.1])
    blob = torch.load(path, weights_only=True)
    blob["config"]["hidden"] = 7
    torch.save(blob, path)
    with pytest.raises(CorruptDataError, match="do not fit"):
        load_checkpoint(path)
    with pytest.raises(ValueError, match="inner_lrs"):
        save_checkpoint(tmp_path / "x.pt", _net(), [0.1])


def test_per_step_rates_round_trip_and_are_validated(tmp_path) -> None:
    schedule = [[0.1, 2.0], [0.2, 1.0], [0.3, 0.5]]
    path = save_checkpoint(tmp_path / "m.pt", _net(), torch.tensor(schedule))
    _, info = load_checkpoint(path)
    assert info["inner_lrs"] == [pytest.approx(row) for row in schedule]
    assert json.loads((tmp_path / "m.json").read_text())["inner_lrs"] == info["inner_lrs"]
    with pytest.raises(ValueError, match="row of inner_lrs must hold 2"):
        save_checkpoint(tmp_path / "x.pt", _net(), [[0.1, 0.2], [0.3]])
    blob = torch.load(path, weights_only=True)
    blob["inner_lrs"] = [[0.1, -2.0]]
    torch.save(blob, path)
    with pytest.raises(CorruptDataError, match="finite rates > 0"):
        load_checkpoint(path)


class _Foreign:
    """A class a checkpoint must not make memlearn unpickle."""


def test_unreadable_files_give_one_clear_reason(tmp_path) -> None:
    empty = tmp_path / "empty.pt"
    empty.write_bytes(b"")
    with pytest.raises(CorruptDataError, match="empty file"):
        load_checkpoint(empty)
    foreign = tmp_path / "foreign.pt"
    torch.save({"format": "memlearn-fewshot", "thing": _Foreign()}, foreign)
    with pytest.raises(CorruptDataError, match="_Foreign.*refuses to load") as info:
        load_checkpoint(foreign)
    # torch's advice to load with weights_only=False would run the file's code: not relayed
    assert "weights_only" not in str(info.value) and info.value.__cause__ is None
    truncated = tmp_path / "truncated.pt"
    save_checkpoint(truncated, _net(), [0.1, 0.1])
    truncated.write_bytes(truncated.read_bytes()[:100])
    with pytest.raises(CorruptDataError, match="truncated or not a torch file"):
        load_checkpoint(truncated)
