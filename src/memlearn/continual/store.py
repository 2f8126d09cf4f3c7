"""Weight stores: where a binarised layer's hidden and binary weights live.

- ``SoftwareStore``: float hidden weights, ``W_b = sign(W_h)`` (the software reference).
- ``ChipStore``: hidden weights as 8-bit words ``q`` in FeRAM, ``W_h = (q + 1/2) lsb`` with
  ``lsb = weight_max / 128`` (256 odd multiples of lsb/2, never 0, so ``sign`` is the word's top
  bit), and binary weights in OxRAM.  ``hidden()`` reads every word (destructive read and
  write-back), ``write(target)`` rounds the targets to words (``ROUNDINGS``), writes the words
  that changed and reprograms only the OxRAM pairs whose sign flipped.

Roundings of a target ``x = W/lsb - 1/2`` to a code: ``stochastic`` ``floor(x + u)``, u uniform
(unbiased; sub-LSB updates survive in expectation), ``nearest`` ``round(x)`` (sub-LSB updates
are lost), ``accumulate`` nearest with the rounding residual kept in a float register per
weight off the arrays (the digital controller) and added to the next target.
"""

from __future__ import annotations

import torch

from memlearn.continual.memories import FeramWords, OxramBinary
from memlearn.continual.metaplastic import binary
from memlearn.errors import MemlearnError

ROUNDINGS = ("stochastic", "nearest", "accumulate")
DEFAULT_W_MAX = 3.0
"""[E] full scale of the 8-bit hidden weights: f_meta(3) = 1 - tanh^2(1.35 x 3) ~ 1e-3, so the
range covers the whole attenuation curve of the strongest metaplasticity studied."""


class SoftwareStore:
    """Float hidden weights ``[n_chips, out, in]``; no memories, no counting."""

    def __init__(self, w_hidden: torch.Tensor) -> None:
        self.w = w_hidden.clone()

    def forward_weights(self, images: int) -> torch.Tensor:
        """Binary weights for the forward pass of a batch of ``images``."""
        return binary(self.w)

    def hidden(self) -> torch.Tensor:
        return self.w.clone()

    def write(self, target: torch.Tensor) -> None:
        self.w = target.clone()

    def snapshot(self) -> torch.Tensor:
        """Binary weights for evaluation (no counting)."""
        return binary(self.w)


class ChipStore:
    """Hidden weights in FeRAM words, binary weights in OxRAM pairs (see the module doc)."""

    def __init__(
        self,
        w_hidden: torch.Tensor,
        feram_preset: str,
        oxram_preset: str,
        rounding: str,
        weight_max: float,
        generator: torch.Generator,
    ) -> None:
        if rounding not in ROUNDINGS:
            raise MemlearnError(f"unknown rounding {rounding!r}; allowed {list(ROUNDINGS)}")
        if not weight_max > 0:
            raise MemlearnError(f"weight_max must be > 0, got {weight_max}")
        n_chips, out_f, in_f = w_hidden.shape
        self.rounding, self.lsb, self.generator = rounding, weight_max / 128.0, generator
        self.feram = FeramWords(feram_preset, n_chips, (out_f, in_f))
        self.oxram = OxramBinary(oxram_preset, n_chips, out_f, in_f, generator)
        self.residual = torch.zeros_like(w_hidden)
        codes = self._codes(w_hidden, nearest=True)
        self.feram.write(codes)
        self.oxram.program(torch.where(codes >= 0, 1.0, -1.0))

    def _codes(self, target: torch.Tensor, nearest: bool = False) -> torch.Tensor:
        x = target / self.lsb - 0.5
        if nearest or self.rounding != "stochastic":
            q = torch.round(x)
        else:
            q = torch.floor(x + torch.rand(x.shape, generator=self.generator))
        return q.clamp(-128, 127).to(torch.int16)

    def value(self, codes: torch.Tensor) -> torch.Tensor:
        """Hidden weights of the words ``codes``."""
        return (codes.float() + 0.5) * self.lsb

    def forward_weights(self, images: int) -> torch.Tensor:
        return self.oxram.read(images)

    def hidden(self) -> torch.Tensor:
        return self.value(self.feram.read())

    def write(self, target: torch.Tensor) -> None:
        if self.rounding == "accumulate":
            target = target + self.residual
        codes = self._codes(target)
        if self.rounding == "accumulate":
            clipped = (codes == -128) | (codes == 127)
            self.residual = torch.where(clipped, 0.0, target - self.value(codes))
        self.feram.write(codes)
        self.oxram.program(torch.where(codes >= 0, 1.0, -1.0))

    def snapshot(self) -> torch.Tensor:
        return self.oxram.states()
