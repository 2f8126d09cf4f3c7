"""The curve phase (per-step rates re-learned for a rising learning curve) and the curve check."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from memlearn.cli.main import app
from memlearn.meta.checkpoint import load_checkpoint, save_checkpoint
from memlearn.meta.config import DEFAULT_CURVE_STEPS, TrainConfig
from memlearn.meta.evaluate import curve_dips
from memlearn.meta.inner import HeadTasks
from memlearn.meta.maml import evaluate_features
from memlearn.meta.train import meta_train
from memlearn.nn import FewShotNet
from memlearn.stats import ci95

TINY = {
    "widths": [4, 4, 4, 4],
    "hidden": 8,
    "pretrain_epochs": 1,
    "pretrain_batch": 128,
    "head_steps": 2,
    "head_batch": 8,
    "meta_steps": 2,
    "meta_batch": 4,
    "inner_steps": 3,
    "hardware_steps": 0,
    "device_preset": None,
    "val_every": 2,
    "val_tasks": 20,
    "checkpoint_every": 2,
    "baseline_tune_tasks": 8,
}


def test_curve_dips_names_each_update_that_undoes_the_one_before() -> None:
    # the shipped model's first schedule on 1,000 val tasks (README): update 3 undoes update 2
    before = [0.2002, 0.9500, 0.9673, 0.9371, 0.9624, 0.9708]
    assert curve_dips(before, 0.0028) == [3]
    assert curve_dips([0.2, 0.95, 0.966, 0.964, 0.971, 0.972], 0.003) == []  # within its CI
    assert curve_dips([0.2, 0.95, 0.94], [0.0, 0.003, 0.02]) == []  # each update's own CI
    assert curve_dips([0.2, 0.95, 0.94], [0.0, 0.003, 0.005]) == [2]
    with pytest.raises(ValueError, match="one per update"):
        curve_dips([0.2, 0.9], [0.01])
    with pytest.raises(ValueError, match=">= 0"):
        curve_dips([0.2, 0.9], -0.01)


def test_a_planted_dipping_schedule_fails_the_curve_check() -> None:
    """On separable features, a rate schedule whose third update overshoots makes the measured
    curve dip there; the same head with a steady schedule rises at every update."""
    g = torch.Generator().manual_seed(0)
    t, c, f, h = 200, 5, 32, 16
    means = torch.randn(t, c, f, generator=g)
    support_y = torch.arange(c).expand(t, c)
    query_y = torch.arange(c).repeat(5).expand(t, -1)
    tasks = HeadTasks(
        means + 0.5 * torch.randn(t, c, f, generator=g),
        support_y,
        means[:, query_y[0]] + 0.5 * torch.randn(t, 5 * c, f, generator=g),
        query_y,
    )
    fc1, fc2 = 0.3 * torch.randn(h, f, generator=g), torch.zeros(c, h)
    dips = {}
    for name, third in (("steady", 0.5), ("planted", 20.0)):
        rates = torch.tensor([[0.5, 0.5], [0.5, 0.5], [third, third], [0.5, 0.5], [0.5, 0.5]])
        per_task = evaluate_features(tasks, fc1, fc2, rates, 5)
        dips[name] = curve_dips(per_task.mean(1).tolist(), [ci95(a) for a in per_task])
    assert dips == {"steady": [], "planted": [3]}


def _rates(path) -> torch.Tensor:
    return torch.tensor(load_checkpoint(path)[1]["inner_lrs"])


def test_curve_phase_moves_the_rates_only_and_resumes_exactly(tmp_path, tiny_splits) -> None:
    train, val = tiny_splits
    plain = meta_train(TrainConfig.from_dict(TINY), train, val, tmp_path / "p", progress=False)
    assert not plain["stopped"]
    cfg = TrainConfig.from_dict({**TINY, "curve_steps": 4})
    events: list[dict] = []
    meta_train(cfg, train, val, tmp_path / "a", progress=False, on_event=events.append)
    net_p, _ = load_checkpoint(tmp_path / "p" / "model.pt")
    net_a, _ = load_checkpoint(tmp_path / "a" / "model.pt")
    for name, value in net_p.state_dict().items():  # the phases before are those of the plain run
        assert torch.equal(net_a.state_dict()[name], value), name
    assert not torch.equal(_rates(tmp_path / "p" / "model.pt"), _rates(tmp_path / "a" / "model.pt"))
    curve = [e for e in events if e["event"] == "curve"]
    assert [e["step"] for e in curve] == [1, 2, 3, 4]
    assert len(curve[-1]["val_accuracy_by_step"]) == TINY["inner_steps"] + 1
    # killed in the curve phase and resumed: the same model
    cut = tmp_path / "cut"
    assert meta_train(cfg, train, val, cut, progress=False, stop_after=6)["stopped"]
    assert json.loads((cut / "log.jsonl").read_text().splitlines()[-1])["event"] == "curve"
    meta_train(cfg, train, val, cut, progress=False, resume=True)
    assert torch.equal(_rates(tmp_path / "a" / "model.pt"), _rates(cut / "model.pt"))


def test_curve_from_a_checkpoint_starts_from_its_rates(tmp_path, tiny_splits) -> None:
    train, val = tiny_splits
    torch.manual_seed(1)
    net = FewShotNet(5, [4, 4, 4, 4], 8)
    start = [[0.3, 0.2], [0.1, 0.4], [0.2, 0.2]]
    ckpt = save_checkpoint(tmp_path / "in.pt", net, start, command="memlearn meta-train X")
    cfg = TrainConfig.from_dict(
        {**TINY, "init_from": str(ckpt), "init_phase": "curve", "curve_steps": 2}
    )
    events: list[dict] = []
    meta_train(cfg, train, val, tmp_path / "o", progress=False, on_event=events.append)
    assert [e["event"] for e in events if "step" in e] == ["curve", "curve"]
    first = torch.tensor(next(e for e in events if e["event"] == "curve")["inner_lrs"])
    assert torch.allclose(first, torch.tensor(start), rtol=0.05)  # one Adam step away
    out, info = load_checkpoint(tmp_path / "o" / "model.pt")
    for name, value in net.state_dict().items():
        assert torch.equal(out.state_dict()[name], value), name
    assert info["training"]["init_from"]["command"] == "memlearn meta-train X"
    bad = {**TINY, "init_from": str(ckpt), "init_phase": "curve", "inner_steps": 2}
    with pytest.raises(ValueError, match="do not fit"):
        meta_train(TrainConfig.from_dict(bad), train, val, tmp_path / "b", progress=False)


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"curve_steps": -1}, "curve_steps"),
        ({"curve_loss": -0.1}, "curve_loss"),
        ({"init_phase": "maml", "init_from": "x.pt"}, "init_phase"),
        ({"init_phase": "curve"}, "needs init_from"),
        ({"curve_steps": 5, "learn_inner_lrs": False}, "learn_inner_lrs"),
    ],
)
def test_bad_curve_config(change: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict({**TINY, **change})


def test_meta_train_curve_from_takes_the_checkpoints_config(monkeypatch, tmp_path) -> None:
    import memlearn.data
    import memlearn.meta.train

    torch.manual_seed(0)
    net = FewShotNet(5, [4, 4, 4, 4], 8)
    trained = {**TrainConfig().to_dict(), **TINY, "seed": 7}
    ckpt = save_checkpoint(tmp_path / "m.pt", net, [[0.3, 0.2]] * 3, training={"config": trained})
    runs = []
    monkeypatch.setattr(memlearn.data, "load_split", lambda name, root=None: name)
    monkeypatch.setattr(
        memlearn.meta.train, "meta_train", lambda cfg, *a, **kw: runs.append(cfg) or {}
    )
    runner = CliRunner()
    res = runner.invoke(
        app, ["meta-train", "--curve-from", str(ckpt), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 0, res.output
    (cfg,) = runs
    assert (cfg.seed, cfg.inner_steps, cfg.init_phase, cfg.curve_steps) == (
        7,
        3,
        "curve",
        DEFAULT_CURVE_STEPS,
    )
    assert cfg.init_from == str(ckpt) and cfg.widths == [4, 4, 4, 4]
    res = runner.invoke(
        app, ["meta-train", "--curve-from", str(ckpt), "--config", str(ckpt), "--out", "o"]
    )
    assert res.exit_code == 2 and "omit --config" in res.stderr
    res = runner.invoke(app, ["meta-train", "--curve-from", str(tmp_path / "none.pt")])
    assert res.exit_code == 2 and "does not exist" in res.stderr


def test_curve_phase_on_the_device_learns_for_the_levels(tmp_path, tiny_splits) -> None:
    """``curve_device``: the phase's inner loop programs the levels (other rates than in
    software from the same start), validates on them, and logs the updates that dip."""
    train, val = tiny_splits
    rates, records, scales = {}, {}, {}
    for name, on_device in (("software", False), ("device", True)):
        cfg = TrainConfig.from_dict({**TINY, "curve_steps": 4, "curve_device": on_device})
        events: list[dict] = []
        meta_train(cfg, train, val, tmp_path / name, progress=False, on_event=events.append)
        rates[name] = _rates(tmp_path / name / "model.pt")
        records[name] = [e for e in events if e["event"] == "curve"][-1]
        scales[name] = [e["weight_max"] for e in events if e["event"] == "calibrate"]
        assert load_checkpoint(tmp_path / name / "model.pt")[1]["weight_max"] == scales[name][-1]
    assert not torch.allclose(rates["software"], rates["device"])
    # after MAML, and after the curve phase only in software: the device's rates keep their scale
    assert (len(scales["software"]), len(scales["device"])) == (2, 1)
    assert "val_dips_hardware" not in records["software"]
    for key in ("", "_hardware"):
        curve = records["device"][f"val_accuracy{key}_by_step"]
        dips = records["device"][f"val_dips{key}"]
        assert len(curve) == TINY["inner_steps"] + 1
        assert all(1 <= k <= TINY["inner_steps"] and curve[k] < curve[k - 1] for k in dips)
    # the curve check is the one of memlearn.meta.evaluate, with each update's CI
    curve = records["software"]["val_accuracy_by_step"]
    assert set(records["software"]["val_dips"]) <= set(curve_dips(curve, 0.0))


def test_curve_phase_on_the_device_needs_full_scale_weights(tmp_path, tiny_splits) -> None:
    train, val = tiny_splits
    torch.manual_seed(1)
    ckpt = save_checkpoint(tmp_path / "in.pt", FewShotNet(5, [4, 4, 4, 4], 8), [[0.3, 0.2]] * 3)
    cfg = {**TINY, "init_from": str(ckpt), "init_phase": "curve", "curve_steps": 2}
    with pytest.raises(ValueError, match="full-scale"):
        meta_train(
            TrainConfig.from_dict({**cfg, "curve_device": True}), train, val, tmp_path / "o",
            progress=False,
        )  # fmt: skip
