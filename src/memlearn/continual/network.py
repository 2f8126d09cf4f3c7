"""The binarised (and float baseline) fully connected networks, batched over chips.

Weights are ``[n_chips, out, in]`` tensors held by the caller (a weight store or parameters);
``forward`` runs every chip's network on the same images.  Hidden layers: ``x @ W^T``, a batch
norm, then ``sign`` (binarised network; straight-through gradient for |z| <= 1, Courbariaux et
al. 2016) or ReLU (float network).  The output layer is batch-normed logits.

Batch norm as the chip holds it: at inference ``sign(BN(z)) = sign(gamma) * sign(z - theta)``
with ``theta = mu - beta sigma / gamma`` (``folded_thresholds``): one threshold and one sign
bit per neuron, the pre-activation ``z`` being an integer popcount of +-1 products.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from memlearn.errors import MemlearnError

CHIP_WEIGHTS = 16_384
"""Binary weights the chip holds: 2 sub-cores x 8,192 ([I] a 16 kbit OxRAM array holds 8,192
2T2R differential pairs, matching the 8,192 8-bit words of four 16 kbit FeRAM arrays;
Martemucci et al., MEMRISYS 2023)."""


@dataclass(frozen=True)
class NetworkSpec:
    """Layer sizes (inputs first) and the side of the square input image (pixels)."""

    name: str
    hidden: tuple[int, ...]
    side: int

    def sizes(self, outputs: int) -> tuple[int, ...]:
        return (self.side * self.side, *self.hidden, outputs)

    def weights(self, outputs: int) -> int:
        s = self.sizes(outputs)
        return sum(a * b for a, b in zip(s[:-1], s[1:], strict=True))


NETWORKS: dict[str, NetworkSpec] = {
    # [E] 14x14 binarised input (2x2 average pool), 64 hidden: 13,184 weights (10 outputs)
    "chip": NetworkSpec("chip", (64,), 14),
    # [E] the metaplasticity paper's 784-4096-4096-10 scaled to the 2-core budget (README)
    "reference": NetworkSpec("reference", (512, 512), 28),
}


def network_spec(name: str, hidden: tuple[int, ...] | None = None) -> NetworkSpec:
    """The spec named ``name``, with its hidden layer sizes replaced by ``hidden`` if given."""
    if name not in NETWORKS:
        raise MemlearnError(f"unknown network {name!r}; allowed {list(NETWORKS)}")
    spec = NETWORKS[name]
    if hidden is None:
        return spec
    if not hidden or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden):
        raise MemlearnError(f"hidden layer sizes must be integers >= 1, got {hidden!r}")
    return NetworkSpec(name, tuple(hidden), spec.side)


def check_fits_chip(sizes: tuple[int, ...]) -> None:
    """``MemlearnError`` when a network of layer ``sizes`` exceeds the chip's capacity."""
    n = sum(a * b for a, b in zip(sizes[:-1], sizes[1:], strict=True))
    if n > CHIP_WEIGHTS:
        raise MemlearnError(
            f"a {'-'.join(map(str, sizes))} network has {n} weights; the chip holds "
            f"{CHIP_WEIGHTS} binary weights (2 sub-cores x 8,192); use --network reference "
            "to simulate it on unbounded memories"
        )


class SignSTE(torch.autograd.Function):
    """``sign`` (``sign(0) = +1``) with the straight-through gradient ``1_{|z| <= 1}``."""

    @staticmethod
    def forward(ctx, z: torch.Tensor) -> torch.Tensor:  # noqa: D102
        ctx.save_for_backward(z)
        return torch.where(z >= 0, 1.0, -1.0).to(z.dtype)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        (z,) = ctx.saved_tensors
        return grad * (z.abs() <= 1).to(grad.dtype)


class ChipBatchNorm(nn.Module):
    """Batch norm of ``[n_chips, batch, n]`` with per-chip affine parameters and statistics.

    ``batch_stats``: evaluation too normalises with the statistics of the batch evaluated (as
    Laborieux et al. 2021's code, ``track_running_stats=False``; on the chip the controller
    computes them over the batch's popcounts), else with the running statistics."""

    def __init__(
        self,
        n_chips: int,
        n: int,
        momentum: float = 0.1,
        eps: float = 1e-5,
        batch_stats: bool = False,
    ) -> None:
        super().__init__()
        self.batch_stats = batch_stats
        self.weight = nn.Parameter(torch.ones(n_chips, 1, n))
        self.bias = nn.Parameter(torch.zeros(n_chips, 1, n))
        self.register_buffer("running_mean", torch.zeros(n_chips, 1, n))
        self.register_buffer("running_var", torch.ones(n_chips, 1, n))
        self.momentum, self.eps = momentum, eps

    def forward(self, z: torch.Tensor) -> torch.Tensor:  # noqa: D102
        if self.training or self.batch_stats:
            mean = z.mean(1, keepdim=True)
            var = z.var(1, unbiased=False, keepdim=True)
        if self.training:
            with torch.no_grad():
                n = z.shape[1]
                self.running_mean.lerp_(mean, self.momentum)
                self.running_var.lerp_(var * n / max(n - 1, 1), self.momentum)
        elif not self.batch_stats:
            mean, var = self.running_mean, self.running_var
        return (z - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias

    def folded_thresholds(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(theta, sign(gamma))`` so that ``sign(BN(z)) = sign(gamma) sign(z - theta)``
        at inference (``gamma = 0`` counts as positive)."""
        sigma = torch.sqrt(self.running_var + self.eps)
        gamma = torch.where(self.weight == 0, 1e-12, self.weight)
        return self.running_mean - self.bias * sigma / gamma, torch.where(gamma >= 0, 1.0, -1.0)


def make_norms(n_chips: int, sizes: tuple[int, ...], batch_stats: bool = False) -> nn.ModuleList:
    """One ``ChipBatchNorm`` per layer of a network of layer ``sizes``."""
    return nn.ModuleList(ChipBatchNorm(n_chips, n, batch_stats=batch_stats) for n in sizes[1:])


def forward(
    x: torch.Tensor, weights: list[torch.Tensor], norms: nn.ModuleList, binary: bool
) -> torch.Tensor:
    """Logits ``[n_chips, batch, classes]`` of images ``x [batch, in]`` (same for every chip)."""
    h = x.expand(weights[0].shape[0], *x.shape)
    last = len(weights) - 1
    for i, (w, norm) in enumerate(zip(weights, norms, strict=True)):
        z = norm(torch.bmm(h, w.transpose(1, 2)))
        if i < last:
            h = SignSTE.apply(z) if binary else torch.relu(z)
    return z


def init_hidden(
    n_chips: int, sizes: tuple[int, ...], width: float, generator: torch.Generator
) -> list[torch.Tensor]:
    """Hidden weights uniform in ``[-width, width]``, one ``[n_chips, out, in]`` per layer."""
    return [
        (2 * torch.rand(n_chips, b, a, generator=generator) - 1) * width
        for a, b in zip(sizes[:-1], sizes[1:], strict=True)
    ]


def init_float(
    n_chips: int, sizes: tuple[int, ...], generator: torch.Generator
) -> list[nn.Parameter]:
    """Float weights uniform in ``+-1/sqrt(in)`` (PyTorch's default linear init scale)."""
    return [
        nn.Parameter((2 * torch.rand(n_chips, b, a, generator=generator) - 1) / math.sqrt(a))
        for a, b in zip(sizes[:-1], sizes[1:], strict=True)
    ]
