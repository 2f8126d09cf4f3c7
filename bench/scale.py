"""Benchmark: on-chip adaptation from 1 to 10,000 simulated chips, with the float floor and,
when it is importable, IBM aihwkit on the same workload.

Workload (issue 20): N Omniglot 5-way 1-shot tasks (with the loop's distorted support copies)
of the evaluation alphabets, the shipped meta-learned 32→16→5 head and its per-layer rates,
5 updates and 6 query passes per task, one chip per task.  For each N:

- memlearn: ``adapt_on_chip`` (deploy with the hybrid program-and-verify, the updates, the
  evaluations, the ledger) on the repaired simulated chips, groups of at most 1,000 chips one
  after another as ``memlearn adapt`` runs them (chips built outside the timing, as
  bench/adapt.py does);
- float: ideal float adaptation of the same tasks, all at once (``software_adapt``);
- aihwkit (optional, never a dependency; bench/scale_aihwkit.py): the same head and rates as
  two ``AnalogLinear`` tiles on its ReRAM preset trained by its ``AnalogSGD``, one network per
  task, looped (``aihwkit``), or ``--pack`` tasks' heads on the diagonal blocks of one pair of
  tiles (``aihwkit-packed``); networks built outside the timing, as memlearn's chips.

Each configuration runs in a fresh process, so its peak resident memory (``ru_maxrss``) is its
own; the features of the tasks are computed once, outside every timing, and shared through a
file.  Times are medians of ``--repeats`` runs (one run from 1,000 chips up); each system's
mean query accuracy before the first update and after the last is printed beside its time (a
check that it learns the same tasks).

    MEMLEARN_DATA=/work/shared/data .venv/bin/python bench/scale.py [--chips 1,10,100,1000,10000]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench/program.py

import torch  # noqa: E402

import scale_aihwkit  # noqa: E402  (bench/, beside this script)
from memlearn.devices.engines import ENGINES  # noqa: E402
from memlearn.meta.inner import HeadTasks  # noqa: E402
from memlearn.onchip.deploy import DeployConfig, build_chip, deploy, sample_features  # noqa: E402
from memlearn.onchip.head import software_adapt  # noqa: E402
from memlearn.onchip.loop import adapt_on_chip  # noqa: E402
from memlearn.onchip.memory import format_bytes, peak_rss  # noqa: E402
from memlearn.onchip.rounds import ROUND_CHIPS, group_seed  # noqa: E402
from memlearn.onchip.run import head_weights  # noqa: E402

SYSTEMS = ("memlearn", "float", "aihwkit", "aihwkit-packed")
FIELDS = ("support_x", "support_y", "query_x", "query_y")
Run = tuple[float, torch.Tensor]  # seconds, query accuracy [tasks, steps + 1]


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", default="1,10,100,1000,10000", help="comma-separated counts")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="runs per count below 1,000")
    parser.add_argument("--torch-device", default=None, help="memlearn's chips: cpu or cuda")
    parser.add_argument("--engine", choices=ENGINES, default="torch",
                        help="memlearn's program-and-verify engine")  # fmt: skip
    parser.add_argument("--pack", type=int, default=4, help="aihwkit-packed: tasks per tile")
    parser.add_argument("--json", action="store_true", help="one JSON object on stdout")
    parser.add_argument("--child", nargs=3, metavar=("SYSTEM", "CHIPS", "FEATURES"),
                        help=argparse.SUPPRESS)  # fmt: skip
    return parser.parse_args(argv)


def _config(args: argparse.Namespace, chips: int, seed: int) -> DeployConfig:
    return DeployConfig(
        chips=chips, tasks=chips, steps=args.steps, weight_max="checkpoint", seed=seed,
        torch_device=args.torch_device, engine=args.engine,
    )  # fmt: skip


def _groups(n: int) -> list[tuple[int, int]]:
    """``(group, chips)`` of ``n`` chips in groups of at most ROUND_CHIPS (as adapt runs)."""
    return [(g, min(ROUND_CHIPS, n - start)) for g, start in enumerate(range(0, n, ROUND_CHIPS))]


def features(args: argparse.Namespace, n: int, path: str) -> None:
    """The head inputs of the ``n`` tasks, group by group, saved to ``path`` (not timed)."""
    parts = []
    with deploy(_config(args, 1, args.seed)) as d:
        net = d.net
        info = {"weights": head_weights(net), "lrs": d.inner_lrs, "weight_max": d.weight_max}
    for g, chips in _groups(n):  # as adapt samples them: features, a few hundred tasks at a time
        parts.append(sample_features(_config(args, chips, group_seed(args.seed, g)), net)[1])
    tasks = {f: torch.cat([getattr(p, f) for p in parts]) for f in FIELDS}
    torch.save({"tasks": tasks, **info}, path)


def _tasks(saved: dict, n: int) -> HeadTasks:
    """The first ``n`` saved tasks (the file holds those of the largest count)."""
    return HeadTasks(**{f: saved["tasks"][f][:n] for f in FIELDS})


def run_memlearn(args: argparse.Namespace, n: int, saved: dict) -> Run:
    tasks, seconds, start, curves = _tasks(saved, n), 0.0, 0, []
    with deploy(_config(args, 1, args.seed)) as d:  # layout, levels, full scale (not timed)
        first = d
    for g, chips in _groups(n):
        config = _config(args, chips, group_seed(args.seed, g))
        chip = build_chip(config, first.layout, first.levels, first.spare_pairs)  # as adapt's
        adapt = dataclasses.replace(first.adapt_config(), seed=config.seed)
        part = HeadTasks(*(getattr(tasks, f)[start : start + chips] for f in FIELDS))
        t0 = time.perf_counter()
        result = adapt_on_chip(chip, part, saved["weights"], saved["lrs"], adapt)
        seconds += time.perf_counter() - t0
        curves.append(result.accuracy)
        chip.close()
        start += chips
    return seconds, torch.cat(curves)


def run_float(args: argparse.Namespace, n: int, saved: dict) -> Run:
    tasks = _tasks(saved, n)
    t0 = time.perf_counter()
    accuracy = software_adapt(tasks, saved["weights"], saved["lrs"], args.steps)[0]
    return time.perf_counter() - t0, accuracy


def run_aihwkit(args: argparse.Namespace, n: int, saved: dict, pack: int = 1) -> Run:
    """aihwkit's analog head on its ReRAM preset, ``pack`` tasks per network (see
    bench/scale_aihwkit.py); networks built outside the timing, ROUND_CHIPS tasks at a time."""
    return scale_aihwkit.run(_tasks(saved, n), saved["weights"], saved["lrs"],
                             saved["weight_max"], args.steps, pack, ROUND_CHIPS)  # fmt: skip


def run_aihwkit_packed(args: argparse.Namespace, n: int, saved: dict) -> Run:
    """aihwkit with ``--pack`` tasks' heads on the diagonal blocks of one pair of tiles."""
    return run_aihwkit(args, n, saved, args.pack)


