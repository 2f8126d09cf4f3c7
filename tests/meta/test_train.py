"""The training loop: resume equals uninterrupted, outputs, config errors, real-data learning."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import torch

import memlearn.meta.calibration as calibration_module
import memlearn.meta.state as state_module
from memlearn.data import TaskSampler
from memlearn.meta.checkpoint import load_checkpoint
from memlearn.meta.config import TrainConfig
from memlearn.meta.evaluate import evaluate
from memlearn.meta.maml import MetaLearner
from memlearn.meta.train import cached_features, calibrate_weight_max, meta_train
from memlearn.nn import FewShotNet

TINY = {
    "widths": [4, 4, 4, 4],
    "hidden": 8,
    "pretrain_epochs": 2,
    "pretrain_batch": 128,
    "head_steps": 4,
    "head_batch": 8,
    "meta_steps": 6,
    "meta_batch": 4,
    "inner_steps": 2,
    "hardware_steps": 4,
    "device_preset": None,
    "val_every": 3,
    "val_tasks": 20,
    "checkpoint_every": 2,
    "baseline_tune_tasks": 16,
}


def _state(path) -> dict[str, torch.Tensor]:
    net, info = load_checkpoint(path)
    return {**net.state_dict(), "lrs": torch.tensor(info["inner_lrs"])}


def _records(out) -> list[dict]:
    lines = (out / "log.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "elapsed_s"} for x in lines]


def test_resume_after_stop_equals_uninterrupted(tmp_path, tiny_splits) -> None:
    train, val = tiny_splits
    cfg = TrainConfig.from_dict(TINY)
    whole = meta_train(cfg, train, val, tmp_path / "whole", progress=False)
    assert not whole["stopped"]
    # Killed three times (in pretraining, in MAML, in the hardware phase), resumed each time.
    cut = tmp_path / "cut"
    for stop in (1, 4, 5):
        part = meta_train(cfg, train, val, cut, progress=False, stop_after=stop, resume=stop != 1)
        assert part["stopped"]
    final = meta_train(cfg, train, val, cut, progress=False, resume=True)
    assert not final["stopped"]
    a, b = _state(tmp_path / "whole" / "model.pt"), _state(cut / "model.pt")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ra, rb = _records(tmp_path / "whole"), _records(cut)
    assert [r.get("event") for r in ra] == [r.get("event") for r in rb]
    assert ra[1:] == rb[1:]  # every step logged once, with the same numbers
    summary = json.loads((cut / "summary.json").read_text())
    assert summary["hardware_aware"] is True and len(summary["weight_max"]) == 2
    _, info = load_checkpoint(cut / "model.pt")
    assert info["hardware_aware"] and info["device"]["programmer"] == "levels"
    # per-step rates (the default): one FC1/FC2 pair per inner step, each moved by training
    assert torch.tensor(info["inner_lrs"]).shape == (TINY["inner_steps"], 2)
    base, binfo = load_checkpoint(cut / "baseline.pt")
    assert len(binfo["inner_lrs"]) == 2 and torch.count_nonzero(base.fc2.weight) == 0


def test_head_phase_trains_the_head_only(tmp_path, tiny_splits) -> None:
    """The head phase learns from cached features: the extractor leaves it as it came in."""
    train, val = tiny_splits
    cfg = TrainConfig.from_dict({**TINY, "pretrain_epochs": 0, "meta_steps": 0,
                                 "hardware_steps": 0, "head_steps": 5})  # fmt: skip
    events = []
    meta_train(cfg, train, val, tmp_path / "a", progress=False, on_event=events.append)
    net, _ = load_checkpoint(tmp_path / "a" / "model.pt")
    torch.manual_seed(cfg.seed)
    fresh = FewShotNet(cfg.ways, cfg.widths, cfg.hidden)
    for name, value in fresh.extractor.state_dict().items():
        assert torch.equal(net.extractor.state_dict()[name], value), name
    assert not torch.equal(net.fc1.weight, fresh.fc1.weight)
    heads = [e for e in events if e.get("event") == "head"]
    assert len(heads) == 5 and all(e["temperature"] > 0 for e in heads)


def test_cached_features_keep_the_class_layout(tiny_splits) -> None:
    train, _ = tiny_splits
    net = FewShotNet(5, TINY["widths"], TINY["hidden"])
    cached = cached_features(net, train)
    assert cached.images.shape == (train.n_classes, train.n_per_class, TINY["widths"][-1])
    with torch.no_grad():
        direct = net.eval().features(train.images[3, :2])
    torch.testing.assert_close(cached.images[3, :2], direct)


def test_resume_needs_same_config_and_state(tmp_path, tiny_splits) -> None:
    train, val = tiny_splits
    cfg = TrainConfig.from_dict(TINY)
    with pytest.raises(FileNotFoundError, match="no training state"):
        meta_train(cfg, train, val, tmp_path, progress=False, resume=True)
    meta_train(cfg, train, val, tmp_path, progress=False, stop_after=1)
    other = TrainConfig.from_dict({**TINY, "seed": 1})
    with pytest.raises(ValueError, match=r"config differs .*\(options: seed\)"):
        meta_train(other, train, val, tmp_path, progress=False, resume=True)
    # A state saved before an option existed resumes: the option takes its default.
    state = torch.load(tmp_path / "state.pt", weights_only=True)
    del state["config"]["calibration_tasks"]
    torch.save(state, tmp_path / "state.pt")
    assert not meta_train(cfg, train, val, tmp_path, progress=False, resume=True)["stopped"]
    state["config"]["calibration_tasks"] = "within-alphabet"
    torch.save(state, tmp_path / "state.pt")
    with pytest.raises(ValueError, match="calibration_tasks"):
        meta_train(cfg, train, val, tmp_path, progress=False, resume=True)


def test_hardware_phase_gets_scaled_rates() -> None:
    """The hardware phase fine-tunes with its own Adam at hardware_lr_scale x phase 3's rates."""
    from memlearn.meta.maml import MetaLearner
    from memlearn.meta.state import meta_optimizer

    cfg = TrainConfig.from_dict({**TINY, "hardware_lr_scale": 0.25})
    learner = MetaLearner(FewShotNet(5, TINY["widths"], TINY["hidden"]), (0.1, 0.1), True, True)
    maml = [g["lr"] for g in meta_optimizer(learner, cfg, True).param_groups]
    hardware = [g["lr"] for g in meta_optimizer(learner, cfg, True, "hardware").param_groups]
    assert maml == [cfg.extractor_lr, cfg.outer_lr, cfg.lr_lr]
    assert hardware == pytest.approx([0.25 * lr for lr in maml])


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"ways": 1}, "ways"),
        ({"meta_batch": 0}, "meta_batch"),
        ({"inner_lr_init": [0.1]}, "inner_lr_init"),
        ({"strategy": "laser"}, "strategy"),
        ({"pretrain_head": "fc3"}, "pretrain_head"),
        ({"pretrain_classifier": "svm"}, "pretrain_classifier"),
        ({"normalize": "l1"}, "normalize"),
        ({"pooling": "avg"}, "pooling"),
        ({"head_batch": 0}, "head_batch"),
        ({"head_steps": -1}, "head_steps"),
        ({"hardware_lr_scale": 0.0}, "hardware_lr_scale"),
        ({"intermediate_loss": -0.1}, "intermediate_loss"),
        ({"calibration_tasks": "rotated"}, "calibration_tasks"),
        ({"update_rule": "round"}, "update_rule"),
        ({"bogus": 1}, "unknown config keys"),
    ],
)
def test_bad_config(change: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        TrainConfig.from_dict({**TINY, **change})


def test_config_takes_the_strategies_of_the_device_layer_and_the_loops_policy_names() -> None:
    from memlearn.devices.programming import STRATEGIES
    from memlearn.meta.config import current_names

    for strategy in STRATEGIES:
        assert TrainConfig.from_dict({**TINY, "strategy": strategy}).strategy == strategy
    # a config saved when the verify rule was called "nearest" still loads, renamed
    assert TrainConfig.from_dict({**TINY, "update_rule": "nearest"}).update_rule == "verify"
    assert current_names({"update_rule": "nearest", "seed": 3}) == {
        "update_rule": "verify",
        "seed": 3,
    }


def test_config_file_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError):
        TrainConfig.from_file(tmp_path / "none.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        TrainConfig.from_file(bad)
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"meta_steps": 7}))
    assert TrainConfig.from_file(good).meta_steps == 7


