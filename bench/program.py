"""Benchmark: program 1,000 chips x 2,048 cells with the hybrid strategy, then run VMMs.

Each chip holds a 32 x 32 matrix of differential pairs (2,048 cells = two 32x32 tiles, the
reference chip's 2 kbit), with random weights mapped to 8 levels.  Prints cells/s for the
pulse-by-pulse hybrid program-and-verify and VMMs/s (one VMM = one input vector on one chip).

    .venv/bin/python bench/program.py [--chips 1000] [--levels 8] [--batch 64] [--threads 2]
        [--engine torch|fused]

``--threads`` sets torch's intra-op threads and numba's (default 2).  ``--engine`` picks the
program-and-verify engine (``memlearn.devices.engines``); the fused engine's kernel is
compiled (or loaded from numba's cache) by a small warm-up call outside the timing, and the
programming time is split into the kernel's and the rest's.  The torch engine's pulse loop
runs ~100 short element-wise kernels per pulse; with OpenMP's default spin-waiting, a 2-thread
run on a 2-core machine shared with other jobs spins against them and gets ~8x slower, so this
script sets ``OMP_WAIT_POLICY=PASSIVE`` (unless already set) before torch starts its thread pool.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede the OpenMP runtime's start

import torch  # noqa: E402

from memlearn.crossbar import CrossbarArray, DifferentialMapping
from memlearn.devices.engines import ENGINES


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=1000)
    parser.add_argument("--levels", type=int, default=8)
    parser.add_argument("--strategy", default="hybrid")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--vmm-repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", choices=ENGINES, default="torch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    kernel_s: list[float] = []
    if args.engine == "fused":
        t0 = time.perf_counter()
        _warm_fused(args.threads)
        t_warm = time.perf_counter() - t0
        _time_kernel(kernel_s)

    t0 = time.perf_counter()
    gen = torch.Generator().manual_seed(args.seed)
    arr = CrossbarArray("hfo2-mlc", args.chips, 32, 32, generator=gen, engine=args.engine)
    t_build = time.perf_counter() - t0
    w = torch.randn(args.chips, 32, 32, generator=torch.Generator().manual_seed(args.seed + 1))
    gp, gm = DifferentialMapping.from_weights(w, arr.preset.levels(args.levels)).to_conductance(w)
    cells = arr.cells.g.numel()

    t0 = time.perf_counter()
    report = arr.program(gp, gm, args.strategy)
    t_prog = time.perf_counter() - t0
    pulses = float((report.set_pulses + report.reset_pulses).sum())

    volts = torch.rand(args.chips, args.batch, 32) * arr.v_read
    arr.multiply(volts)  # warm-up
    t0 = time.perf_counter()
    for _ in range(args.vmm_repeats):
        arr.multiply(volts)
    t_vmm = time.perf_counter() - t0
    vmms = args.chips * args.batch * args.vmm_repeats

    print(f"chips {args.chips}, cells {cells:,} ({cells // args.chips} per chip), "
          f"strategy {args.strategy}, engine {args.engine}, {args.levels} levels, "
          f"threads {args.threads}, "
          f"OMP_WAIT_POLICY={os.environ.get('OMP_WAIT_POLICY')}")  # fmt: skip
    print(f"array construction (cell sampling): {t_build:.2f} s")
    print(f"programming: {t_prog:.2f} s  ->  {cells / t_prog:,.0f} cells/s "
          f"(target: <= 1 s for 2,048,000 cells on 2 cores)")  # fmt: skip
    if kernel_s:
        print(f"  fused kernel {sum(kernel_s):.2f} s, the rest (cells, tallies, wear, relaxation, "
              f"ledger) {t_prog - sum(kernel_s):.2f} s; kernel compiled or loaded from numba's "
              f"cache before the timing in {t_warm:.1f} s")  # fmt: skip
    print(f"  pulses per cell {pulses / cells:.2f}, verify reads per cell "
          f"{float(report.verify_reads.sum()) / cells:.2f}, failed "
          f"{float(report.failed_cells.sum()) / cells:.2%}, energy per cell "
          f"{float(report.energy_j.sum()) / cells * 1e12:.1f} pJ")  # fmt: skip
    print(f"VMM (32x32 pairs, batch {args.batch}, noise + 8-bit DAC/ADC): {t_vmm:.2f} s for "
          f"{vmms:,} VMMs  ->  {vmms / t_vmm:,.0f} VMMs/s")  # fmt: skip


def _warm_fused(threads: int) -> None:
    """numba's threads, and the fused kernel compiled or loaded from its cache (untimed)."""
    import numba

    from memlearn.devices import program

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    program("hfo2-mlc", torch.full((8,), 50e-6), "hybrid", engine="fused")


def _time_kernel(seconds: list[float]) -> None:
    """Record the fused kernel's wall time (s) of each call in ``seconds``."""
    from memlearn.devices import fused

    kernel = fused.program_cells

    def timed(*args: object) -> None:
        t0 = time.perf_counter()
        kernel(*args)
        seconds.append(time.perf_counter() - t0)

    fused.program_cells = timed


if __name__ == "__main__":
    main()
