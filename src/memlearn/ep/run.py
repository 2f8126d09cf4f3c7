"""A training run: MNIST subsets, epochs, checkpoints, resume, and the summary of the run."""

from __future__ import annotations

import json
import pickle
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from memlearn.data.mnist import load_mnist
from memlearn.ep.array import ArrayNetwork
from memlearn.ep.config import EPConfig
from memlearn.ep.dynamics import FloatProducts, init_thetas
from memlearn.ep.step import predict, train_step
from memlearn.errors import MemlearnError
from memlearn.io import atomic_write
from memlearn.stats import ci95

CHECKPOINT = "checkpoint.pkl"
METRICS = "metrics.json"
EVAL_BATCH = 500  # [E] test images per evaluation batch (memory, not results)


def load_images(
    config: EPConfig, root: str | Path | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(x_train, y_train, x_eval, y_eval)``: ``train_images`` training images (a seeded random
    subset when fewer than 60,000) and the evaluation set, pixels scaled to ``[0, 1]`` and
    flattened.  The evaluation set is the first ``test_images`` test images, or, when
    ``config.validation > 0``, that many training images held out of the seeded permutation
    (never trained on; the test set is then not read)."""
    train = load_mnist("train", root)
    if config.sizes[0] != 784 or config.sizes[-1] != 10:
        raise MemlearnError(f"MNIST needs 784 inputs and 10 outputs, network is {config.network}")
    pick = torch.randperm(60000, generator=torch.Generator().manual_seed(config.seed))
    held, pick = pick[: config.validation].sort().values, pick[config.validation :]
    pick = pick[: config.train_images].sort().values
    x_train = train.images[pick].reshape(len(pick), -1).float() / 255.0
    if config.validation:
        x_eval = train.images[held].reshape(len(held), -1).float() / 255.0
        return x_train, train.labels[pick], x_eval, train.labels[held]
    test = load_mnist("test", root)
    x_test = test.images[: config.test_images].reshape(-1, 784).float() / 255.0
    return x_train, train.labels[pick], x_test, test.labels[: config.test_images]


@dataclass
class RunState:
    """What a checkpoint holds: the network, the epoch reached and the history."""

    config: dict
    net: Any
    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    category_energy: dict[str, torch.Tensor] = field(default_factory=dict)
    images_seen: int = 0
    wall_s: float = 0.0
    generator_state: torch.Tensor | None = None


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """``payload`` as indented JSON, written atomically."""
    with atomic_write(path) as handle:
        json.dump(payload, handle, indent=2)
        handle.write("\n")


def build(config: EPConfig, generator: torch.Generator) -> Any:
    """Float products or an :class:`ArrayNetwork` from the seeded initial weights."""
    thetas = init_thetas(config.sizes, config.chips, generator)
    if config.substrate == "float":
        return FloatProducts(thetas)
    return ArrayNetwork(config, thetas, generator)


def _generators(net: Any) -> list[Any]:
    return list(getattr(net, "arrays", [])) + ([net] if isinstance(net, ArrayNetwork) else [])


def save_state(path: Path, state: RunState, generator: torch.Generator) -> None:
    """Pickle ``state`` atomically (generators are saved as their state)."""
    holders = _generators(state.net)
    for h in holders:
        h.generator = None
    state.generator_state = generator.get_state()
    try:
        with atomic_write(path, "wb") as handle:
            pickle.dump(state, handle)
    finally:
        for h in holders:
            h.generator = generator


def load_state(path: Path, config: EPConfig, generator: torch.Generator) -> RunState:
    """The checkpoint at ``path``; its config must equal ``config`` (apart from ``epochs``)."""
    with open(path, "rb") as handle:
        state: RunState = pickle.load(handle)  # noqa: S301 - our own checkpoint
    mine = {k: v for k, v in config.as_dict().items() if k != "epochs"}
    theirs = {k: v for k, v in state.config.items() if k != "epochs"}
    if mine != theirs:
        diff = sorted(k for k in mine if mine.get(k) != theirs.get(k))
        raise MemlearnError(f"{path} was written with a different configuration ({diff})")
    generator.set_state(state.generator_state)
    for h in _generators(state.net):
        h.generator = generator
    return state


def evaluate(net: Any, config: EPConfig, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Accuracy per chip on ``(x, y)``, ``[n]`` (array reads charged to the ``test`` phase)."""
    if hasattr(net, "phase"):
        net.phase = "test"
    correct = 0
    for start in range(0, len(x), EVAL_BATCH):
        pred = predict(net, config, x[start : start + EVAL_BATCH])
        correct = correct + (pred == y[start : start + EVAL_BATCH]).sum(-1)
    return correct.double() / len(x)


def train_epoch(
    state: RunState,
    config: EPConfig,
    x: torch.Tensor,
    y: torch.Tensor,
    generator: torch.Generator,
    tick: Callable[[int], None] | None = None,
) -> torch.Tensor:
    """One epoch of seeded shuffled mini-batches; returns the running train accuracy per chip.
    Training energy (ledger deltas per category) is accumulated into ``state``."""
    net = state.net
    order = torch.randperm(len(x), generator=generator)
    correct = 0
    ledger = getattr(net, "ledger", None)
    for start in range(0, len(x), config.batch):
        pick = order[start : start + config.batch]
        before = ledger.energy_by_category() if ledger is not None else None
        correct = correct + train_step(net, config, x[pick], y[pick])
        if ledger is not None:
            for cat, value in ledger.energy_by_category().items():
                state.category_energy[cat] = state.category_energy.get(cat, 0.0) + (
                    value - before[cat]
                )
        state.images_seen += len(pick)
        if tick is not None:
            tick(len(pick))
    return correct.double() / len(x)


def summarise(state: RunState, config: EPConfig) -> dict[str, Any]:
    """The run's figures (see the README's EP section for each field)."""
    last = state.history[-1] if state.history else {}
    test = torch.tensor(last.get("test_accuracy", [float("nan")]), dtype=torch.float64)
    train = torch.tensor(last.get("train_accuracy", [float("nan")]), dtype=torch.float64)
    out: dict[str, Any] = {
        "rule": config.rule,
        "substrate": config.substrate,
        "update": config.update if config.substrate == "array" else None,
        "epochs": state.epoch,
        "evaluated_on": "validation" if config.validation else "test",
        "test_accuracy": {
            "per_chip": test.tolist(),
            "mean": float(test.mean()),
            "ci95": ci95(test),
        },  # fmt: skip
        "train_accuracy": {"per_chip": train.tolist(), "mean": float(train.mean())},
        "history": state.history,
        "wall_s": state.wall_s,
    }
    net = state.net
    if isinstance(net, ArrayNetwork):
        writes = net.training_writes().double()
        images = max(state.images_seen, 1)
        per_image = {c: float(v.mean()) / images for c, v in state.category_energy.items()}
        phases = {p: float(v.mean()) / images for p, v in net.phase_energy.items() if p != "test"}
        out["writes_per_cell"] = {
            "mean": float(writes.mean()),
            "max": float(writes.max()),
            "mean_per_epoch": float(writes.mean()) / max(state.epoch, 1),
        }
        out["pulses"] = {
            "per_chip": net.pulses.tolist(),
            "mean": float(net.pulses.mean()),
            "per_image": float(net.pulses.mean()) / images,
        }
        out["energy_per_image_j"] = {
            "total": sum(per_image.values()),
            "by_phase": phases,
            "by_category": per_image,
            "converters": per_image.get("dac", 0.0) + per_image.get("adc", 0.0),
        }
        out["off_array_bits_per_weight"] = net.off_array_bits()
    return out


def train(
    config: EPConfig,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = False,
    root: str | Path | None = None,
) -> dict[str, Any]:
    """Train for ``config.epochs`` epochs (continuing a checkpoint in ``out_dir`` when
    ``resume``), checkpointing after every epoch; returns :func:`summarise`'s figures."""
    from tqdm import tqdm

    config.validate()
    out = Path(out_dir) if out_dir is not None else None
    if resume and out is None:
        raise MemlearnError("--resume needs --out (the directory holding the checkpoint)")
    x_train, y_train, x_test, y_test = load_images(config, root)
    generator = torch.Generator().manual_seed(config.seed)
    path = out / CHECKPOINT if out is not None else None
    if resume and path is not None and path.exists():
        state = load_state(path, config, generator)
    else:
        state = RunState(config=config.as_dict(), net=build(config, generator))
    remaining = config.epochs - state.epoch
    bar = tqdm(total=max(remaining, 0) * len(x_train), disable=not progress, unit="img")
    while state.epoch < config.epochs:
        started = time.perf_counter()
        bar.set_description(f"{config.rule}/{config.substrate} epoch {state.epoch + 1}")
        train_acc = train_epoch(state, config, x_train, y_train, generator, bar.update)
        test_acc = evaluate(state.net, config, x_test, y_test)
        state.epoch += 1
        state.wall_s += time.perf_counter() - started
        state.history.append(
            {
                "epoch": state.epoch,
                "train_accuracy": train_acc.tolist(),
                "test_accuracy": test_acc.tolist(),
                "test_accuracy_mean": float(test_acc.mean()),
                "wall_s": state.wall_s,
            }
        )
        bar.set_postfix(test=f"{float(test_acc.mean()):.4f}")
        if path is not None:
            out.mkdir(parents=True, exist_ok=True)
            save_state(path, state, generator)
            write_json(out / METRICS, summarise(state, config))
    bar.close()
    return summarise(state, config)
