"""Benchmark: on-chip adaptation of 1,000 tasks on 1,000 simulated chips, 5 steps each.

Prints adaptations per second of the computer-in-the-loop on SimulatedChip (deployment, K update
steps and the K+1 query evaluations, all chips in one batch) and of ideal float adaptation of
the same tasks in the same run, and their ratio (target <= 3x).  The ratio is given for the
head alone (features precomputed for both) and end to end (including the digital conv extractor
that both need).

    MEMLEARN_DATA=/work/shared/data .venv/bin/python bench/adapt.py [--chips 1000] [--steps 5]
"""

from __future__ import annotations

import argparse
import os
import time

# Spin-waiting OpenMP threads slow shared 2-core runs several-fold (see bench/program.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from memlearn.chip.simulated import SimulatedChip
from memlearn.data import TaskSampler, default_eval_split, load_split
from memlearn.data.augment import DEFAULT_SUPPORT_COPIES
from memlearn.meta.checkpoint import load_checkpoint
from memlearn.meta.inner import HeadTasks
from memlearn.onchip import AdaptConfig, adapt_on_chip, head_weights, inner_lrs_from, task_features
from memlearn.onchip.head import software_adapt
from memlearn.onchip.loop import chip_levels
from memlearn.onchip.policies import DEFAULT_POLICY
from memlearn.onchip.repair import output_layout, repair_output
from memlearn.onchip.run import head_layout, resolve_weight_max, with_copies


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=1000)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--preset", default="hfo2-mlc")
    parser.add_argument("--strategy", default="hybrid")
    parser.add_argument("--policy", default=DEFAULT_POLICY)
    parser.add_argument("--levels", type=int, default=8)
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--support-copies", type=int, default=DEFAULT_SUPPORT_COPIES)
    parser.add_argument("--spare-pairs", type=int, default=None, help="default: fill the tile")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    net, info = load_checkpoint(args.checkpoint)
    lrs = inner_lrs_from(info)
    split = default_eval_split()
    classes = load_split(split, rotations=False)
    tasks = TaskSampler(classes, ways=5, shots=1, queries=15, seed=args.seed).sample(args.chips)
    tasks = with_copies(tasks, args.support_copies, args.seed)  # as `memlearn adapt` does

    t0 = time.perf_counter()
    sx, qx = task_features(net, tasks.support_x), task_features(net, tasks.query_x)
    t_features = time.perf_counter() - t0
    weights = head_weights(net)

    # The chip as `memlearn adapt` makes it: spare pairs beside FC2, a test pass, FC2's outputs
    # on the healthiest pairs (memlearn.onchip.repair); not timed, done once per chip.
    layout = head_layout(net)
    physical = output_layout(layout, args.spare_pairs)
    spares = physical.array("fc2").cols - layout.array("fc2").cols
    t0 = time.perf_counter()
    chip = SimulatedChip(
        args.chips, preset=args.preset, layout=physical, levels=args.levels, seed=args.seed
    )
    t_build = time.perf_counter() - t0
    t0 = time.perf_counter()
    chip = repair_output(chip, layout, args.strategy)
    t_repair = time.perf_counter() - t0
    # The full-scale weight exactly as `memlearn adapt` sets it (not timed: done once per model).
    levels = chip_levels(chip, None)
    weight_max, source = resolve_weight_max(
        net, info, lrs, steps=args.steps, levels=levels, policy=args.policy, ways=5, shots=1,
        seed=args.seed, support_copies=args.support_copies,
    )  # fmt: skip
    config = AdaptConfig(
        steps=args.steps,
        strategy=args.strategy,
        policy=args.policy,
        levels=levels,
        weight_max=weight_max,
    )
    t0 = time.perf_counter()
    feats = HeadTasks(sx, tasks.support_y, qx, tasks.query_y)
    result = adapt_on_chip(chip, feats, weights, lrs, config)
    t_chip = time.perf_counter() - t0

    # Ideal float adaptation of the same tasks (best of 3: it is short).
    t_soft = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        soft_acc, _ = software_adapt(feats, weights, lrs, args.steps)
        t_soft = min(t_soft, time.perf_counter() - t0)

    n = args.chips
    print(
        f"tasks/chips: {n}, steps: {args.steps}, split: {split}, threads: {args.threads}, "
        f"support copies: {args.support_copies}"
    )
    print(f"features (digital extractor, both paths): {t_features:.2f} s")
    print(f"SimulatedChip construction: {t_build:.2f} s (not counted)")
    print(f"column repair test pass ({spares} spare pairs): {t_repair:.2f} s (not counted)")
    print(f"full-scale weights {[round(w, 4) for w in weight_max]} ({source}; not counted)")
    print(
        f"on-chip loop (deploy + {args.steps} steps + evaluations): {t_chip:.2f} s "
        f"-> {n / t_chip:.1f} adaptations/s"
    )
    print(f"ideal float adaptation: {t_soft:.4f} s -> {n / t_soft:.1f} adaptations/s")
    print(f"ratio, head only: {t_chip / t_soft:.1f}x")
    print(
        f"ratio, end to end incl. features: {(t_chip + t_features) / (t_soft + t_features):.2f}x "
        "(target <= 3x)"
    )
    print(
        f"accuracy after {args.steps} steps: on chip {result.accuracy[:, -1].mean():.4f}, "
        f"software {soft_acc[:, -1].mean():.4f}"
    )
    energy = result.energy_per_adaptation().mean()
    print(
        f"energy per adaptation: {1e6 * float(energy):.3f} uJ, "
        f"cells written per adaptation: {result.cells_written.sum(1).double().mean():.1f}"
    )


if __name__ == "__main__":
    main()
