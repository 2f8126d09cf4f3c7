"""The figures of a continual run: accuracy, forgetting, writes, wear and energy per step.

- ``mean_final_accuracy``: mean over tasks of the accuracy after the last task;
  ``learned_accuracy``: mean of the accuracy each task reached right after it was learned
  (the diagonal); ``forgetting``: mean over all but the last task of (best accuracy once
  learned - final accuracy) (Chaudhry et al., ECCV 2018).  Chip-averaged, with per-chip values.
- ``writes_per_cell``: write operations per cell over the run (OxRAM: one SET or RESET;
  FeRAM: one polarisation reversal, two per destructive read of a '1'), mean and max over
  cells and chips; ``endurance_used`` = max / (2 x endurance cycles);
  ``tasks_until_wear_out`` = 2 x endurance / (max writes per cell per task).
- ``hidden_in_oxram``: the same hidden-weight traffic if the 8-bit words lived in OxRAM cells
  (non-destructive reads: only the bit changes of written words wear them).
- ``energy_per_step_j``: ledger energy of both memories per training step, by category; and
  the same traffic priced with Nat. Electron. 2025's assumptions (1 pJ per memristor program,
  100 fJ per FeCAP write).
"""

from __future__ import annotations

from typing import Any

import torch

from memlearn.continual.run import ContinualResult
from memlearn.continual.store import ChipStore
from memlearn.devices.feram import (
    sense_lifetime_cycles,
    switched_fraction,
    switching_energy,
    window_fraction,
)

PJ_PER_MEMRISTOR_PROGRAM = 1e-12
"""[P] energy assumed per memristor program (Martemucci et al., Nat. Electron. 2025)."""
FJ_PER_FECAP_WRITE = 100e-15
"""[P] energy assumed per FeCAP write (Martemucci et al., Nat. Electron. 2025)."""


def accuracy_figures(acc: torch.Tensor) -> dict[str, Any]:
    """Figures of ``acc [n_chips, T, T]`` (fractions), chip means and per-chip lists."""
    final = acc[:, -1, :].mean(1)
    learned = torch.diagonal(acc, dim1=1, dim2=2).mean(1)
    t = acc.shape[1]
    if t > 1:
        # best accuracy of task j once learned: rows i >= j, before the last one
        learned_rows = torch.ones(t - 1, t - 1, dtype=torch.bool).tril()
        seen = torch.where(learned_rows, acc[:, :-1, :-1], float("-inf"))
        forgetting = (seen.amax(1) - acc[:, -1, :-1]).mean(1)
    else:
        forgetting = torch.zeros(acc.shape[0])
    return {
        "accuracy_matrix": acc.mean(0).tolist(),
        "mean_final_accuracy": float(final.mean()),
        "learned_accuracy": float(learned.mean()),
        "forgetting": float(forgetting.mean()),
        "per_chip": {
            "mean_final_accuracy": final.tolist(),
            "forgetting": forgetting.tolist(),
        },
    }


def _wear(writes: torch.Tensor, endurance: float, tasks: int) -> dict[str, Any]:
    w = writes.double()
    peak = float(w.max())
    per_task = peak / tasks
    return {
        "writes_per_cell": {"mean": float(w.mean()), "max": peak},
        "endurance_cycles": endurance,
        "endurance_used": peak / (2 * endurance),
        "tasks_until_wear_out": (2 * endurance / per_task) if per_task > 0 else None,
    }


def memory_figures(result: ContinualResult) -> dict[str, Any] | None:
    """Writes, wear and energy of the memories (``None`` for software runs)."""
    stores = result.learner.stores if hasattr(result.learner, "stores") else []
    if not stores or not isinstance(stores[0], ChipStore):
        return None
    tasks, steps = result.config.tasks, result.steps
    fe = [s.feram for s in stores]
    ox = [s.oxram for s in stores]
    fe_end = fe[0].preset.values["endurance"]
    ox_end = ox[0].array.preset.values["endurance"]
    fe_writes = torch.cat([f.writes.flatten(1) for f in fe], 1)
    fe_updates = torch.cat([f.update_writes.flatten(1) for f in fe], 1)
    ox_writes = torch.cat([o.writes.flatten(1) for o in ox], 1)
    energy: dict[str, float] = {}
    for name, mems in (("feram", fe), ("oxram", ox)):
        for m in mems:
            for cat, e in m.ledger.energy_by_category().items():
                if float(e.sum()) > 0:
                    key = f"{name}_{cat}"
                    energy[key] = energy.get(key, 0.0) + float(e.mean()) / steps
    fe_cells_written = float(fe_writes.double().sum(1).mean())
    ox_cells_written = float(ox_writes.double().sum(1).mean())
    preset = fe[0].preset
    physics = {
        "switched_fraction_at_write_pulse": float(
            switched_fraction(preset, preset.values["fe_write_v"], preset.values["write_pulse_s"])
        ),
        "switching_energy_j": switching_energy(preset),
        "window_after_run": float(window_fraction(preset, float(fe_writes.max()) / 2)),
        "sense_lifetime_cycles": sense_lifetime_cycles(preset),
    }
    return {
        "feram_physics": physics,
        "feram": _wear(fe_writes, fe_end, tasks),
        "oxram": _wear(ox_writes, ox_end, tasks),
        "hidden_in_oxram": _wear(fe_updates, ox_end, tasks),
        "energy_per_step_j": {"total": sum(energy.values()), "breakdown": energy},
        "energy_per_step_j_nat_electron": {
            "feram_writes": fe_cells_written * FJ_PER_FECAP_WRITE / steps,
            "oxram_programs": ox_cells_written * PJ_PER_MEMRISTOR_PROGRAM / steps,
        },
    }


def summarise(result: ContinualResult) -> dict[str, Any]:
    """The JSON-ready figures of ``result`` (accuracies as fractions in [0, 1])."""
    out = accuracy_figures(result.accuracy)
    out["steps"] = result.steps
    out["steps_per_task"] = result.steps_per_task
    mem = memory_figures(result)
    if mem is not None:
        out["writes_per_cell"] = {k: mem[k]["writes_per_cell"] for k in ("feram", "oxram")}
        out["endurance_used"] = {k: mem[k]["endurance_used"] for k in ("feram", "oxram")}
        out["tasks_until_wear_out"] = {
            k: mem[k]["tasks_until_wear_out"] for k in ("feram", "oxram", "hidden_in_oxram")
        }
        out["memories"] = mem
        out["energy_per_step_j"] = mem["energy_per_step_j"]
    out["curves"] = {"steps": result.curve_steps, "accuracy": result.curves.mean(1).tolist()}
    return out
