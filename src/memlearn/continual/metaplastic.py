"""Synaptic metaplasticity of a binarised synapse (Laborieux et al., Nat. Commun. 2021).

The binary weight is ``W_b = sign(W_h)`` of a hidden weight ``W_h``.  An update ``dW`` that
pushes ``W_h`` toward zero (``sign(W_h) * dW < 0``, toward a sign flip) is scaled by
``f_meta = 1 - tanh^2(m |W_h|)``; an update that grows ``|W_h|`` is applied unchanged.  With
``m = 0``, ``f_meta = 1`` and the rule is the plain binarised-network update.
"""

from __future__ import annotations

import torch

from memlearn.errors import MemlearnError


def check_meta(m: float) -> float:
    """``m`` as a float if it is a finite number >= 0, else ``MemlearnError``."""
    try:
        value = float(m)
    except (TypeError, ValueError):
        raise MemlearnError(f"meta (m) must be a number >= 0, got {m!r}") from None
    if not value >= 0 or value == float("inf"):
        raise MemlearnError(f"meta (m) must be a finite number >= 0, got {m!r}")
    return value


def f_meta(w_hidden: torch.Tensor, m: float) -> torch.Tensor:
    """The attenuation ``1 - tanh^2(m |W_h|)`` (in (0, 1]) of updates toward a sign flip."""
    return 1.0 - torch.tanh(m * w_hidden.abs()) ** 2


def binary(w_hidden: torch.Tensor) -> torch.Tensor:
    """``W_b = sign(W_h)`` with ``sign(0) = +1`` (a binary weight is never 0)."""
    return torch.where(w_hidden >= 0, 1.0, -1.0).to(w_hidden.dtype)


def metaplastic_update(w_hidden: torch.Tensor, update: torch.Tensor, m: float) -> torch.Tensor:
    """The update actually applied to ``w_hidden``: ``update`` scaled by ``f_meta`` where it
    pushes ``W_h`` toward zero (``W_h * update < 0``), unchanged elsewhere."""
    toward_zero = (w_hidden * update) < 0
    if m == 0:
        return update.clone()
    return torch.where(toward_zero, update * f_meta(w_hidden, m), update)