@pytest.mark.data
def test_tiny_run_beats_chance_on_held_out_alphabets(tmp_path, shared_data) -> None:
    """A few seconds of training on real Omniglot already separates held-out alphabets."""
    from memlearn.data import ClassImages, load_split

    full = load_split("train", shared_data)
    keep = torch.arange(0, full.n_classes, 8)  # every 8th class: 395 classes, all rotations
    train = ClassImages(
        full.images[keep], full.alphabet[keep], full.alphabet_names,
        [full.class_names[i] for i in keep], "train", full.rotation[keep],
    )  # fmt: skip
    val = load_split("val", shared_data)
    # The linear classifier: the cosine one (the default) needs a few epochs to get going, and
    # this run has three.  The head phase is cheap (cached features): 200 steps.
    cfg = TrainConfig.from_dict(
        {**TINY, "widths": [16, 16, 16, 16], "hidden": 16, "pretrain_epochs": 3,
         "pretrain_classifier": "linear", "head_steps": 200, "meta_steps": 20, "meta_batch": 8,
         "inner_steps": 5, "hardware_steps": 0, "val_every": 20, "val_tasks": 50}
    )  # fmt: skip
    meta_train(cfg, train, val, tmp_path, progress=False)
    net, info = load_checkpoint(tmp_path / "model.pt")
    res = evaluate(net, info["inner_lrs"], val, ways=5, shots=1, steps=5, tasks=200, seed=3)
    assert res["split"] == "val" and len(res["accuracy_by_step"]) == 6
    assert res["accuracy_by_step"][0] == pytest.approx(0.2, abs=0.03)  # zero FC2: chance
    assert res["accuracy_by_step"][-1] > 0.5  # chance is 0.2
    assert res["accuracy_by_step"][-1] > res["accuracy_by_step"][1]  # the later steps help


