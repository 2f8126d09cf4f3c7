"""Beyond SPIRIT's topology: a 144-H-10 layer pair with the same integer weights and neurons.

Both layers quantised to -4..+4 with straight-through gradients and tanh neurons (the chip's
offline equivalent, ``model``), trained like the single layer (``train.fit``).  Its ideal
accuracy against the single layer's says how far the topology, not the cells, limits SPIRIT;
``twolayer`` runs it on simulated cells.  ``save_hidden`` / ``load_hidden`` write and read its
checkpoint (integer weights int8, float twin float16, the tanh slopes); the shipped
``HIDDEN_CHECKPOINT`` (H = 32) is ``HIDDEN_COMMAND``'s output copied into the package.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from memlearn.errors import MemlearnError
from memlearn.io import atomic_write
from memlearn.snn.model import CLASSES, INPUTS, W_MAX, accuracy, check_weights, downscale, quantise
from memlearn.snn.train import TrainConfig, fit

HIDDEN_MAX = 1024
HIDDEN_CHECKPOINT = Path(__file__).parents[1] / "models" / "spirit-hidden32.pt"
HIDDEN_COMMAND = "memlearn snn hidden --hidden 32 --out runs/spirit-hidden"


def check_hidden(hidden: object) -> int:
    """``hidden`` as an int in 1..``HIDDEN_MAX``, else ``MemlearnError``."""
    if isinstance(hidden, bool) or not isinstance(hidden, int) or not 1 <= hidden <= HIDDEN_MAX:
        raise MemlearnError(f"hidden must be an integer in 1..{HIDDEN_MAX}, got {hidden!r}")
    return hidden


class HiddenNet(torch.nn.Module):
    """144 -> ``hidden`` -> 10, no biases; ``quantised``: integer weights in both layers."""

    def __init__(self, hidden: int, quantised: bool = True, generator=None) -> None:
        super().__init__()
        check_hidden(hidden)
        self.quantised = quantised
        self.w1 = torch.nn.Parameter(torch.randn(INPUTS, hidden, generator=generator))
        self.w2 = torch.nn.Parameter(torch.randn(hidden, CLASSES, generator=generator))
        self.log_beta = torch.nn.Parameter(torch.tensor([-2.0, -2.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = quantise if self.quantised else (lambda w: w)
        beta = self.log_beta.exp()
        h = torch.tanh(beta[0] * (x @ q(self.w1)))
        return torch.tanh(beta[1] * (h @ q(self.w2)))


@dataclass(frozen=True)
class HiddenWeights:
    """A trained 144-H-10 network: integer ``w1 [144, H]``, ``w2 [H, 10]`` (int64 in -4..+4),
    the tanh slopes ``beta`` (per weight unit, ``[2]``) and the float twin (``float_*``)."""

    w1: torch.Tensor
    w2: torch.Tensor
    beta: torch.Tensor
    float_w1: torch.Tensor
    float_w2: torch.Tensor
    float_beta: torch.Tensor

    @property
    def hidden(self) -> int:
        return self.w1.shape[1]

    def check(self) -> HiddenWeights:
        h = check_hidden(self.w1.shape[1]) if self.w1.dim() == 2 else 0
        check_weights(self.w1, (INPUTS, h))
        check_weights(self.w2, (h, CLASSES))
        return self

    def decision(self, x: torch.Tensor, quantised: bool = True) -> torch.Tensor:
        """Class chosen by the tanh network (quantised or float), ``[N]``."""
        w1, w2, beta = (
            (self.w1.float(), self.w2.float(), self.beta)
            if quantised
            else (self.float_w1, self.float_w2, self.float_beta)
        )
        return (torch.tanh(beta[0] * (x @ w1)) @ w2).argmax(dim=1)


def _integer(w: torch.Tensor) -> torch.Tensor:
    return w.detach().clamp(-W_MAX, W_MAX).round().long()


def train_hidden(train, test, hidden: int, cfg: TrainConfig) -> tuple[dict, HiddenWeights]:
    """Test accuracies of the quantised and float 144-``hidden``-10 networks, and the weights."""
    cfg.check()
    x, y = downscale(train.images), train.labels
    xt, yt = downscale(test.images), test.labels
    out: dict = {"hidden": hidden, "config": asdict(cfg)}
    nets = {}
    for quantised in (True, False):
        torch.manual_seed(cfg.seed)
        net = HiddenNet(hidden, quantised, torch.Generator().manual_seed(cfg.seed))
        fit(net, x, y, cfg)
        with torch.no_grad():
            pred = net(xt).argmax(dim=1)
        out[f"{'quantised' if quantised else 'float'}_test_accuracy"] = accuracy(pred, yt)
        nets[quantised] = net
    q, f = nets[True], nets[False]
    weights = HiddenWeights(
        _integer(q.w1), _integer(q.w2), q.log_beta.detach().exp(),
        f.w1.detach().clone(), f.w2.detach().clone(), f.log_beta.detach().exp(),
    )  # fmt: skip
    return out, weights


def save_hidden(metrics: dict, weights: HiddenWeights, path: Path, command: str) -> Path:
    """Write the checkpoint ``path`` (.pt) and its metrics ``path.with_suffix('.json')``."""
    weights.check()
    state = {
        "w1": weights.w1.to(torch.int8), "w2": weights.w2.to(torch.int8), "beta": weights.beta,
        "float_w1": weights.float_w1.half(), "float_w2": weights.float_w2.half(),
        "float_beta": weights.float_beta,
    }  # fmt: skip
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path, "wb") as handle:
        torch.save(state, handle)
    meta = {**metrics, "command": command, "beta": weights.beta.tolist()}
    with atomic_write(path.with_suffix(".json")) as handle:
        json.dump(meta, handle, indent=2)
        handle.write("\n")
    return path


def load_hidden(path: Path | str | None = None) -> HiddenWeights:
    """The network saved at ``path`` (default: the shipped ``HIDDEN_CHECKPOINT``)."""
    path = Path(path) if path is not None else HIDDEN_CHECKPOINT
    if not path.is_file():
        raise MemlearnError(
            f"no hidden-layer checkpoint at {path}; create one with `memlearn snn hidden "
            "--hidden H --out DIR`"
        )
    s = torch.load(path, map_location="cpu", weights_only=True)
    return HiddenWeights(
        s["w1"].long(), s["w2"].long(), s["beta"].float(),
        s["float_w1"].float(), s["float_w2"].float(), s["float_beta"].float(),
    ).check()  # fmt: skip
