"""``memlearn adapt`` and ``memlearn demo``: on-chip few-shot adaptation of the meta-trained model.

Both sample N-way K-shot tasks from held-out Omniglot alphabets, program the model's FC layers
into chips (simulated, or a bench with ``--bench HOST:PORT``), adapt every task on its chip with
the computer in the loop and, in the same run, in ideal float for comparison.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import typer

from memlearn.cli.common import (
    bar_disabled,
    deprecated_alias,
    progress_bar,
    progress_option,
    split_help,
    with_config,
)
from memlearn.cli.errors import user_errors
from memlearn.data.augment import DEFAULT_SUPPORT_COPIES
from memlearn.devices.programming import STRATEGIES
from memlearn.onchip.deploy import DEFAULT_PRESET, DeployConfig, record
from memlearn.onchip.loop import AdaptResult
from memlearn.onchip.policies import DEFAULT_POLICY, POLICIES
from memlearn.onchip.run import ci95, deployment_summary, summarise

GAP_CHIPS = 1000  # [E] adapt-gap's chips simulated at once (a round of 1000 tasks fits in memory)

# Options shared by `adapt`, `adapt-gap` and `demo` (Typer reads them, never changes them).
_CHECKPOINT = typer.Option(
    None, "--checkpoint", help="Meta-trained checkpoint (default: the shipped model)."
)
_PRESET = typer.Option(
    None, "--preset", help=f"Device preset name or file (default: {DEFAULT_PRESET})."
)
_STRATEGY = typer.Option("hybrid", "--strategy", help=f"Write strategy: {', '.join(STRATEGIES)}.")
_POLICY = typer.Option(DEFAULT_POLICY, "--policy", help=f"Update policy: {', '.join(POLICIES)}.")
_WAYS = typer.Option(5, "--ways", help="Classes per task (must match the model).")
_SHOTS = typer.Option(1, "--shots", help="Support images per class.")
_STEPS = typer.Option(5, "--steps", help="On-chip gradient updates per task.")
_SPLIT = typer.Option(None, "--split", help=split_help())
_LEVELS = typer.Option(
    None, "--levels", help="Conductance levels per cell (default: the model's, else 8)."
)
_WEIGHT_MAX = typer.Option(
    "auto",
    "--weight-max",
    help="Full-scale weight per layer: checkpoint, accuracy (calibrated on training tasks), "
    "peak, or auto (the checkpoint's when it was trained for this preset, strategy and levels; "
    "else accuracy, starting from the checkpoint's).",
)
_SUPPORT_COPIES = typer.Option(
    DEFAULT_SUPPORT_COPIES,
    "--support-copies",
    help="Distorted copies of each support image the loop also learns from (0: the shots alone).",
)
_SPARE_PAIRS = typer.Option(
    None,
    "--spare-pairs",
    help="Spare column pairs of the output array: a test pass puts each output on the "
    "healthiest pairs (default: the rest of its tile; 0: no repair).",
)
_SEED = typer.Option(0, "--seed", help="Seed of the tasks, the chips and the loop.")
_ROOT = typer.Option(None, "--root", help="Data root (default: MEMLEARN_DATA, then the cache).")
_JSON = typer.Option(False, "--json", help="Print one JSON object on stdout.")
_PROGRESS = progress_option("Show a progress bar on stderr (never with --json).")


def run(
    config: DeployConfig, disable: bool | None = True
) -> tuple[dict[str, Any], AdaptResult, dict[str, Any]]:
    """Run one adaptation study; returns the JSON summary, the per-task result and run info.
    ``disable``: tqdm's, of the progress bar over the rounds' steps.  The chips are simulated
    in rounds within ``config.max_memory`` (:func:`~memlearn.onchip.rounds.adapt_in_rounds`)."""
    from memlearn.onchip.memory import peak_rss
    from memlearn.onchip.rounds import adapt_in_rounds, plan_run

    plan = plan_run(config)
    seen: dict[str, Any] = {}

    def first(deployment: Any) -> None:
        seen["record"], seen["deployment"] = record(deployment), deployment

    started = time.perf_counter()
    with progress_bar(plan.evaluations(config.steps), "adapt", disable) as bar:
        result = adapt_in_rounds(config, plan, progress=bar.update, on_first=first)
    elapsed = time.perf_counter() - started
    deployment = seen["deployment"]
    summary = {
        "preset": deployment.preset or config.preset_name,
        "strategy": config.strategy,
        "ways": int(deployment.net.fc2.weight.shape[0]),
        "shots": config.shots,
        "steps": config.steps,
        "tasks": config.tasks,
        "chips": config.n_chips if config.bench is None else deployment.chip.n_chips,
        **summarise(result),
        "memory": {
            "budget_bytes": plan.budget,
            "chips_per_round": plan.chips_per_round,
            "rounds": len(plan.groups),
            "peak_bytes": peak_rss(),
        },
    }
    run_info = {
        **seen["record"],
        "seconds": elapsed,
        "deployment": deployment_summary(result),
        "software_accuracy_ci95": ci95(result.software_accuracy[:, -1]),
    }
    return summary, result, run_info


def _table(summary: dict[str, Any], result: AdaptResult, info: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    steps = summary["steps"]
    energy = sum(v for v in result.energy_j.values()) if result.energy_j else None
    table = Table(
        title=(
            f"On-chip adaptation: {summary['ways']}-way {summary['shots']}-shot, "
            f"{summary['tasks']} tasks on {summary['chips']} chips ({summary['preset']}, "
            f"{summary['strategy']}, policy {info['policy']}, split {info['split']}, "
            f"{info['support_copies']} distorted copies of each support image)"
        )
    )
    for col in ("step", "on-chip acc %", "software acc %", "loss", "cells written", "pulses"):
        table.add_column(col, justify="right")
    table.add_column("energy µJ", justify="right")
    for k in range(steps + 1):
        row = [
            str(k),
            f"{100 * summary['accuracy_by_step'][k]:.2f}",
            f"{100 * summary['software_accuracy_by_step'][k]:.2f}",
            f"{float(result.loss[:, k].mean()):.3f}",
        ]
        if k == 0:
            row += ["–", "–", "–"]
        else:
            row += [
                f"{float(result.cells_written[:, k - 1].double().mean()):.1f}",
                f"{float(result.pulses[:, k - 1].double().mean()):.1f}",
                f"{1e6 * float(energy[:, k - 1].mean()):.3f}" if energy is not None else "–",
            ]
        table.add_row(*row)
    console = Console()
    console.print(table)
    breakdown = ", ".join(f"{k} {1e6 * v:.3f}" for k, v in summary["energy_breakdown_j"].items())
    console.print(
        f"after {steps} updates: {100 * summary['accuracy_by_step'][-1]:.2f} % "
        f"± {100 * summary['accuracy_ci95']:.2f} (95 % CI), software "
        f"{100 * summary['software_accuracy_by_step'][-1]:.2f} %"
    )
    console.print(
        f"per adaptation: {summary['writes_per_adaptation']:.1f} cells written, "
        f"{summary['pulses_per_adaptation']:.1f} pulses, "
        f"{1e6 * summary['energy_per_adaptation_j']:.3f} µJ ({breakdown} µJ)"
    )
    dep = info["deployment"]
    console.print(
        f"deployment (not counted above): {dep['cells_written']:.0f} cells, "
        f"{1e6 * dep['energy_j']:.3f} µJ per chip; full-scale weights "
        f"{[round(w, 4) for w in info['weight_max']]} ({info['weight_max_source']})"
    )
    if info.get("repair_test_energy_j") is not None:
        console.print(
            f"column repair (not counted above): {info['spare_pairs']} spare pairs, "
            f"{info['repair_faulty_pairs']:.2f} faulty pairs found per chip, test pass "
            f"{1e6 * info['repair_test_energy_j']:.3f} µJ per chip"
        )
    if "accuracy_after_bake" in summary:
        ratio = summary["accuracy_after_bake"] / max(summary["accuracy_by_step"][-1], 1e-12)
        console.print(
            f"after the bake: {100 * summary['accuracy_after_bake']:.2f} % "
            f"({100 * ratio:.1f} % of the pre-bake accuracy)"
        )
    from memlearn.onchip.memory import format_bytes

    mem = summary["memory"]
    console.print(
        f"[dim]{info['seconds']:.1f} s; {mem['rounds']} round(s) of up to "
        f"{mem['chips_per_round']} chips within {format_bytes(mem['budget_bytes'])}, peak "
        f"memory {format_bytes(mem['peak_bytes'])}[/dim]"
    )


def adapt(
    checkpoint: Path | None = _CHECKPOINT,
    preset: str | None = _PRESET,
    strategy: str = _STRATEGY,
    policy: str = _POLICY,
    chips: int | None = typer.Option(
        None, "--chips", help="Simulated chips (default 100; tasks run in rounds)."
    ),
    tasks: int = typer.Option(100, "--tasks", help="New tasks to learn."),
    ways: int = _WAYS,
    shots: int = _SHOTS,
    steps: int = _STEPS,
    split: str | None = _SPLIT,
    levels: int | None = _LEVELS,
    bake_hours: float = typer.Option(0.0, "--bake-hours", help="Bake the adapted chips (hours)."),
    bake_celsius: float = typer.Option(150.0, "--bake-celsius", help="Bake temperature (°C)."),
    seed: int = _SEED,
    root: Path | None = _ROOT,
    bench: str | None = typer.Option(
        None,
        "--bench",
        help="Drive a bench (HOST:PORT, e.g. memlearn chip serve) instead; it decides the "
        "preset, the levels and the chips (an explicit --preset/--levels/--chips that differs "
        "is refused).",
    ),
    weight_max: str = _WEIGHT_MAX,
    support_copies: int = _SUPPORT_COPIES,
    spare_pairs: int | None = _SPARE_PAIRS,
    max_memory: str | None = typer.Option(
        None,
        "--max-memory",
        help="Memory budget (bytes, or with K/M/G/T, e.g. 4G): the chips are simulated in "
        "rounds within it (default: half the machine's memory).",
    ),
    torch_device: str | None = typer.Option(
        None, "--torch-device", help="Where the simulated chips live: cpu (default) or cuda."
    ),
    as_json: bool = _JSON,
    progress: bool = _PROGRESS,
) -> None:
    """Adapt the meta-trained model to new tasks on chips, with the computer in the loop."""
    from memlearn.experiments.provenance import package_versions

    with user_errors():
        config = DeployConfig(
            checkpoint=checkpoint, preset=preset, strategy=strategy, policy=policy, chips=chips,
            tasks=tasks, ways=ways, shots=shots, steps=steps, split=split, levels=levels,
            weight_max=weight_max, support_copies=support_copies, spare_pairs=spare_pairs,
            seed=seed, root=root, bench=bench, bake_hours=bake_hours, bake_celsius=bake_celsius,
            max_memory=max_memory, torch_device=torch_device,
        )  # fmt: skip
        summary, result, info = run(config, bar_disabled(progress, as_json))
    if as_json:
        typer.echo(f"split: {info['split']}", err=True)
        record = {k: v for k, v in info.items() if k != "seconds"}  # the JSON is reproducible
        typer.echo(json.dumps({**summary, "config": {**record, "versions": package_versions()}}))
    else:
        _table(summary, result, info)


def demo(
    out: Path = typer.Option(Path("memlearn-demo"), "--out", help="Directory for PNG and JSON."),
    checkpoint: Path | None = _CHECKPOINT,
    preset: str | None = _PRESET,
    strategy: str = _STRATEGY,
    seed: int = _SEED,
    root: Path | None = _ROOT,
    progress: bool = _PROGRESS,
) -> None:
    """The shipped model learns 16 new 5-way 1-shot tasks on 16 simulated chips."""
    from memlearn.experiments.provenance import provenance, write_json
    from memlearn.onchip.plot import learning_curve_png

    with user_errors():
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {out} is a file; give a directory (made if missing)")
        config = DeployConfig(
            checkpoint=checkpoint, preset=preset, strategy=strategy, chips=16, tasks=16,
            ways=5, shots=1, steps=5, seed=seed, root=root,
        )  # fmt: skip
        summary, result, info = run(config, bar_disabled(progress))
        _table(summary, result, info)
        png = learning_curve_png(out / "learning_curve.png", result, summary, info)
        payload = provenance({"command": " ".join(["memlearn", *sys.argv[1:]]), **info})
        payload["results"] = summary
        payload["per_task"] = {
            "accuracy": result.accuracy.tolist(),
            "software_accuracy": result.software_accuracy.tolist(),
            "cells_written": result.cells_written.tolist(),
        }
        path = write_json(out / "demo.json", payload)
    typer.echo(f"held-out alphabets: split '{info['split']}'")
    typer.echo(f"wrote {png} and {path}")


def adapt_gap(
    checkpoint: Path | None = _CHECKPOINT,
    preset: str | None = _PRESET,
    strategy: str = _STRATEGY,
    policy: str = _POLICY,
    tasks: int = typer.Option(200, "--tasks", help="New tasks, one simulated chip each."),
    chips: int | None = typer.Option(
        None, "--chips", help="Chips simulated at once (default 1000; more tasks run in rounds)."
    ),
    max_chips: int | None = typer.Option(None, "--max-chips", hidden=True),
    ways: int = _WAYS,
    shots: int = _SHOTS,
    steps: int = _STEPS,
    split: str | None = _SPLIT,
    levels: int | None = _LEVELS,
    weight_max: str = _WEIGHT_MAX,
    support_copies: int = _SUPPORT_COPIES,
    spare_pairs: int | None = _SPARE_PAIRS,
    seed: int = _SEED,
    root: Path | None = _ROOT,
    as_json: bool = _JSON,
    progress: bool = _PROGRESS,
) -> None:
    """Attribute the gap between on-chip and ideal-software accuracy to each non-ideality.

    The same tasks on simulated chips with each non-ideality (programming spread, read noise,
    converters, relaxation, stuck cells) switched off in turn, on an ideal chip with each one
    alone, in float on the levels (the loop's own loss), and with the loop's former design.
    """
    from memlearn.experiments.onchip_gap import gap_study

    with user_errors():
        chips = deprecated_alias("--max-chips", "--chips", max_chips, chips)
        config = DeployConfig(
            checkpoint=checkpoint, preset=preset, strategy=strategy, policy=policy,
            chips=GAP_CHIPS if chips is None else chips, tasks=tasks, ways=ways, shots=shots,
            steps=steps, split=split, levels=levels, weight_max=weight_max,
            support_copies=support_copies,
            spare_pairs=spare_pairs, seed=seed, root=root,
        )  # fmt: skip
        with progress_bar(None, "configurations", bar_disabled(progress, as_json)) as bar:

            def advance(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            study = gap_study(config, progress=advance)
    if as_json:
        config_record = {
            **{k: v for k, v in study.info.items() if k != "seconds"},
            "checkpoint": None if checkpoint is None else str(checkpoint),
            "weight_max_rule": weight_max, "support_copies": support_copies,
        }  # fmt: skip
        typer.echo(json.dumps(with_config(study.as_dict(), config_record)))
        return
    _gap_table(study, ways, shots, steps, strategy, policy)


def _gap_table(study: Any, ways: int, shots: int, steps: int, strategy: str, policy: str) -> None:
    """Print ``adapt-gap``'s table: each configuration, its accuracy and its paired difference."""
    wmax_from = study.info["weight_max_source"]
    split = study.info["split"]
    from rich.console import Console
    from rich.table import Table

    i = study.info
    table = Table(
        title=(
            f"Where the on-chip accuracy goes: {ways}-way {shots}-shot, {i['tasks']} tasks, "
            f"{steps} steps ({i['preset']}, {strategy}, policy {policy}, {i['levels']} levels, "
            f"split {split})"
        )
    )
    table.add_column("configuration")
    table.add_column(f"acc {steps} %", justify="right")
    table.add_column("Δ pts ± 95 % CI", justify="right")
    table.add_column("vs", justify="left")
    table.add_column("nJ", justify="right")
    table.add_column("writes", justify="right")
    versus = {
        "loop design": "software",
        "chip": "software",
        "remove one": "chip",
        "add one": "ideal chip",
        "design (on the real chip)": "chip",
    }
    group = None
    for row in study.rows:
        if row.group != group:
            group = row.group
            table.add_section()
        nan = row.delta != row.delta
        table.add_row(
            row.name,
            f"{100 * row.final:.2f}",
            "–" if nan else f"{100 * row.delta:+.2f} ± {100 * row.delta_ci95:.2f}",
            versus.get(row.group, ""),
            "–" if row.energy_j != row.energy_j else f"{1e9 * row.energy_j:.1f}",
            "–" if row.writes != row.writes else f"{row.writes:.0f}",
        )
    console = Console()
    console.print(table)
    console.print(
        f"full scale {[round(w, 4) for w in i['weight_max']]} ({wmax_from}); peak rule "
        f"{[round(w, 4) for w in i['peak_weight_max']]}; column repair with "
        f"{i['spare_pairs']} spare pairs; {i['seconds']:.1f} s"
    )


def register(app: typer.Typer) -> None:
    """Attach ``adapt`` and ``demo`` to the main application."""
    app.command("adapt")(adapt)
    app.command("adapt-gap")(adapt_gap)
    app.command("demo")(demo)
