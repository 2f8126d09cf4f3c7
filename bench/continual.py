"""Benchmark: training images per second of the binarised network on chip-simulated memories
(8-bit hidden words in FeRAM, binary weights in OxRAM pairs, write counting, ledgers) against
the same network with float hidden weights in software, in the same run, on the same tasks.

    MEMLEARN_DATA=/work/shared/data .venv/bin/python bench/continual.py \
        [--network chip] [--chips 1] [--images 6000] [--tasks 2]
"""

from __future__ import annotations

import argparse
import os
import time

# Spin-waiting OpenMP threads slow shared 2-core runs several-fold (see bench/program.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from memlearn.continual import ContinualConfig, run_continual  # noqa: E402
from memlearn.continual.benchmarks import make_tasks  # noqa: E402
from memlearn.continual.network import network_spec  # noqa: E402


def _rate(memory: str, args: argparse.Namespace) -> float:
    config = ContinualConfig(
        tasks=args.tasks, meta=1.35, network=args.network, memory=memory, chips=args.chips,
        train_size=args.images, test_size=100, curve_points=1, curve_images=100,
    )  # fmt: skip
    start = time.perf_counter()
    result = run_continual(config)
    seconds = time.perf_counter() - start
    return result.steps * config.batch * config.chips / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--network", default="chip")
    parser.add_argument("--chips", type=int, default=1)
    parser.add_argument("--images", type=int, default=6000, help="training images per task")
    parser.add_argument("--tasks", type=int, default=2)
    args = parser.parse_args()
    import torch

    side = network_spec(args.network).side
    make_tasks("permuted-mnist", 1, side, torch.Generator().manual_seed(0), 10, 10)  # warm cache
    chip = _rate("chip", args)
    soft = _rate("software", args)
    print(f"network {args.network}, {args.chips} chip(s), {args.tasks} tasks x {args.images}")
    print(f"chip-simulated memories: {chip:9.1f} training images/s (all chips)")
    print(f"float hidden weights:    {soft:9.1f} training images/s")
    print(f"slow-down: {soft / chip:.1f}x (includes per-task evaluation of both)")


if __name__ == "__main__":
    main()
