"""Offline training of the SPIRIT layer (quantised and float) and its shipped checkpoint.

``train_layer`` trains on the 60,000 MNIST training images (down-scaled, ``model.downscale``)
with Adam and a cross-entropy on ``LOGIT_SCALE * tanh`` outputs (the tanh neurons saturate at
±1, the scale lets the softmax separate them); seeded, one pass over a fixed permutation per
epoch.  ``save_checkpoint`` writes the integer weights (int8) and the float reference (float16)
with the metrics JSON beside them.  ``train_run`` does it in a run folder (``rundir``), resumable
after every epoch; the shipped ``CHECKPOINT`` is that folder's ``spirit-snn.pt`` and ``.json``
copied into the package (the command is in the JSON, ``SHIPPED_COMMAND``).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from memlearn.errors import MemlearnError
from memlearn.io import atomic_write
from memlearn.snn import rundir
from memlearn.snn.model import SpiritLayer, accuracy, check_weights, downscale

CHECKPOINT = Path(__file__).parents[1] / "models" / rundir.MODEL_FILE
SHIPPED_COMMAND = "memlearn snn train --out runs/spirit-snn"
LOGIT_SCALE = 5.0  # [E] softmax temperature on the tanh outputs


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 8
    batch: int = 128
    lr: float = 0.02
    seed: int = 0

    def check(self) -> TrainConfig:
        for name in ("epochs", "batch"):
            if getattr(self, name) < 1:
                raise MemlearnError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not self.lr > 0:
            raise MemlearnError(f"lr must be > 0, got {self.lr}")
        return self


def fit(
    model: torch.nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: TrainConfig,
    progress=None,
    *,
    state: dict | None = None,
    on_epoch=None,
) -> torch.nn.Module:
    """Train ``model`` in place on intensities ``x [N, 144]`` and labels ``y [N]``.

    ``state`` (from an ``on_epoch`` call) continues a run after its last finished epoch,
    bit for bit; ``on_epoch(state)`` is called after every epoch with the model, optimiser,
    schedule and shuffling-generator states and the finished epoch count."""
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    first = 0
    if state is not None:
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        gen.set_state(state["gen"])
        first = int(state["epoch"])
    for epoch in range(first, cfg.epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), cfg.batch):
            idx = order[start : start + cfg.batch]
            loss = torch.nn.functional.cross_entropy(LOGIT_SCALE * model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        if on_epoch is not None:
            on_epoch({
                "epoch": epoch + 1, "model": model.state_dict(), "opt": opt.state_dict(),
                "sched": sched.state_dict(), "gen": gen.get_state(),
            })  # fmt: skip
        if progress is not None:
            progress()
    return model


PHASES = ("quantised", "float")


def train_layer(train, test, cfg: TrainConfig, progress=None, *, state=None, save=None) -> dict:
    """Train the quantised and the float layer; returns weights and test metrics.

    ``save(state)`` receives the whole training state after every epoch (``rundir``);
    ``state`` resumes from such a state (same config), giving the same result bit for bit."""
    cfg.check()
    x, y = downscale(train.images), train.labels
    xt, yt = downscale(test.images), test.labels
    out: dict = {"config": asdict(cfg)}
    done: dict = dict(state["done"]) if state is not None else {}
    for phase in PHASES:
        if phase in done:
            out.update(done[phase])
            continue
        quantised = phase == "quantised"
        torch.manual_seed(cfg.seed)
        model = SpiritLayer(quantised, torch.Generator().manual_seed(cfg.seed))
        resume = state if state is not None and state["phase"] == phase else None

        def on_epoch(fit_state: dict, phase: str = phase) -> None:
            if save is not None:
                save({"config": asdict(cfg), "phase": phase, "done": done, **fit_state})

        fit(model, x, y, cfg, progress, state=resume, on_epoch=on_epoch)
        with torch.no_grad():
            pred = model(xt).argmax(dim=1)
            train_pred = model(x).argmax(dim=1)
        result = {
            f"{phase}_test_accuracy": accuracy(pred, yt),
            f"{phase}_train_accuracy": accuracy(train_pred, y),
        }
        if quantised:
            result["weights"] = model.integer_weights()
        else:
            result["float_weights"] = model.weight.detach().clone()
        done[phase] = result
        out.update(result)
    return out


def epochs_done(state: dict | None, cfg: TrainConfig) -> int:
    """Epochs of both phases a saved ``state`` has finished (0 for none)."""
    if state is None:
        return 0
    return cfg.epochs * len(state["done"]) + (
        0 if state["phase"] in state["done"] else int(state["epoch"])
    )


def save_checkpoint(result: dict, path: Path, command: str) -> Path:
    """Write the checkpoint ``path`` (.pt) and its metrics ``path.with_suffix('.json')``."""
    w = check_weights(result["weights"])
    state = {"weights": w.to(torch.int8), "float_weights": result["float_weights"].half()}
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as handle:
        torch.save(state, handle)
    metrics = {k: v for k, v in result.items() if k not in ("weights", "float_weights")}
    metrics["command"] = command
    hist = torch.bincount(w.view(-1) + 4, minlength=9).tolist()
    metrics["weight_histogram_-4_to_4"] = hist
    with atomic_write(path.with_suffix(".json")) as handle:
        json.dump(metrics, handle, indent=2)
        handle.write("\n")
    return path


def train_run(
    train,
    test,
    cfg: TrainConfig,
    out: Path,
    *,
    resume: bool,
    overwrite: bool,
    command: str,
    progress=None,
) -> dict:
    """Train into the run folder ``out`` (``rundir``) and write its checkpoint; returns the
    metrics.  ``resume`` continues the saved state (its config must equal ``cfg``)."""
    cfg.check()
    rundir.check_run_folder(out, resume, overwrite)
    state = rundir.read_state(out) if resume else None
    if state is not None and state["config"] != asdict(cfg):
        raise MemlearnError(
            f"--resume: {out} was trained with {state['config']}, not {asdict(cfg)} "
            "(omit the options to reuse the saved config, or start afresh with --overwrite)"
        )
    if overwrite:
        rundir.clear_run(out)
    out.mkdir(parents=True, exist_ok=True)
    result = train_layer(
        train, test, cfg, progress, state=state, save=lambda st: rundir.write_state(out, st)
    )
    path = save_checkpoint(result, out / rundir.MODEL_FILE, command)
    return json.loads(path.with_suffix(".json").read_text())


def load_checkpoint(path: Path | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(integer weights int64 [144, 10], float weights float32 [144, 10])``."""
    path = Path(path) if path is not None else CHECKPOINT
    if not path.is_file():
        raise MemlearnError(f"no SPIRIT checkpoint at {path}; create one with `memlearn snn train`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return check_weights(state["weights"].long()), state["float_weights"].float()
