"""Why the chips learn through a wide spread: the loop's mechanisms switched off one at a time
(:mod:`memlearn.experiments.attribution`) on the devices of a reproduction.

The contrasts, each on the chips (spread factors, seeds, full scales) of a ``memlearn
reproduce`` output: for every level count of its overlap study, the least overlapped point vs
the point whose cells' rms error is nearest ``--rms`` of the window (where the accuracy starts
to fall); and, when a strategies output is given (or is in the same directory), hybrid vs
single-shot SET.  Usage::

    python tools/robustness_attribution.py memlearn-reproduce-overlap \\
        --strategies memlearn-reproduce-strategies --tasks 64 --out attribution.json

Prints one JSON row per contrast and mechanism (see ``attribution.compensation``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from memlearn.devices.preset import load_preset
from memlearn.experiments.attribution import attribution_point, compensation, mechanisms_for
from memlearn.experiments.overlap import widen_spread
from memlearn.experiments.workload import load_workload

RMS_OF_WINDOW = 0.11  # [E] the worse point: rms error ≈ 11 % of the window (README: the fall)


def overlap_contrasts(points: list[dict], preset, point, rms: float) -> list[tuple[str, list]]:
    """Per level count: (label, [(point, result) least overlap, (point, result) at ``rms``])."""
    out = []
    for n in sorted({p["levels"] for p in points}):
        rows = [p for p in points if p["levels"] == n]
        low = min(rows, key=lambda p: p["sigma_over_spacing"])
        high = min(rows, key=lambda p: abs(p["error_over_window"] - rms))
        label = (
            f"{n} levels, σ/Δ {low['sigma_over_spacing']:.2g} vs {high['sigma_over_spacing']:.2g}"
            f" (rms error {high['error_over_window']:.1%} of the window)"
        )
        pair = [
            (point(widen_spread(preset, p["spread_factor"]), "hybrid", n), p) for p in (low, high)
        ]
        out.append((label, pair))
    return out


def strategy_contrast(points: list[dict], preset, point) -> tuple[str, list]:
    """(label, [(point, result) hybrid, (point, result) single-shot SET])."""
    by = {p["strategy"]: p for p in points}
    pair = [(point(preset, s, by[s]["levels"]), by[s]) for s in ("hybrid", "single-set")]
    return "hybrid vs single-shot SET", pair


def attribute_pair(label: str, pair: list, policy: str, tasks: int) -> list[dict]:
    """The loop as it is and with each mechanism off on the pair's chips; one row each."""
    runs = {}
    for off in [None, *mechanisms_for(policy)]:
        runs[off] = tuple(
            attribution_point(
                {**p, "weight_max": r["weight_max"], "off": off, "chip_seed": r["seed"]}, 0
            )
            for p, r in pair
        )
    rows = []
    for off in mechanisms_for(policy):
        row = {"contrast": label, "mechanism": off, "tasks": tasks}
        row.update(compensation(runs[None], runs[off]))
        row.update(better_as_is=_mean(runs[None][0]), worse_as_is=_mean(runs[None][1]))
        rows.append(row)
        print(json.dumps(row), flush=True)
    return rows


def _mean(result: dict) -> float:
    return float(torch.tensor([a[-1] for a in result["accuracy"]]).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reproduction", type=Path, help="a memlearn reproduce output (overlap)")
    parser.add_argument("--strategies", type=Path, default=None, help="its strategies output")
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--rms", type=float, default=RMS_OF_WINDOW)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = json.loads((args.reproduction / "run.json").read_text())
    config = run["config"]
    wl = load_workload(
        tasks=run["tasks"]["tasks"], seed=config["seed"], support_copies=config["support_copies"]
    ).take(args.tasks)
    preset, policy = load_preset(config["preset"]), config["policy"]

    def point(device, strategy: str, levels: int) -> dict:
        return {"workload": wl, "preset": device, "strategy": strategy, "levels": levels,
                "policy": policy}  # fmt: skip

    overlap = json.loads((args.reproduction / "overlap.json").read_text())["points"]
    contrasts = overlap_contrasts(overlap, preset, point, args.rms)
    strategies = (args.strategies or args.reproduction) / "strategies.json"
    if strategies.is_file():
        contrasts.append(strategy_contrast(json.loads(strategies.read_text())["points"],
                                           preset, point))  # fmt: skip
    rows = [r for label, pair in contrasts for r in attribute_pair(label, pair, policy, args.tasks)]
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
