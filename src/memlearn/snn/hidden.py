"""Beyond SPIRIT's topology: a 144-H-10 layer pair with the same integer weights and neurons.

Both layers quantised to -4..+4 with straight-through gradients and tanh neurons (the chip's
offline equivalent, ``model``), trained like the single layer (``train.fit``).  Its ideal
accuracy against the single layer's says how far the topology, not the cells, limits SPIRIT.
Only the ideal (tanh, integer-weight) network is evaluated here.
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from memlearn.errors import MemlearnError
from memlearn.snn.model import CLASSES, INPUTS, accuracy, downscale, quantise
from memlearn.snn.train import TrainConfig, fit


class HiddenNet(torch.nn.Module):
    """144 -> ``hidden`` -> 10, no biases; ``quantised``: integer weights in both layers."""

    def __init__(self, hidden: int, quantised: bool = True, generator=None) -> None:
        super().__init__()
        if isinstance(hidden, bool) or not isinstance(hidden, int) or not 1 <= hidden <= 1024:
            raise MemlearnError(f"hidden must be an integer in 1..1024, got {hidden!r}")
        self.quantised = quantised
        self.w1 = torch.nn.Parameter(torch.randn(INPUTS, hidden, generator=generator))
        self.w2 = torch.nn.Parameter(torch.randn(hidden, CLASSES, generator=generator))
        self.log_beta = torch.nn.Parameter(torch.tensor([-2.0, -2.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = quantise if self.quantised else (lambda w: w)
        beta = self.log_beta.exp()
        h = torch.tanh(beta[0] * (x @ q(self.w1)))
        return torch.tanh(beta[1] * (h @ q(self.w2)))


def train_hidden(train, test, hidden: int, cfg: TrainConfig) -> dict:
    """Test accuracies of the quantised and float 144-``hidden``-10 networks."""
    cfg.check()
    x, y = downscale(train.images), train.labels
    xt, yt = downscale(test.images), test.labels
    out: dict = {"hidden": hidden, "config": asdict(cfg)}
    for quantised in (True, False):
        torch.manual_seed(cfg.seed)
        net = HiddenNet(hidden, quantised, torch.Generator().manual_seed(cfg.seed))
        fit(net, x, y, cfg)
        with torch.no_grad():
            pred = net(xt).argmax(dim=1)
        out[f"{'quantised' if quantised else 'float'}_test_accuracy"] = accuracy(pred, yt)
    return out
