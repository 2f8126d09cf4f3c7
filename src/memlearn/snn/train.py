"""Offline training of the SPIRIT layer (quantised and float) and its shipped checkpoint.

``train_layer`` trains on the 60,000 MNIST training images (down-scaled, ``model.downscale``)
with Adam and a cross-entropy on ``LOGIT_SCALE * tanh`` outputs (the tanh neurons saturate at
±1, the scale lets the softmax separate them); seeded, one pass over a fixed permutation per
epoch.  ``save_checkpoint`` writes the integer weights (int8) and the float reference (float16)
with the metrics JSON beside them; the shipped one is ``CHECKPOINT`` (command in its JSON).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from memlearn.errors import MemlearnError
from memlearn.io import atomic_write
from memlearn.snn.model import SpiritLayer, accuracy, check_weights, downscale

CHECKPOINT = Path(__file__).parents[1] / "models" / "spirit-snn.pt"
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
    model: SpiritLayer, x: torch.Tensor, y: torch.Tensor, cfg: TrainConfig, progress=None
) -> SpiritLayer:
    """Train ``model`` in place on intensities ``x [N, 144]`` and labels ``y [N]``."""
    gen = torch.Generator().manual_seed(cfg.seed + 1)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, cfg.epochs)
    for _ in range(cfg.epochs):
        order = torch.randperm(len(x), generator=gen)
        for start in range(0, len(x), cfg.batch):
            idx = order[start : start + cfg.batch]
            loss = torch.nn.functional.cross_entropy(LOGIT_SCALE * model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
        if progress is not None:
            progress()
    return model


def train_layer(train, test, cfg: TrainConfig, progress=None) -> dict:
    """Train the quantised and the float layer; returns weights and test metrics."""
    cfg.check()
    x, y = downscale(train.images), train.labels
    xt, yt = downscale(test.images), test.labels
    out: dict = {"config": asdict(cfg)}
    for quantised in (True, False):
        torch.manual_seed(cfg.seed)
        model = SpiritLayer(quantised, torch.Generator().manual_seed(cfg.seed))
        fit(model, x, y, cfg, progress)
        with torch.no_grad():
            pred = model(xt).argmax(dim=1)
            train_pred = model(x).argmax(dim=1)
        key = "quantised" if quantised else "float"
        out[f"{key}_test_accuracy"] = accuracy(pred, yt)
        out[f"{key}_train_accuracy"] = accuracy(train_pred, y)
        if quantised:
            out["weights"] = model.integer_weights()
        else:
            out["float_weights"] = model.weight.detach().clone()
    return out


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


def load_checkpoint(path: Path | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(integer weights int64 [144, 10], float weights float32 [144, 10])``."""
    path = Path(path) if path is not None else CHECKPOINT
    if not path.is_file():
        raise MemlearnError(f"no SPIRIT checkpoint at {path}; create one with `memlearn snn train`")
    state = torch.load(path, map_location="cpu", weights_only=True)
    return check_weights(state["weights"].long()), state["float_weights"].float()
