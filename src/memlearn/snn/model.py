"""The SPIRIT layer offline: 12x12 inputs, 144 -> 10, integer weights in -4..+4, tanh neurons.

SPIRIT (Valentian et al., IEDM 2019, REFERENCE.md s4) runs one fully connected layer of
144 inputs (MNIST down-scaled to 12x12) and 10 output neurons with integer weights -4..+4; its
integrate-and-fire neurons with positive and negative spikes are the tanh of the trained
network [P].  Down-scaling here: crop the 2-pixel border of the 28x28 image (MNIST digits sit
in the central 20x20 box, LeCun et al. 1998) and average non-overlapping 2x2 areas (area
averaging), giving intensities in [0, 1].

Training is quantisation-aware: the forward pass uses ``round(clamp(w, -4, 4))``, the gradient
passes straight through (Bengio et al. 2013, straight-through estimator); the tanh's slope is
one learnt scale ``beta`` (the neuron threshold in weight units; it does not change the sign or
ranking of the outputs, so the chip needs no counterpart).  The float reference is the same
topology without quantisation.
"""

from __future__ import annotations

import torch

from memlearn.errors import MemlearnError

SIDE = 12  # [P] SPIRIT's down-scaled MNIST side
INPUTS = SIDE * SIDE
CLASSES = 10
W_MAX = 4  # [P] integer weights -4..+4 (4 SLC cells per sign)


def downscale(images: torch.Tensor) -> torch.Tensor:
    """uint8 or float MNIST ``[N, 28, 28]`` (ink 255 or 1) -> intensities ``[N, 144]`` in [0, 1]."""
    if images.dim() != 3 or tuple(images.shape[1:]) != (28, 28):
        raise MemlearnError(f"images must have shape [N, 28, 28], got {list(images.shape)}")
    x = images.float()
    if images.dtype == torch.uint8:
        x = x / 255.0
    x = x[:, 2:26, 2:26].reshape(-1, SIDE, 2, SIDE, 2).mean(dim=(2, 4))
    return x.reshape(-1, INPUTS).clamp(0.0, 1.0)


def check_inputs(x: torch.Tensor) -> torch.Tensor:
    """Intensities ``[N, 144]`` in [0, 1] (float32), else ``MemlearnError``."""
    if x.dim() != 2 or x.shape[1] != INPUTS:
        raise MemlearnError(
            f"inputs must be 12x12 images flattened to [N, {INPUTS}] (use snn.model.downscale "
            f"on 28x28 MNIST), got shape {list(x.shape)}"
        )
    x = x.float()
    if not bool(torch.isfinite(x).all()) or bool(((x < 0) | (x > 1)).any()):
        raise MemlearnError("input intensities must lie in [0, 1]")
    return x


def check_weights(
    w: torch.Tensor, shape: tuple[int, int] | None = (INPUTS, CLASSES)
) -> torch.Tensor:
    """Integer weights of ``shape`` (any matrix for ``None``) in -4..+4 (int64), else
    ``MemlearnError``."""
    if (tuple(w.shape) != tuple(shape)) if shape is not None else w.dim() != 2:
        want = f"[{shape[0]}, {shape[1]}]" if shape is not None else "[rows, neurons]"
        raise MemlearnError(f"weights must have shape {want}, got {list(w.shape)}")
    if w.dtype.is_floating_point and not bool((w == w.round()).all()):
        raise MemlearnError("weights must be integers in -4..+4")
    if bool((w.abs() > W_MAX).any()):
        raise MemlearnError(
            f"weights must lie in -{W_MAX}..+{W_MAX} (4 SLC cells per sign), got values in "
            f"{int(w.min())}..{int(w.max())}"
        )
    return w.long()


def quantise(w: torch.Tensor) -> torch.Tensor:
    """Round to -4..+4 in the forward pass, identity gradient (straight-through)."""
    q = w.clamp(-W_MAX, W_MAX).round()
    return w + (q - w).detach()


class SpiritLayer(torch.nn.Module):
    """144 -> 10 without bias; ``quantised`` uses integer weights, else float weights."""

    def __init__(self, quantised: bool = True, generator: torch.Generator | None = None):
        super().__init__()
        self.quantised = quantised
        init = torch.randn(INPUTS, CLASSES, generator=generator) * 1.0
        self.weight = torch.nn.Parameter(init)
        self.log_beta = torch.nn.Parameter(torch.tensor(-2.0))

    def effective_weight(self) -> torch.Tensor:
        return quantise(self.weight) if self.quantised else self.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Neuron outputs ``tanh(beta * x @ W)`` ``[N, 10]`` (the chip's tanh equivalent)."""
        return torch.tanh(self.log_beta.exp() * (x @ self.effective_weight()))

    def integer_weights(self) -> torch.Tensor:
        """The chip's weights, int64 ``[144, 10]`` in -4..+4."""
        return self.weight.detach().clamp(-W_MAX, W_MAX).round().long()


def tanh_decision(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Class chosen by the tanh layer (argmax of ``x @ W``), ``[N]``."""
    return (check_inputs(x) @ w.float()).argmax(dim=1)


def accuracy(pred: torch.Tensor, labels: torch.Tensor) -> float:
    return float((pred == labels).float().mean())
