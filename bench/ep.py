"""Benchmark: training images per second of EP on simulated crossbars, against software EP and
float backprop, in the same run (784-500-10, MNIST training images, one pass over a subset).

Prints images/s for float backprop, float (software) EP and EP on the array for each update
scheme, and the ratios to software EP.  Speed is measured here only, never in tests.
``--profile`` instead profiles one pass of EP on the array (``accumulate``) and prints the share
of the time spent in each memlearn package (own time of its functions; torch calls are charged
to the package that made them).

    MEMLEARN_DATA=/work/shared/data .venv/bin/python bench/ep.py [--images 1000] [--chips 1]
    MEMLEARN_DATA=/work/shared/data .venv/bin/python bench/ep.py --profile --images 500
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
    parser.add_argument("--profile", action="store_true", help="time shares by package")
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


def package_of(filename: str) -> str:
    """``memlearn/<package>`` of a source file, else ``other``."""
    parts = filename.replace("\\", "/").split("/memlearn/")
    if len(parts) < 2 or "/" not in parts[-1]:
        return "other"
    return parts[-1].split("/")[0]


def profile(config: EPConfig) -> None:
    """Print the time share of each memlearn package in one training pass of ``config``
    (torch's Python wrappers count as ``other``)."""
    import cProfile
    import pstats

    config.validate()
    x, y, _, _ = load_images(config)
    generator = torch.Generator().manual_seed(config.seed)
    state = RunState(config=config.as_dict(), net=build(config, generator))
    profiler = cProfile.Profile()
    profiler.enable()
    train_epoch(state, config, x, y, generator)  # the initial programming is not profiled
    profiler.disable()
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    shares: dict[str, float] = {}
    for (filename, _, _), (_, _, own, _, callers) in stats.items():
        if package_of(filename) != "other":
            shares[package_of(filename)] = shares.get(package_of(filename), 0.0) + own
            continue
        # builtins (torch kernels): charge each caller's package in proportion to its calls
        total = sum(c[0] for c in callers.values()) or 1
        for (caller_file, _, _), call in callers.items():
            pkg = package_of(caller_file)
            shares[pkg] = shares.get(pkg, 0.0) + own * call[0] / total
    whole = sum(shares.values())
    for pkg, seconds in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"{pkg:12s} {seconds:8.2f} s {100 * seconds / whole:6.1f} %")


def main(argv: list[str] | None = None) -> None:
    args = parse(argv)
    torch.set_num_threads(args.threads)
    base = {"network": args.network, "train_images": args.images, "test_images": 1,
            "chips": args.chips, "preset": args.preset, "seed": args.seed}  # fmt: skip
    if args.profile:
        profile(EPConfig(**base, rule="ep", substrate="array", update="accumulate"))
        return
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
