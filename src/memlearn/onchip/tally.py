"""Per-step totals of a chip's ledgers (energy in J, time in s, by category) for the loop.

A :class:`Snapshot` copies a ledger (``{category: [n_chips]}``) once, as one float64 tensor
``[categories, n_chips]``; :class:`StepTotals` keeps, per category, ``[n_chips, steps]`` of
the differences between the snapshot after each step and the one before it, written in one
operation when the categories are the same (the usual case) and category by category when a
chip reports new ones.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Snapshot:
    """A copy of a ledger: its ``categories`` and their values (float64 ``[categories, n]``;
    ``None`` when there are none)."""

    categories: tuple[str, ...]
    values: torch.Tensor | None

    @classmethod
    def of(cls, ledger: dict[str, torch.Tensor]) -> Snapshot:
        """A float64 copy of ``ledger`` (one ``stack``; the chip's tensors are not kept)."""
        if not ledger:
            return cls((), None)
        parts = [v.detach() if v.requires_grad else v for v in ledger.values()]
        return cls(tuple(ledger), torch.stack(parts).to(torch.float64))

    def minus(self, before: Snapshot) -> tuple[tuple[str, ...], torch.Tensor | None]:
        """``self - before`` per category (a category ``before`` lacks counts from 0), as
        ``(categories, [categories, n] float64)``."""
        if self.values is None or before.values is None:
            return self.categories, self.values
        if self.categories == before.categories:
            return self.categories, self.values - before.values
        rows = [
            self.values[i] - before.values[before.categories.index(c)]
            if c in before.categories
            else self.values[i]
            for i, c in enumerate(self.categories)
        ]
        return self.categories, torch.stack(rows)

    def delta(self, before: Snapshot) -> dict[str, torch.Tensor]:
        """``self - before`` as a ledger, ``{category: [n]}``."""
        categories, values = self.minus(before)
        return {} if values is None else dict(zip(categories, values.unbind(0), strict=True))


class StepTotals:
    """``totals``: ``{category: [n_chips, steps]}`` float64 (J or s), filled by :meth:`record`."""

    def __init__(self, n_chips: int, steps: int) -> None:
        self.n_chips, self.steps = n_chips, steps
        self.totals: dict[str, torch.Tensor] = {}
        self._block: torch.Tensor | None = None  # [categories, n, steps], the totals' storage
        self._categories: tuple[str, ...] = ()

    def record(self, step: int, after: Snapshot, before: Snapshot) -> None:
        """Store ``after - before`` as step ``step``'s amounts."""
        categories, amounts = after.minus(before)
        if amounts is None:
            return
        if self._block is None and not self.totals:
            self._block = torch.zeros(
                len(categories), self.n_chips, self.steps, dtype=torch.float64
            )
            self._categories = categories
            self.totals = dict(zip(categories, self._block.unbind(0), strict=True))
        if self._block is not None and categories == self._categories:
            self._block[:, :, step] = amounts
            return
        for cat, amount in zip(categories, amounts.unbind(0), strict=True):
            if cat not in self.totals:
                self.totals[cat] = torch.zeros(self.n_chips, self.steps, dtype=torch.float64)
            self.totals[cat][:, step] = amount
