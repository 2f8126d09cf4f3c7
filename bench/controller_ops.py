"""Count the tensor operations of the program-and-verify controller, per pulse iteration.

Programs ``--chips`` chips x 2,048 cells to random weights on 8 levels with the hybrid strategy
(bench/program.py's workload, at a size of your choice) and prints the number of pulse
iterations and the aten operations run inside the verify loop, in all and per iteration, with
the most frequent ones.  Operation counts (and instruction counts) do not depend on the load of
the machine, unlike seconds; for instructions run this script under
``valgrind --tool=callgrind``.

    PYTHONPATH=src .venv/bin/python bench/controller_ops.py [--chips 20] [--top 15]
"""

from __future__ import annotations

import argparse
import collections
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode

from memlearn.crossbar import CrossbarArray, DifferentialMapping
from memlearn.devices import controller, strategies


class OpCounter(TorchDispatchMode):
    """Counts the aten operations dispatched while ``active``."""

    def __init__(self) -> None:
        super().__init__()
        self.active = False
        self.ops: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(
        self, func: Any, types: Any, args: tuple = (), kwargs: dict | None = None
    ) -> Any:
        if self.active:
            self.ops[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=20)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(1)
    arr = CrossbarArray("hfo2-mlc", args.chips, 32, 32, generator=torch.Generator().manual_seed(0))
    w = torch.randn(args.chips, 32, 32, generator=torch.Generator().manual_seed(1))
    gp, gm = DifferentialMapping.from_weights(w, arr.preset.levels(8)).to_conductance(w)
    counter, iterations = OpCounter(), [0]
    loop, pulse = strategies.verify_loop, controller.pulse

    def counted_loop(*a: Any, **k: Any) -> None:
        counter.active = True
        try:
            loop(*a, **k)
        finally:
            counter.active = False

    def counted_pulse(*a: Any, **k: Any) -> Any:
        iterations[0] += 1
        return pulse(*a, **k)

    strategies.verify_loop, controller.pulse = counted_loop, counted_pulse
    try:
        with counter:
            arr.program(gp, gm, "hybrid")
    finally:
        strategies.verify_loop, controller.pulse = loop, pulse
    total = sum(counter.ops.values())
    print(f"cells {arr.cells.g.numel():,}, pulse iterations {iterations[0]}, aten ops in the "
          f"verify loop {total:,} ({total / max(iterations[0], 1):.1f} per iteration)")  # fmt: skip
    for name, n in counter.ops.most_common(args.top):
        print(f"  {name:20s} {n:7d}")


if __name__ == "__main__":
    main()
