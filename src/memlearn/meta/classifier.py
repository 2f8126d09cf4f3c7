"""The digital classifier of the pretraining phase (it is dropped after pretraining).

``linear``: an ordinary affine layer.  ``cosine``: logits are ``s · cos(x, w_c)``, the cosine
between the input and each class weight times a learned scale ``s`` (Chen et al., "A Closer Look
at Few-shot Classification", ICLR 2019, "Baseline++"): it trains features whose *directions*
separate classes, which is what the chip's first update from a zero FC2 compares (dot products
of L2-normalised features).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

CLASSIFIERS = ("linear", "cosine")
COSINE_SCALE_INIT = 10.0  # [E] initial logit scale; learned from there (Baseline++ uses 2..10)


class CosineClassifier(nn.Module):
    """``x [B, F]`` → logits ``[B, C] = s · normalize(x) · normalize(W)ᵀ`` with a learned ``s``."""

    def __init__(self, n_in: int, n_classes: int, scale: float = COSINE_SCALE_INIT) -> None:
        super().__init__()
        if n_in < 1 or n_classes < 1 or not scale > 0:
            raise ValueError(
                f"need n_in >= 1, n_classes >= 1, scale > 0; got {n_in}, {n_classes}, {scale}"
            )
        self.weight = nn.Parameter(torch.randn(n_classes, n_in) / math.sqrt(n_in))
        self.log_scale = nn.Parameter(torch.tensor(math.log(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cos = F.normalize(x, dim=-1) @ F.normalize(self.weight, dim=-1).T
        return self.log_scale.exp() * cos


def make_classifier(kind: str, n_in: int, n_classes: int) -> nn.Module:
    """The pretraining classifier ``kind`` (one of :data:`CLASSIFIERS`)."""
    if kind == "linear":
        return nn.Linear(n_in, n_classes)
    if kind == "cosine":
        return CosineClassifier(n_in, n_classes)
    raise ValueError(f"unknown pretraining classifier {kind!r}; allowed: {list(CLASSIFIERS)}")
