"""The two fully connected layers that live on the chip's crossbars, as a batched function.

``logits = relu(features @ fc1ᵀ) @ fc2ᵀ`` with no biases: the reference layout has exactly
32 rows for FC1 and 16 for FC2 (REFERENCE.md §1 [I]), so there is no row left for a bias.
"""

from __future__ import annotations

import torch


def head_forward(features: torch.Tensor, fc1_w: torch.Tensor, fc2_w: torch.Tensor) -> torch.Tensor:
    """Run the FC head for a batch of tasks, each with its own weights.

    ``features [T, B, F]``, ``fc1_w [T, H, F]``, ``fc2_w [T, C, H]`` → logits ``[T, B, C]``.
    Unbatched inputs (``[B, F]``, ``[H, F]``, ``[C, H]``) give ``[B, C]``.
    """
    if features.dim() == 2 and fc1_w.dim() == 2 and fc2_w.dim() == 2:
        return head_forward(features[None], fc1_w[None], fc2_w[None])[0]
    if features.dim() != 3 or fc1_w.dim() != 3 or fc2_w.dim() != 3:
        raise ValueError(
            "head_forward needs features [T, B, F], fc1_w [T, H, F], fc2_w [T, C, H] (or all "
            f"unbatched); got {list(features.shape)}, {list(fc1_w.shape)}, {list(fc2_w.shape)}"
        )
    t = features.shape[0]
    if fc1_w.shape[0] != t or fc2_w.shape[0] != t:
        raise ValueError(
            f"task dimension differs: features {t}, fc1_w {fc1_w.shape[0]}, fc2_w {fc2_w.shape[0]}"
        )
    if fc1_w.shape[2] != features.shape[2]:
        raise ValueError(f"fc1_w has {fc1_w.shape[2]} inputs but features have {features.shape[2]}")
    if fc2_w.shape[2] != fc1_w.shape[1]:
        raise ValueError(
            f"fc2_w has {fc2_w.shape[2]} inputs but fc1_w has {fc1_w.shape[1]} outputs"
        )
    hidden = torch.relu(torch.bmm(features, fc1_w.transpose(1, 2)))
    return torch.bmm(hidden, fc2_w.transpose(1, 2))
