"""``memlearn reproduce [STUDY]...``: the reference studies, each beside its published trend.

Without a study name all six run; ``memlearn reproduce overlap window`` runs those two.  The
output directory gets every figure (PNG), the data (CSV, JSON), ``run.json`` (config, seeds,
versions, wall times) and ``report.md`` / ``report.html``.  The sweep options (``--levels``,
``--ratios``, ...) replace the quick/full settings of the studies they apply to.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from memlearn.cli.common import progress_option, with_config
from memlearn.cli.errors import user_errors
from memlearn.cli.onchip_options import CHECKPOINT_OPTION, JSON_OPTION
from memlearn.data.augment import DEFAULT_SUPPORT_COPIES
from memlearn.devices.preset import DEFAULT_PRESET
from memlearn.experiments import DEFAULT_STUDIES, STUDY_NAMES
from memlearn.onchip.policies import DEFAULT_POLICY

# option -> the studies whose keyword argument it sets (and that keyword)
_APPLIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "--levels": ("levels", ("overlap", "window", "energy")),
    "--ratios": ("ratios", ("overlap",)),
    "--spans-us": ("spans_us", ("window",)),
    "--strategy": ("strategy", ("overlap", "window")),
    "--tasks": ("tasks", ("overlap", "window", "strategies", "retention", "energy")),
    "--cells": ("cells", ("strategies", "retention")),
    "--task-sets": ("task_sets", ("curves",)),
    "--bake-hours": ("bake_hours", ("retention",)),
    "--bake-celsius": ("bake_celsius", ("retention",)),
    "--drift-factors": ("drift_factors", ("retention",)),
}


def _ints(name: str, text: str | None) -> tuple[int, ...] | None:
    """Option ``name``'s comma-separated level counts, each in [2, 64] (``None``: not given)."""
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise ValueError(f"{name} must be comma-separated integers, got {text!r}") from exc
    if not values or min(values) < 2 or max(values) > 64:
        raise ValueError(f"{name} must be integers in [2, 64], got {text!r}")
    return values


def _floats(name: str, text: str | None) -> tuple[float, ...] | None:
    """Option ``name``'s comma-separated numbers, at least two, each > 0 (``None``: not given)."""
    if text is None:
        return None
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise ValueError(f"{name} must be comma-separated numbers, got {text!r}") from exc
    if len(values) < 2 or min(values) <= 0:
        raise ValueError(f"{name} must be at least two numbers > 0, got {text!r}")
    return values


def _at_least(name: str, value: int | None, low: int) -> int | None:
    """``value`` checked to be at least ``low`` (``None``: not given)."""
    if value is not None and value < low:
        raise ValueError(f"{name} must be >= {low}, got {value}")
    return value


def _check_plain_options(
    strategy: str | None,
    support_copies: int,
    checkpoint: Path | None,
    root: Path | None,
    bake_hours: float | None,
    bake_celsius: float | None,
) -> None:
    """The options that are not sweeps, checked before any folder is made or data is read."""
    from memlearn.bounds import check_celsius, check_hours
    from memlearn.devices.programming import STRATEGIES
    from memlearn.onchip.run import MAX_SUPPORT_COPIES

    if strategy is not None and strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}")
    if not 0 <= support_copies <= MAX_SUPPORT_COPIES:
        raise ValueError(
            f"--support-copies must be in [0, {MAX_SUPPORT_COPIES}], got {support_copies}"
        )
    if checkpoint is not None and not checkpoint.is_file():
        raise ValueError(f"--checkpoint {checkpoint} does not exist (or is not a file)")
    if root is not None and not root.is_dir():
        raise ValueError(f"--root {root} is not a folder")
    if bake_hours is not None:
        check_hours(bake_hours, "--bake-hours")
    if bake_celsius is not None:
        check_celsius(bake_celsius, "--bake-celsius")


