"""The outcome of an on-chip adaptation (:class:`AdaptResult`, per task) and the merge of the
results of several rounds or groups of chips into one."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import torch


@dataclass
class AdaptResult:
    """Per-task results (``T`` tasks, ``K`` steps).

    ``accuracy``/``loss``: query, ``[T, K+1]`` (index 0: as deployed).  ``cells_written``,
    ``expected_cells``, ``set_pulses``, ``reset_pulses``, ``verify_reads``: ``[T, K]``.
    ``energy_j``: category → ``[T, K]`` joules spent by each update step.  ``deploy_energy_j``:
    category → ``[T]``; ``deploy_cells_written``: ``[T]``.  ``accuracy_after_bake``: ``[T]`` or
    ``None``.  ``software_accuracy``/``software_loss``: ideal float adaptation of the same tasks,
    ``[T, K+1]`` (filled by :func:`run_adaptation`).  ``latency_s``: category → ``[T, K]``
    seconds of each update step, when the chip keeps a latency ledger (else empty).
    """

    accuracy: torch.Tensor
    loss: torch.Tensor
    cells_written: torch.Tensor
    expected_cells: torch.Tensor
    set_pulses: torch.Tensor
    reset_pulses: torch.Tensor
    verify_reads: torch.Tensor
    energy_j: dict[str, torch.Tensor]
    deploy_energy_j: dict[str, torch.Tensor]
    deploy_cells_written: torch.Tensor
    accuracy_after_bake: torch.Tensor | None = None
    software_accuracy: torch.Tensor | None = None
    software_loss: torch.Tensor | None = None
    extra: dict[str, object] = field(default_factory=dict)
    latency_s: dict[str, torch.Tensor] = field(default_factory=dict)

    @property
    def pulses(self) -> torch.Tensor:
        """SET + RESET pulses per task and step."""
        return self.set_pulses + self.reset_pulses

    def to(self, device: torch.device | str) -> AdaptResult:
        """A copy with every tensor on ``device``."""
        moved: dict[str, object] = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor):
                v = v.to(device)
            elif isinstance(v, dict) and f.name != "extra":
                v = {k: t.to(device) for k, t in v.items()}
            moved[f.name] = v
        return AdaptResult(**moved)  # type: ignore[arg-type]

    def energy_per_adaptation(self) -> torch.Tensor:
        """Joules per task over the K update steps, all categories."""
        total = sum(e.sum(dim=1) for e in self.energy_j.values())
        return total if isinstance(total, torch.Tensor) else torch.zeros(self.accuracy.shape[0])


def merge_parts(parts: list[tuple[int, dict[str, object]]]) -> AdaptResult:
    """One result of the first ``n`` tasks of each part's fields (``(n, fields)``), in order
    (one part: its fields themselves, no copies)."""
    if len(parts) == 1:
        n, fields = parts[0]
        return AdaptResult(**{key: _first(value, n) for key, value in fields.items()})  # type: ignore[arg-type]
    merged: dict[str, object] = {}
    for key, value in parts[0][1].items():
        if isinstance(value, dict):
            merged[key] = {k: torch.cat([r[key][k][:n] for n, r in parts]) for k in value}  # type: ignore[index]
        elif value is None:
            merged[key] = None
        else:
            merged[key] = torch.cat([r[key][:n] for n, r in parts])  # type: ignore[index]
    return AdaptResult(**merged)  # type: ignore[arg-type]


def _first(value: object, n: int) -> object:
    """The first ``n`` tasks of a field (a tensor, a dict of tensors or ``None``)."""
    if isinstance(value, dict):
        return {k: v[:n] for k, v in value.items()}
    return None if value is None else value[:n]  # type: ignore[index]


def merge_results(results: list[AdaptResult]) -> AdaptResult:
    """The tasks of ``results`` one after another, as one result (``extra`` of the first)."""
    if len(results) == 1:
        return results[0]
    parts = []
    for r in results:
        fields = {f.name: getattr(r, f.name) for f in dataclasses.fields(r) if f.name != "extra"}
        parts.append((r.accuracy.shape[0], fields))
    merged = merge_parts(parts)
    merged.extra = results[0].extra
    return merged