RUNS = {"memlearn": run_memlearn, "float": run_float, "aihwkit": run_aihwkit,
        "aihwkit-packed": run_aihwkit_packed}  # fmt: skip


def child(args: argparse.Namespace) -> None:
    system, n, path = args.child[0], int(args.child[1]), args.child[2]
    torch.set_num_threads(args.threads)
    if system == "memlearn" and args.engine == "fused":
        _warm_fused(args.threads)
    saved = torch.load(path, weights_only=False)
    repeats = args.repeats if n < 1000 else 1
    runs = [RUNS[system](args, n, saved) for _ in range(repeats)]
    accuracy = runs[-1][1].float().mean(dim=0)  # over the tasks, per step
    print(json.dumps({"seconds": statistics.median(r[0] for r in runs), "peak_bytes": peak_rss(),
                      "accuracy": [round(float(a), 4) for a in accuracy]}))  # fmt: skip


def measure(args: argparse.Namespace, system: str, n: int, path: str) -> dict | str:
    cmd = [sys.executable, __file__, "--child", system, str(n), path,
           "--steps", str(args.steps), "--threads", str(args.threads),
           "--seed", str(args.seed), "--repeats", str(args.repeats),
           "--pack", str(args.pack), "--engine", args.engine]  # fmt: skip
    if args.torch_device:
        cmd += ["--torch-device", args.torch_device]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        return out.stderr.strip().splitlines()[-1] if out.stderr.strip() else "failed"
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    args = parse()
    if args.child:
        return child(args)
    counts = [int(c) for c in args.chips.split(",")]
    skip = scale_aihwkit.unavailable()
    if skip:
        print(skip, file=sys.stderr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "features.pt")
        features(args, max(counts), path)
        for n in counts:
            row: dict = {"chips": n}
            for system in SYSTEMS:
                if system.startswith("aihwkit") and skip:
                    continue
                row[system] = measure(args, system, n, path)
            rows.append(row)
            if not args.json:
                print(_line(row, args.engine), flush=True)
    if args.json:
        print(json.dumps({"threads": args.threads, "steps": args.steps, "pack": args.pack,
                          "engine": args.engine, "rows": rows}))  # fmt: skip


def _warm_fused(threads: int) -> None:
    """numba's threads, and the fused kernel compiled or loaded from its cache (untimed)."""
    import numba

    from memlearn.devices import program

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    program("hfo2-mlc", torch.full((8,), 50e-6), "hybrid", engine="fused")


def _line(row: dict, engine: str = "torch") -> str:
    """One row: seconds, adaptations/s, peak memory and query accuracy (before the first update
    → after the last) per system, and the ratios."""
    n, cells = row["chips"], [f"{row['chips']:>6} chips"]
    for system in SYSTEMS:
        r, name = row.get(system), f"memlearn ({engine} engine)" if system == "memlearn" else system
        if isinstance(r, dict):
            acc = r["accuracy"]
            cells.append(f"{name} {r['seconds']:.4f} s ({n / r['seconds']:.3g}/s, "
                         f"peak {format_bytes(r['peak_bytes'])}, "
                         f"acc {acc[0]:.3f}→{acc[-1]:.3f})")  # fmt: skip
        elif r is not None:
            cells.append(f"{name}: {r}")
    mem, flt = row.get("memlearn"), row.get("float")
    if isinstance(mem, dict) and isinstance(flt, dict):
        cells.append(f"memlearn/float {mem['seconds'] / flt['seconds']:.1f}x")
    for system in SYSTEMS[2:]:
        ai = row.get(system)
        if isinstance(mem, dict) and isinstance(ai, dict):
            cells.append(f"{system}/memlearn {ai['seconds'] / mem['seconds']:.2f}x")
    return " | ".join(cells)


if __name__ == "__main__":
    main()
