"""The conv feature extractor that is hard-wired on the chip, and batch-norm folding.

Each block is 3x3 conv (stride 1, padding 1) → batch norm → ReLU → 2x2 max-pool.  With the
default widths (64, 64, 64, 32) a 28x28 image shrinks 28 → 14 → 7 → 3 → 1, so the extractor
outputs 1x1x32 = 32 features, the 32 rows of the reference chip's FC1 array (REFERENCE.md §1
[I]).  Features end in a ReLU, so they are >= 0: the chip's DACs drive unipolar row voltages.

At deployment the batch-norm statistics are fixed and folded into the convolutions
(:func:`fold_batchnorm`); evaluation never normalises with statistics of the test batch.

``normalize="l2"`` rescales each image's feature vector to the norm ``sqrt(features)`` (a
digital step before the DACs, per image, using no other image).  The chip's first update from a
zero FC2 makes the logits dot products with the support features; with equal norms these rank
classes as cosine similarities do, instead of favouring the support image with the most ink.

Weights and activations are kept in the channels-last layout: on CPU the oneDNN convolutions
run about 1.5x faster in it than in the default layout (``bench/meta_step.py``).
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import torch
from torch import nn

NORMALIZATIONS = ("none", "l2")  # per-image feature normalisation, see the module docstring


def _spatial_after(size: int, blocks: int) -> int:
    for _ in range(blocks):
        size //= 2  # 2x2 max-pool, floor (padding 1 keeps the conv output size)
    return size


class ConvExtractor(nn.Module):
    """Images ``[B, C, H, W]`` (ink = 1, values in 0..1) → features ``[B, widths[-1]]``, >= 0.

    ``widths`` are the output channels of the conv blocks; ``image_size`` must shrink to 1x1
    after ``len(widths)`` 2x2 poolings so the features are exactly ``widths[-1]`` numbers.
    """

    def __init__(
        self,
        widths: Sequence[int] = (64, 64, 64, 32),
        in_channels: int = 1,
        image_size: int = 28,
        normalize: str = "none",
    ) -> None:
        super().__init__()
        widths = tuple(int(w) for w in widths)
        if normalize not in NORMALIZATIONS:
            raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
        if not widths or any(w < 1 for w in widths):
            raise ValueError(f"widths must be a non-empty list of positive ints, got {widths}")
        if in_channels < 1:
            raise ValueError(f"in_channels must be >= 1, got {in_channels}")
        if _spatial_after(image_size, len(widths)) != 1:
            lo, hi = 2 ** len(widths), 2 ** (len(widths) + 1) - 1
            raise ValueError(
                f"image_size {image_size} with {len(widths)} conv blocks does not end at 1x1; "
                f"allowed image sizes for this depth: {lo}..{hi}"
            )
        self.widths = widths
        self.in_channels = int(in_channels)
        self.image_size = int(image_size)
        self.normalize = normalize
        self.folded = False
        blocks = []
        c_in = in_channels
        for w in widths:
            blocks.append(
                nn.Sequential(
                    nn.Conv2d(c_in, w, kernel_size=3, padding=1, bias=False),
                    nn.BatchNorm2d(w),
                    nn.ReLU(inplace=True),
                    nn.MaxPool2d(2),
                )
            )
            c_in = w
        self.blocks = nn.ModuleList(blocks)
        self.to(memory_format=torch.channels_last)

    @property
    def features(self) -> int:
        """Number of output features (the FC1 array's rows)."""
        return self.widths[-1]

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dim() != 4 or images.shape[1:] != (
            self.in_channels,
            self.image_size,
            self.image_size,
        ):
            raise ValueError(
                f"images must be [B, {self.in_channels}, {self.image_size}, {self.image_size}], "
                f"got {list(images.shape)}"
            )
        x = images
        for block in self.blocks:
            x = block(x)
        return self._normalize(x.flatten(1))

    def _normalize(self, features: torch.Tensor) -> torch.Tensor:
        if self.normalize == "none":
            return features
        norm = features.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        return features * (features.shape[-1] ** 0.5 / norm)

    def forward_task_batchnorm(self, images: torch.Tensor) -> torch.Tensor:
        """TRANSDUCTIVE features: batch norm with the statistics of each task's own images.

        ``images [T, n, C, H, W]`` → ``[T, n, F]``.  This is what the MAML paper's Omniglot
        numbers use; a chip with fixed statistics cannot, so report it only as a labelled extra.
        """
        if self.folded:
            raise ValueError("a BN-folded extractor has no batch norm to apply per task")
        if images.dim() != 5:
            raise ValueError(f"images must be [T, n, C, H, W], got {list(images.shape)}")
        t, n = images.shape[:2]
        x = images.flatten(0, 1)
        for block in self.blocks:
            conv, bn = block[0], block[1]
            z = conv(x)
            zt = z.view(t, n, *z.shape[1:])
            mean = zt.mean(dim=(1, 3, 4), keepdim=True)
            var = zt.var(dim=(1, 3, 4), unbiased=False, keepdim=True)
            zt = (zt - mean) / torch.sqrt(var + bn.eps)
            zt = zt * bn.weight.view(1, 1, -1, 1, 1) + bn.bias.view(1, 1, -1, 1, 1)
            x = block[3](torch.relu(zt.flatten(0, 1)))
        return self._normalize(x.flatten(1)).view(t, n, -1)


def fold_batchnorm(extractor: ConvExtractor) -> ConvExtractor:
    """A copy of ``extractor`` with each batch norm's fixed statistics folded into its conv.

    BN in eval mode computes ``gamma * (z - mean) / sqrt(var + eps) + beta`` on the conv output
    ``z = W * x``; folding gives a conv with weight ``W * s`` and bias ``beta - mean * s`` where
    ``s = gamma / sqrt(var + eps)``.  The result equals the eval-mode extractor (to float
    rounding), never uses batch statistics, and has no BN layers left.
    """
    if not isinstance(extractor, ConvExtractor):
        raise TypeError(f"fold_batchnorm needs a ConvExtractor, got {type(extractor).__name__}")
    folded = copy.deepcopy(extractor).eval()
    if folded.folded:
        return folded
    for block in folded.blocks:
        conv, bn = block[0], block[1]
        if not isinstance(bn, nn.BatchNorm2d):
            raise ValueError("extractor block has no BatchNorm2d after its conv")
        if bn.running_mean is None or bn.running_var is None:
            raise ValueError("batch norm has no running statistics to fold (track_running_stats)")
        with torch.no_grad():
            scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
            bias = bn.bias - bn.running_mean * scale
            if conv.bias is not None:
                bias = bias + conv.bias * scale
            new = nn.Conv2d(
                conv.in_channels,
                conv.out_channels,
                kernel_size=conv.kernel_size,
                padding=conv.padding,
                bias=True,
            )
            new.weight.copy_(conv.weight * scale.view(-1, 1, 1, 1))
            new.bias.copy_(bias)
        block[0] = new.to(memory_format=torch.channels_last)
        block[1] = nn.Identity()
    folded.folded = True
    return folded
