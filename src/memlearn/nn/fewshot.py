"""The few-shot network of the reference chip: conv extractor → FC 32→16 → ReLU → FC 16→ways."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from memlearn.nn.extractor import ConvExtractor, fold_batchnorm
from memlearn.nn.head import head_forward


class FewShotNet(nn.Module):
    """The chip's network.

    ``extractor`` (hard-wired conv layers, digital in simulation) maps images ``[B, 1, 28, 28]``
    to features ``[B, 32]``; ``fc1`` (``[hidden, 32]``) and ``fc2`` (``[ways, hidden]``) are the
    bias-free linear layers that live on the crossbars and adapt on the chip.
    """

    def __init__(
        self,
        ways: int = 5,
        widths: Sequence[int] = (64, 64, 64, 32),
        hidden: int = 16,
        in_channels: int = 1,
        image_size: int = 28,
        normalize: str = "none",
    ) -> None:
        super().__init__()
        if ways < 2:
            raise ValueError(f"ways must be >= 2, got {ways}")
        if hidden < 1:
            raise ValueError(f"hidden must be >= 1, got {hidden}")
        self.extractor = ConvExtractor(
            widths, in_channels=in_channels, image_size=image_size, normalize=normalize
        )
        self.fc1 = nn.Linear(self.extractor.features, hidden, bias=False)
        self.fc2 = nn.Linear(hidden, ways, bias=False)
        self.ways = int(ways)
        self.hidden = int(hidden)

    @property
    def config(self) -> dict[str, Any]:
        """The constructor arguments, JSON-serialisable."""
        return {
            "ways": self.ways,
            "widths": list(self.extractor.widths),
            "hidden": self.hidden,
            "in_channels": self.extractor.in_channels,
            "image_size": self.extractor.image_size,
            "normalize": self.extractor.normalize,
        }

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> FewShotNet:
        allowed = {"ways", "widths", "hidden", "in_channels", "image_size", "normalize"}
        unknown = set(config) - allowed
        if unknown:
            raise ValueError(
                f"unknown network options {sorted(unknown)}; allowed {sorted(allowed)}"
            )
        return cls(**config)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Images ``[B, C, H, W]`` → features ``[B, F]`` (>= 0)."""
        return self.extractor(images)

    @staticmethod
    def head(features: torch.Tensor, fc1_w: torch.Tensor, fc2_w: torch.Tensor) -> torch.Tensor:
        """Functional head, batched over tasks: see :func:`memlearn.nn.head.head_forward`."""
        return head_forward(features, fc1_w, fc2_w)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, ways]`` with the module's own FC weights."""
        return self.fc2(torch.relu(self.fc1(self.extractor(images))))

    def fold_batchnorm(self) -> FewShotNet:
        """A deployable copy in eval mode with batch norm folded into the convs."""
        net = copy.deepcopy(self)
        net.extractor = fold_batchnorm(net.extractor)
        return net.eval()