def study_overrides(studies: list[str], given: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Per-study keyword arguments from the sweep options that were given (not ``None``)."""
    overrides: dict[str, dict[str, Any]] = {}
    for option, value in given.items():
        if value is None:
            continue
        keyword, targets = _APPLIES[option]
        hit = [s for s in studies if s in targets]
        if not hit:
            raise ValueError(
                f"{option} applies to {', '.join(targets)}; none of them is run "
                f"({', '.join(studies)})"
            )
        for s in hit:
            overrides.setdefault(s, {})[keyword] = value
    return overrides


@dataclass(frozen=True)
class SweepOptions:
    """The sweep options as given on the command line (``None``: not given), in the order of
    :data:`_APPLIES`; :meth:`parsed` checks and parses them."""

    levels: str | None
    ratios: str | None
    spans_us: str | None
    strategy: str | None
    tasks: int | None
    cells: int | None
    task_sets: int | None
    bake_hours: float | None
    bake_celsius: float | None
    drift_factors: str | None

    def parsed(self) -> dict[str, Any]:
        """Option name -> parsed value (``None``: not given), for :func:`study_overrides`."""
        return {
            "--levels": _ints("--levels", self.levels),
            "--ratios": _floats("--ratios", self.ratios),
            "--spans-us": _floats("--spans-us", self.spans_us),
            "--strategy": self.strategy,
            "--tasks": _at_least("--tasks", self.tasks, 1),
            "--cells": _at_least("--cells", self.cells, 2),
            "--task-sets": _at_least("--task-sets", self.task_sets, 2),
            "--bake-hours": self.bake_hours,
            "--bake-celsius": self.bake_celsius,
            "--drift-factors": _floats("--drift-factors", self.drift_factors),
        }


def _study_names(studies: list[str] | None) -> list[str]:
    """The studies asked for (each once, in order; default :data:`DEFAULT_STUDIES`), checked."""
    from memlearn.experiments.reproduce import STUDIES

    names = list(dict.fromkeys(studies)) if studies else list(DEFAULT_STUDIES)
    unknown = [s for s in names if s not in STUDIES]
    if unknown:
        raise ValueError(f"unknown study {unknown[0]!r}; allowed: {', '.join(STUDIES)}")
    return names


def _echo_result(result: Any, as_json: bool, record: dict[str, Any]) -> None:
    """Print the run's outcome: one JSON object (with ``record`` as its config), or a line a
    study and a summary."""
    if as_json:
        payload = {
            "out": str(result.out_dir),
            "report": str(result.report_md),
            "report_html": str(result.report_html),
            "seconds": result.seconds,
            "studies": [o.as_dict() for o in result.outcomes],
        }
        typer.echo(json.dumps(with_config(payload, record)))
        return
    for o in result.outcomes:
        mark = "reproduced" if o.reproduced else "NOT reproduced"
        typer.echo(f"{o.key:11s} {mark:15s} {o.observed}")
    n_ok = sum(o.reproduced for o in result.outcomes)
    typer.echo(
        f"{n_ok} of {len(result.outcomes)} published trends reproduced in {result.seconds:.0f} s; "
        f"report: {result.report_md} ({result.report_html.name} is self-contained)"
    )


# The command's arguments and options, declared here so that its signature stays short.
_STUDIES_ARG = typer.Argument(
    None,
    metavar="STUDY",
    help=f"Studies to run: {', '.join(STUDY_NAMES)} (default: {', '.join(DEFAULT_STUDIES)}).",
    show_default=False,
)
# the run: what is simulated, where it runs, what it reads and writes
_QUICK = typer.Option(False, "--quick", help="Small sweeps (a few minutes on 2 cores).")
_PRESET = typer.Option(
    DEFAULT_PRESET, "--preset", help="Device preset name or file (multi-level, rram)."
)
_OUT = typer.Option(
    None,
    "--out",
    help="Directory to write (default memlearn-reproduce, or memlearn-reproduce-STUDY for "
    "one study); a previous reproduction there is replaced when the run succeeds.",
)
_BACKEND = typer.Option("local", "--backend", help="Where sweep points run: local, ray.")
_RAY_ADDRESS = typer.Option(
    None, "--ray-address", help="Ray cluster to join (default: RAY_ADDRESS, else a local Ray)."
)
_SEED = typer.Option(0, "--seed", help="Seed of the tasks and of every simulated chip.")
_POLICY = typer.Option(
    DEFAULT_POLICY,
    "--policy",
    help="On-chip update policy: accumulate (memlearn adapt's default: a float copy, "
    "nearest level), stochastic (rounding), verify (nearest level), threshold, manhattan.",
)
_SUPPORT_COPIES = typer.Option(
    DEFAULT_SUPPORT_COPIES,
    "--support-copies",
    help="Distorted copies of each support image the loop also learns from (as memlearn "
    "adapt; 0: the shots alone).",
)
_ROOT = typer.Option(None, "--root", help="Data root (default: MEMLEARN_DATA).")
# the sweeps: overlap, window, energy
_LEVELS = typer.Option(
    None, "--levels", help="Levels swept by overlap, window, energy (e.g. 4,8,16)."
)
_RATIOS = typer.Option(
    None, "--ratios", help="overlap: target spread/spacing σ/Δ (e.g. 0.05,0.2,0.5,1)."
)
_SPANS_US = typer.Option(
    None, "--spans-us", help="window: G_max - G_min in µS (default: fractions of the preset's)."
)
_STRATEGY = typer.Option(
    None, "--strategy", help="Write strategy of overlap and window (default hybrid)."
)
_TASKS = typer.Option(None, "--tasks", help="Tasks per point, one chip each.")
# the sweeps: strategies, retention, curves
_CELLS = typer.Option(None, "--cells", help="strategies, retention: cells characterised per level.")
_TASK_SETS = typer.Option(
    None, "--task-sets", help="curves: task sets, each on its own chip (default 16)."
)
_BAKE_HOURS = typer.Option(None, "--bake-hours", help="retention: bake (h).")
_BAKE_CELSIUS = typer.Option(None, "--bake-celsius", help="retention: bake temperature (°C).")
_DRIFT_FACTORS = typer.Option(
    None, "--drift-factors", help="retention: relax_log x k at the bake (e.g. 1,4,16; 1 kept)."
)
# the output
_QUIET = typer.Option(False, "--quiet", hidden=True)


def reproduce_cmd(
    studies: list[str] | None = _STUDIES_ARG,
    quick: bool = _QUICK,
    preset: str = _PRESET,
    out: Path | None = _OUT,
    backend: str = _BACKEND,
    ray_address: str | None = _RAY_ADDRESS,
    seed: int = _SEED,
    policy: str = _POLICY,
    support_copies: int = _SUPPORT_COPIES,
    checkpoint: Path | None = CHECKPOINT_OPTION,
    root: Path | None = _ROOT,
    levels: str | None = _LEVELS,
    ratios: str | None = _RATIOS,
    spans_us: str | None = _SPANS_US,
    strategy: str | None = _STRATEGY,
    tasks: int | None = _TASKS,
    cells: int | None = _CELLS,
    task_sets: int | None = _TASK_SETS,
    bake_hours: float | None = _BAKE_HOURS,
    bake_celsius: float | None = _BAKE_CELSIUS,
    drift_factors: str | None = _DRIFT_FACTORS,
    as_json: bool = JSON_OPTION,
    progress: bool = progress_option(),
    quiet: bool = _QUIET,
) -> None:
    """Reproduce the reference studies and write figures, data and a report beside the
    published trends (REFERENCE.md §1).

    Studies: overlap (1: overlap between adjacent states vs accuracy, for several numbers of
    levels); window (2: memory window x levels, heatmap); strategies (3: the write strategies'
    histograms, level errors, pulses, energy, accuracy); retention (4: before/after a bake,
    iterative SET vs hybrid, over a sweep of the bake's drift); curves (5: learning curves over
    16 task sets on 16 chips, with ideal software); energy (6: energy and writes per adaptation
    vs levels and strategy); spirit (7: the SPIRIT spiking chip on SLC cells vs window, spread,
    time and reads).
    """
    import torch

    from memlearn.experiments.reproduce import reproduce

    # The sweep points are many small tensor operations: one intra-op thread is as fast as two
    # on a quiet machine and ~10x faster on a busy one (OpenMP threads spin-wait for a core).
    torch.set_num_threads(1)
    sweeps = SweepOptions(levels, ratios, spans_us, strategy, tasks, cells, task_sets,
                          bake_hours, bake_celsius, drift_factors)  # fmt: skip
    with user_errors():
        if quiet:
            typer.echo("note: --quiet is deprecated; use --no-progress", err=True)
            progress = False
        names = _study_names(studies)
        if seed < 0:
            raise ValueError(f"--seed must be >= 0, got {seed}")
        _check_plain_options(strategy, support_copies, checkpoint, root, bake_hours, bake_celsius)
        overrides = study_overrides(names, sweeps.parsed())
        if out is None:
            out = Path("memlearn-reproduce" + (f"-{names[0]}" if len(names) == 1 else ""))
        settings = {"quick": quick, "preset": preset, "backend": backend, "seed": seed,
                    "policy": policy, "support_copies": support_copies}  # fmt: skip
        result = reproduce(
            out, studies=names, **settings, ray_address=ray_address, checkpoint=checkpoint,
            root=root, overrides=overrides, progress=progress and not as_json,
            command=" ".join(["memlearn", *sys.argv[1:]]),
        )  # fmt: skip
    record = {
        "studies": names, **settings,
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "root": None if root is None else str(root), "overrides": overrides,
    }  # fmt: skip
    _echo_result(result, as_json, record)


def register(app: typer.Typer) -> None:
    """Attach ``reproduce`` to the main application."""
    app.command("reproduce")(reproduce_cmd)