@pytest.mark.parametrize("kind", ["within-alphabet", "random"])
def test_calibration_tasks_kind(monkeypatch, tiny_splits, kind: str) -> None:
    """The full-scale search scores the kind of training task the config names: within one
    alphabet and unrotated, or any classes of the split, rotations included."""
    base = tiny_splits[0]
    rotated = replace(
        base,
        images=torch.cat([base.images, torch.rot90(base.images, 1, dims=(-2, -1))]),
        alphabet=base.alphabet.repeat(2),
        class_names=base.class_names + [f"{n}@rot90" for n in base.class_names],
        rotation=torch.tensor([0, 90]).repeat_interleave(base.n_classes),
    )
    drawn: list[tuple[torch.Tensor, torch.Tensor]] = []

    class Spy(TaskSampler):
        def sample(self, n_tasks: int):
            batch = super().sample(n_tasks)
            drawn.append(
                (self.classes.alphabet[batch.classes], self.classes.rotation[batch.classes])
            )
            return batch

    monkeypatch.setattr(calibration_module, "TaskSampler", Spy)
    cfg = TrainConfig.from_dict({**TINY, "calibration_tasks": kind})
    learner = MetaLearner(FewShotNet(widths=(4, 4, 4, 4)), (0.4, 0.4))
    scales = calibrate_weight_max(learner, rotated, cfg, torch.device("cpu"), tasks=64)
    assert len(scales) == 2 and min(scales) > 0
    ((alphabets, rotations),) = drawn
    one_alphabet = (alphabets == alphabets[:, :1]).all(dim=1)
    if kind == "within-alphabet":
        assert bool(one_alphabet.all()) and int(rotations.max()) == 0
    else:  # 4 alphabets x 2 rotations: some tasks mix them
        assert not bool(one_alphabet.all()) and int(rotations.max()) == 90


def test_support_copies_reach_the_inner_loop(monkeypatch, tmp_path, tiny_splits) -> None:
    """With ``support_copies`` the MAML and hardware episodes, validation and the full-scale
    search adapt on the shots and their distorted copies; the head phase (cached features) and
    the query sets keep their sizes."""
    train, val = tiny_splits
    seen: dict[str, list[tuple[int, int]]] = {"episode": [], "head": [], "val": [], "calib": []}
    episode, head_episode = MetaLearner.episode, MetaLearner.head_episode
    evaluate_classes, adapt = state_module.evaluate_classes, calibration_module.adapt

    def spy_episode(self, support_x, support_y, query_x, *args, **kwargs):
        seen["episode"].append((support_x.shape[1], query_x.shape[1]))
        return episode(self, support_x, support_y, query_x, *args, **kwargs)

    def spy_head(self, support_f, support_y, query_f, *args, **kwargs):
        seen["head"].append((support_f.shape[1], query_f.shape[1]))
        return head_episode(self, support_f, support_y, query_f, *args, **kwargs)

    def spy_val(net, lrs, tasks, *args, **kwargs):
        seen["val"].append((tasks.support_x.shape[1], tasks.query_x.shape[1]))
        return evaluate_classes(net, lrs, tasks, *args, **kwargs)

    def spy_adapt(support_f, *args, **kwargs):
        seen["calib"].append((support_f.shape[1], 0))
        return adapt(support_f, *args, **kwargs)

    monkeypatch.setattr(MetaLearner, "episode", spy_episode)
    monkeypatch.setattr(MetaLearner, "head_episode", spy_head)
    monkeypatch.setattr(state_module, "evaluate_classes", spy_val)
    monkeypatch.setattr(calibration_module, "adapt", spy_adapt)
    cfg = TrainConfig.from_dict({**TINY, "support_copies": 2})
    meta_train(cfg, train, val, tmp_path / "run", progress=False)
    ways, queries = cfg.ways * cfg.shots, cfg.ways * cfg.queries
    assert set(seen["episode"]) == {(3 * ways, queries)}
    assert len(seen["episode"]) == cfg.meta_steps + cfg.hardware_steps
    # the head phase's own episodes (episode() also runs head_episode on its features)
    assert seen["head"].count((ways, queries)) == cfg.head_steps
    assert seen["val"] and {s for s, _ in seen["val"]} == {3 * ways}
    assert seen["calib"] and {s for s, _ in seen["calib"]} == {3 * ways}
    with pytest.raises(ValueError, match="support_copies must be >= 0"):
        TrainConfig.from_dict({**TINY, "support_copies": -1})
