"""Why the chips learn through a wide spread: the loop's mechanisms switched off one at a time
(:mod:`memlearn.experiments.attribution`) on the devices of a reproduction.

Three contrasts, each on the chips (seeds, full scales) of a ``memlearn reproduce`` output:
16 levels at the least overlap vs σ/Δ ≈ 1.5, 8 levels at the least overlap vs σ/Δ ≈ 0.75, and
hybrid vs single-shot SET on 8 levels.  Usage::

    python tools/robustness_attribution.py memlearn-reproduce --tasks 32 --out attribution.json

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


def contrasts(reproduction: Path, wl, preset) -> list[tuple[str, list]]:
    """(label, [(point, result) better, (point, result) worse]) of each contrast."""
    overlap = json.loads((reproduction / "overlap.json").read_text())["points"]
    strategies = json.loads((reproduction / "strategies.json").read_text())["points"]

    def pick(levels: int, ratio: float) -> dict:
        rows = [p for p in overlap if p["levels"] == levels]
        return min(rows, key=lambda p: abs(p["sigma_over_spacing"] - ratio))

    def point(device, strategy: str, levels: int) -> dict:
        return {"workload": wl, "preset": device, "strategy": strategy, "levels": levels,
                "policy": "accumulate"}  # fmt: skip

    out = []
    for n, ratio in ((16, 1.5), (8, 0.75)):
        low, high = pick(n, 0.05), pick(n, ratio)
        label = (
            f"{n} levels, σ/Δ {low['sigma_over_spacing']:.2g} vs {high['sigma_over_spacing']:.2g}"
        )
        pair = [
            (point(widen_spread(preset, p["spread_factor"]), "hybrid", n), p) for p in (low, high)
        ]
        out.append((label, pair))
    by = {p["strategy"]: p for p in strategies}
    pair = [(point(preset, s, by[s]["levels"]), by[s]) for s in ("hybrid", "single-set")]
    out.append(("hybrid vs single-shot SET", pair))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reproduction", type=Path, help="a memlearn reproduce output directory")
    parser.add_argument("--tasks", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    torch.set_num_threads(1)
    run = json.loads((args.reproduction / "run.json").read_text())
    config = run["config"]
    wl = load_workload(
        tasks=run["tasks"]["tasks"], seed=config["seed"], support_copies=config["support_copies"]
    ).take(args.tasks)
    rows = []
    for label, pair in contrasts(args.reproduction, wl, load_preset(config["preset"])):
        runs = {}
        for off in [None, *mechanisms_for("accumulate")]:
            runs[off] = tuple(
                attribution_point(
                    {**p, "weight_max": r["weight_max"], "off": off, "chip_seed": r["seed"]}, 0
                )
                for p, r in pair
            )
        for off in mechanisms_for("accumulate"):
            row = {"contrast": label, "mechanism": off, **compensation(runs[None], runs[off])}
            rows.append(row)
            print(json.dumps(row), flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
