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

from memlearn.data.augment import DEFAULT_SUPPORT_COPIES  # noqa: E402
from memlearn.meta.inner import HeadTasks  # noqa: E402
from memlearn.onchip import adapt_on_chip, head_weights, task_features  # noqa: E402
from memlearn.onchip.deploy import DeployConfig, Deployment, deploy  # noqa: E402
from memlearn.onchip.head import software_adapt  # noqa: E402
from memlearn.onchip.policies import DEFAULT_POLICY  # noqa: E402


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=1000, help="chips, one task each")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--preset", default=None, help="default: hfo2-mlc")
    parser.add_argument("--strategy", default="hybrid")
    parser.add_argument("--policy", default=DEFAULT_POLICY)
    parser.add_argument("--levels", type=int, default=None, help="default: the model's")
    parser.add_argument("--weight-max", default="auto")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--support-copies", type=int, default=DEFAULT_SUPPORT_COPIES)
    parser.add_argument("--spare-pairs", type=int, default=None, help="default: fill the tile")
    return parser.parse_args(argv)


def config(args: argparse.Namespace) -> DeployConfig:
    """The deployment `memlearn adapt --tasks N --chips N` with these options makes."""
    return DeployConfig(
        checkpoint=args.checkpoint, preset=args.preset, strategy=args.strategy,
        policy=args.policy, chips=args.chips, tasks=args.chips, ways=5, steps=args.steps,
        levels=args.levels, weight_max=args.weight_max, support_copies=args.support_copies,
        spare_pairs=args.spare_pairs, seed=args.seed,
    )  # fmt: skip


def setup(args: argparse.Namespace) -> Deployment:
    """Chips, tasks and full scale exactly as `memlearn adapt` sets them up (not timed)."""
    return deploy(config(args))


def main() -> None:
    args = parse()
    torch.set_num_threads(args.threads)
    t0 = time.perf_counter()
    with setup(args) as d:
        t_setup = time.perf_counter() - t0
        measure(args, d, t_setup)


def measure(args: argparse.Namespace, d: Deployment, t_setup: float) -> None:
    """Time the on-chip loop and ideal float adaptation of the deployed tasks; print figures."""
    tasks = d.tasks
    t0 = time.perf_counter()
    sx, qx = task_features(d.net, tasks.support_x), task_features(d.net, tasks.query_x)
    t_features = time.perf_counter() - t0
    weights, lrs = head_weights(d.net), d.inner_lrs
    t0 = time.perf_counter()
    feats = HeadTasks(sx, tasks.support_y.long(), qx, tasks.query_y.long())
    result = adapt_on_chip(d.chip, feats, weights, lrs, d.adapt_config())
    t_chip = time.perf_counter() - t0

    # Ideal float adaptation of the same tasks (best of 3: it is short).
    t_soft = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        soft_acc, _ = software_adapt(feats, weights, lrs, args.steps)
        t_soft = min(t_soft, time.perf_counter() - t0)

    n = args.chips
    print(
        f"tasks/chips: {n}, steps: {args.steps}, split: {d.split}, threads: {args.threads}, "
        f"support copies: {args.support_copies}"
    )
    print(f"features (digital extractor, both paths): {t_features:.2f} s")
    print(
        f"setup (model, tasks, chips, repair test pass with {d.spare_pairs} spare pairs, full "
        f"scale): {t_setup:.2f} s (not counted)"
    )
    print(f"full-scale weights {[round(w, 4) for w in d.weight_max]} ({d.weight_max_source})")
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
