"""Why a published effect does not show: the loop's mechanisms, switched off one at a time.

A study compares a *better* device point with a *worse* one (least vs most overlap, widest vs
narrowest window) on the same tasks.  When the accuracy gap the reference reports does not
appear, something in the closed loop may be compensating for the worse device.  Each mechanism
of :data:`MECHANISMS` is switched off at both points (same tasks, same chip seeds, the full
scale each point calibrated), and the gap measured again:

``read-back``
    the gradient is taken at the weights the computer wrote (the last targets), not at the
    conductances read back before each update (cells still read, so the energy is unchanged).
``in-situ forward``
    the support set's activations are computed from the written targets, not measured through
    the arrays (the query set still runs through the arrays).
``closed loop``
    both: the gradient is computed as an ideal chip would give it (ex-situ), then written.
``float copy``
    the ``accumulate`` policy's float copy of the weights: ``verify`` instead (nearest level
    of the read-back weight plus the update).  Only with the ``accumulate`` policy.
``fault handling``
    cells read far from their target are no longer left alone for their partner to
    compensate (``AdaptConfig.fault_fraction = None``).
``device-aware full scale``
    each point's full scale calibrated on its device's level statistics: the noise-free one
    of the workload instead.
``support copies``
    the distorted copies of each support image: the shots alone.
``query-time reads``
    the query set runs through the arrays: through ideal arrays holding the written targets
    instead (what the programming errors cost at inference, not during learning).

A mechanism *compensates* when, switched off, the gap grows beyond the 95 % CI of the paired
per-task difference of the two gaps (:func:`compensation`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from memlearn.chip.simulated import SimulatedChip
from memlearn.experiments.common import (
    StudyRun,
    final_accuracies,
    mean_ci,
    pts,
    run_point,
    write_csv,
)

MECHANISMS = (
    "read-back",
    "in-situ forward",
    "closed loop",
    "float copy",
    "fault handling",
    "device-aware full scale",
    "support copies",
    "query-time reads",
)
# Chip switches of each mechanism (LoopSwitchChip attributes set to False).
_CHIP_SWITCHES = {
    "read-back": ("read_back",),
    "in-situ forward": ("in_situ_forward",),
    "closed loop": ("read_back", "in_situ_forward"),
    "query-time reads": ("query_reads",),
}


class LoopSwitchChip(SimulatedChip):
    """A :class:`SimulatedChip` that can hide itself from parts of the loop (what-if).

    The loop's update step reads every array, runs the support set through them, then
    programs (:func:`memlearn.meta.inner.inner_loop`); the query set runs between steps.  A
    read opens a step and programming closes it.  With ``read_back`` off a read returns the
    last targets; with ``in_situ_forward`` off products within a step, with ``query_reads`` off
    products between steps, are computed from the last targets (ideal arrays, no converters).
    """

    read_back = True
    in_situ_forward = True
    query_reads = True
    _in_step = False

    def read_conductances(self, array: str) -> tuple[torch.Tensor, torch.Tensor]:
        self._in_step = True
        g = super().read_conductances(array)
        return g if self.read_back else self.last_targets(array)

    def multiply(self, array: str, volts: torch.Tensor) -> torch.Tensor:
        real = self.in_situ_forward if self._in_step else self.query_reads
        if real:
            return super().multiply(array, volts)
        g_plus, g_minus = self.last_targets(array)
        return torch.einsum("nbr,nrc->nbc", volts.float(), (g_plus - g_minus).float())

    def program(self, array: str, *args: Any, **kwargs: Any):  # type: ignore[override]
        self._in_step = False
        return super().program(array, *args, **kwargs)


def switch_chip(off: Sequence[str]) -> type[LoopSwitchChip]:
    """A :class:`LoopSwitchChip` class with the chip switches of the mechanisms ``off``."""
    names = {s for m in off for s in _CHIP_SWITCHES.get(m, ())}
    return type("SwitchedChip", (LoopSwitchChip,), {n: False for n in names})


def mechanisms_for(policy: str) -> list[str]:
    """The mechanisms that a loop with ``policy`` has."""
    return [m for m in MECHANISMS if m != "float copy" or policy == "accumulate"]


def attribution_point(point: dict[str, Any], seed: int) -> dict[str, Any]:
    """A sweep point: :func:`~memlearn.experiments.common.run_point` with the mechanism
    ``point["off"]`` switched off (``None``: the loop as it is), on the chips of seed
    ``point["chip_seed"]`` when given (the same device samples as the point it revisits)."""
    off = point.get("off")
    seed = int(point.get("chip_seed", seed))
    if off is not None and off not in MECHANISMS:
        raise ValueError(f"unknown mechanism {off!r}; allowed: {list(MECHANISMS)}")
    changes: dict[str, Any] = {}
    p = dict(point)
    if off == "float copy":
        changes["policy"] = "verify"
    elif off == "fault handling":
        changes["fault_fraction"] = None
    elif off == "device-aware full scale":
        p["weight_max"] = list(point["workload"].weight_max)
    elif off == "support copies":
        p["workload"] = point["workload"].without_copies()
    return run_point(p, seed, chip_class=switch_chip([off] if off else []),
                     config_changes=changes)  # fmt: skip


def compensation(
    base: tuple[dict[str, Any], dict[str, Any]], off: tuple[dict[str, Any], dict[str, Any]]
) -> dict[str, float | bool]:
    """The gap (better − worse, final accuracy, paired per task) with the loop as it is and with
    a mechanism off, the change of the gap with its 95 % half-width (paired per task), the
    accuracy the mechanism saves at the worse point, and whether it compensates (the gap grows
    beyond the CI when it is off)."""
    b_better, b_worse = (torch.tensor(final_accuracies(r)) for r in base)
    o_better, o_worse = (torch.tensor(final_accuracies(r)) for r in off)
    gap_base, gap_base_ci = mean_ci((b_better - b_worse).tolist())
    gap_off, gap_off_ci = mean_ci((o_better - o_worse).tolist())
    growth, growth_ci = mean_ci(((o_better - o_worse) - (b_better - b_worse)).tolist())
    saved, saved_ci = mean_ci((b_worse - o_worse).tolist())
    return {
        "gap": gap_base,
        "gap_ci95": gap_base_ci,
        "gap_off": gap_off,
        "gap_off_ci95": gap_off_ci,
        "gap_growth": growth,
        "gap_growth_ci95": growth_ci,
        "saved_at_worse": saved,
        "saved_at_worse_ci95": saved_ci,
        "worse_off": float(o_worse.mean()),
        "compensates": bool(growth > 0 and growth > growth_ci),
    }


def attribute(
    run: StudyRun,
    key: str,
    label: str,
    better: dict[str, Any],
    worse: dict[str, Any],
    points: tuple[dict[str, Any], dict[str, Any]],
    mechanisms: Sequence[str] | None = None,
) -> list[dict[str, Any]]:
    """Switch each mechanism off at the sweep points ``points`` (better, worse; the point dicts
    the study ran, their device already in ``preset``) whose results were ``better`` and
    ``worse``; one row per mechanism (:func:`compensation`), labelled ``label``."""
    names = list(mechanisms if mechanisms is not None else mechanisms_for(run.policy))
    todo = []
    for m in names:
        for p, r in zip(points, (better, worse), strict=True):
            todo.append({**p, "weight_max": r["weight_max"], "off": m, "chip_seed": r["seed"]})
    results = run.sweep(f"{key}-attribution", attribution_point, todo)
    rows = []
    for i, m in enumerate(names):
        off = (results[2 * i], results[2 * i + 1])
        rows.append({"contrast": label, "mechanism": m, **compensation((better, worse), off)})
    return rows


def attribution_numbers(rows: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Report lines: per contrast and mechanism, the gap when it is off and what it saves."""
    return [
        (
            f"{r['contrast']}, without {r['mechanism']}",
            f"gap {pts(r['gap_off'], r['gap_off_ci95'])} (as it is {pts(r['gap'], r['gap_ci95'])}"
            f"); change {pts(r['gap_growth'], r['gap_growth_ci95'])}"
            + (", compensates" if r["compensates"] else ""),
        )
        for r in rows
    ]


def attribution_summary(rows: list[dict[str, Any]]) -> str:
    """One sentence per contrast: the mechanisms that compensate, or none."""
    out = []
    for contrast in dict.fromkeys(r["contrast"] for r in rows):
        found = [r["mechanism"] for r in rows if r["contrast"] == contrast and r["compensates"]]
        out.append(
            f"{contrast}: "
            + (", ".join(found) if found else "no single mechanism")
            + " compensate"
            + ("s" if len(found) == 1 else "")
        )
    return "Attribution (the gap grows beyond its CI with the mechanism off): " + "; ".join(out)


def write_attribution(run: StudyRun, key: str, rows: list[dict[str, Any]]) -> str:
    """``<key>_attribution.csv``; its name."""
    columns = ["contrast", "mechanism", "gap", "gap_ci95", "gap_off", "gap_off_ci95",
               "gap_growth", "gap_growth_ci95", "saved_at_worse", "saved_at_worse_ci95",
               "worse_off", "compensates"]  # fmt: skip
    return write_csv(run.path(f"{key}_attribution.csv"), rows, columns).name
