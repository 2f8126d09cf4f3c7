"""Random affine distortions of character images, batched.

Each image gets its own rotation, scale and shift, drawn from a seeded generator, and is
resampled bilinearly in one ``grid_sample`` call for the whole batch (no per-image Python work).
Small distortions of this kind are the variation between drawers of one character, so they add
training variety without changing the class; rotations by 90° (new classes) are a separate
option of the splits.  :func:`with_support_copies` uses them at adaptation time too: distorted
copies of a task's support images, more examples to learn the new classes from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import torch
import torch.nn.functional as F

from memlearn.data.sampler import TaskBatch


@dataclass(frozen=True)
class Affine:
    """Ranges of the random distortion (uniform in ± each bound).

    ``degrees``: rotation; ``scale``: relative zoom (0.1 = 0.9..1.1); ``shift``: translation as a
    fraction of the image side.  Defaults: [E] a few pixels and degrees at 28x28, inside the
    variation between Omniglot drawers.
    """

    degrees: float = 10.0
    scale: float = 0.1
    shift: float = 0.07

    def __post_init__(self) -> None:
        if not 0 <= self.degrees <= 180:
            raise ValueError(f"degrees must be in [0, 180], got {self.degrees}")
        if not 0 <= self.scale < 1:
            raise ValueError(f"scale must be in [0, 1), got {self.scale}")
        if not 0 <= self.shift <= 0.5:
            raise ValueError(f"shift must be in [0, 0.5], got {self.shift}")

    def __call__(self, images: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Distort ``images [B, C, H, W]`` (ink = 1, background 0) → same shape."""
        if images.dim() != 4:
            raise ValueError(f"images must be [B, C, H, W], got {list(images.shape)}")
        b = images.shape[0]
        draw = torch.rand(b, 4, generator=generator).to(images.device) * 2 - 1
        angle = draw[:, 0] * math.radians(self.degrees)
        zoom = 1 + draw[:, 1] * self.scale
        # affine_grid maps output to input coordinates in [-1, 1]: shift of 2*shift spans it.
        tx, ty = draw[:, 2] * 2 * self.shift, draw[:, 3] * 2 * self.shift
        cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
        theta = torch.stack(
            [torch.stack([cos, -sin, tx], 1), torch.stack([sin, cos, ty], 1)], 1
        ).to(images.dtype)
        grid = F.affine_grid(theta, list(images.shape), align_corners=False)
        return F.grid_sample(images, grid, align_corners=False, padding_mode="zeros")


# [E] Distorted copies of each support image the adaptation learns from (0: the images alone):
# four take most of the gain of nineteen at a fifth of the support passes (README: recipe
# choices).
DEFAULT_SUPPORT_COPIES = 4


def with_support_copies(
    tasks: TaskBatch,
    copies: int,
    generator: torch.Generator,
    distort: Affine | None = None,
) -> TaskBatch:
    """``tasks`` whose support set also holds ``copies`` distorted versions of each support image.

    A drawer never draws a character twice alike, so small affine distortions of the one shot
    are further plausible examples of its class: the adaptation's gradient averages over them.
    The support set becomes ``[T, (1 + copies) * ways * shots, ...]``: the images as given, then
    each round of copies in the same order, labels repeated; the query set is untouched.
    ``distort`` defaults to :class:`Affine`'s ranges; ``generator`` seeds the draws.
    """
    if copies < 0:
        raise ValueError(f"support copies must be >= 0, got {copies}")
    if copies == 0:
        return tasks
    return replace(
        tasks,
        support_x=distorted_support(tasks.support_x, copies, generator, distort),
        support_y=tasks.support_y.repeat(1, copies + 1),
    )


def distorted_support(
    support_x: torch.Tensor,
    copies: int,
    generator: torch.Generator,
    distort: Affine | None = None,
) -> torch.Tensor:
    """The images of :func:`with_support_copies`: ``support_x [T, S, C, H, W]``, then ``copies``
    rounds of distorted versions of them → ``[T, (1 + copies) * S, C, H, W]``."""
    if copies < 0:
        raise ValueError(f"support copies must be >= 0, got {copies}")
    distort = distort or Affine()
    shape = support_x.shape
    flat = support_x.flatten(0, 1)
    rounds = [support_x]
    rounds += [distort(flat, generator).view(shape) for _ in range(copies)]
    return torch.cat(rounds, dim=1)
