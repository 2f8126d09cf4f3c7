"""Benchmark: training images per second of EP on simulated crossbars, against software EP and
float backprop, in the same run (784-500-10, MNIST training images, one pass over a subset).

Prints images/s for float backprop, float (software) EP and EP on the array for each update
scheme, and the ratios to software EP.  Speed is measured here only, never in tests.

    MEMLEARN_DATA=/work/shared/data .venv/bin/python bench/ep.py [--images 1000] [--chips 1]
"""

from __future__ import annotations

import argparse
import os
import time

# Spin-waiting OpenMP threads slow shared 2-core runs several-fold (see bench/program.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

from memlearn.ep.config import UPDATES, EPConfig  # noqa: E402
from memlearn.ep.run import RunState, build, load_images, train_epoch  # noqa: E402


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="training images per case")
    parser.add_argument("--network", default="784-500-10")
    parser.add_argument("--chips", type=int, default=1)
    parser.add_argument("--preset", default="hfo2-mlc")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def images_per_second(config: EPConfig) -> float:
    """Images/s of one pass over ``config.train_images`` images (building the network and
    programming the initial weights excluded)."""
    config.validate()
    x, y, _, _ = load_images(config)
    generator = torch.Generator().manual_seed(config.seed)
    state = RunState(config=config.as_dict(), net=build(config, generator))
    started = time.perf_counter()
    train_epoch(state, config, x, y, generator)
    return len(x) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    base = {"network": args.network, "train_images": args.images, "test_images": 1,
            "chips": args.chips, "preset": args.preset, "seed": args.seed}  # fmt: skip
    cases = [("float backprop", {"rule": "backprop"}), ("software EP", {"rule": "ep"})]
    cases += [(f"EP on array, {u}", {"rule": "ep", "substrate": "array", "update": u})
              for u in UPDATES]  # fmt: skip
    rates = {}
    for name, extra in cases:
        rates[name] = images_per_second(EPConfig(**base, **extra))
        print(f"{name:28s} {rates[name]:10.1f} images/s", flush=True)
    soft = rates["software EP"]
    for name, rate in rates.items():
        print(f"{name:28s} {rate / soft:8.3f} x software EP")


if __name__ == "__main__":
    main()
