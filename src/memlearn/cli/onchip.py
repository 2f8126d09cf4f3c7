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
    progress_bar,
)
from memlearn.cli.errors import user_errors
from memlearn.cli.onchip_options import (
    CHECKPOINT_OPTION,
    JSON_OPTION,
    LEVELS_OPTION,
    POLICY_OPTION,
    PRESET_OPTION,
    PROGRESS_OPTION,
    ROOT_OPTION,
    SEED_OPTION,
    SHOTS_OPTION,
    SPARE_PAIRS_OPTION,
    SPLIT_OPTION,
    STEPS_OPTION,
    STRATEGY_OPTION,
    SUPPORT_COPIES_OPTION,
    WAYS_OPTION,
    WEIGHT_MAX_OPTION,
)  # fmt: skip
from memlearn.onchip.deploy import DeployConfig, record
from memlearn.onchip.loop import AdaptResult
from memlearn.onchip.run import ci95, deployment_summary, summarise


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
    checkpoint: Path | None = CHECKPOINT_OPTION,
    preset: str | None = PRESET_OPTION,
    strategy: str = STRATEGY_OPTION,
    policy: str = POLICY_OPTION,
    chips: int | None = typer.Option(
        None, "--chips", help="Simulated chips (default 100; tasks run in rounds)."
    ),
    tasks: int = typer.Option(100, "--tasks", help="New tasks to learn."),
    ways: int = WAYS_OPTION,
    shots: int = SHOTS_OPTION,
    steps: int = STEPS_OPTION,
    split: str | None = SPLIT_OPTION,
    levels: int | None = LEVELS_OPTION,
    bake_hours: float = typer.Option(0.0, "--bake-hours", help="Bake the adapted chips (hours)."),
    bake_celsius: float = typer.Option(150.0, "--bake-celsius", help="Bake temperature (°C)."),
    seed: int = SEED_OPTION,
    root: Path | None = ROOT_OPTION,
    bench: str | None = typer.Option(
        None,
        "--bench",
        help="Drive a bench (HOST:PORT, e.g. memlearn chip serve) instead; it decides the "
        "preset, the levels and the chips (an explicit --preset/--levels/--chips that differs "
        "is refused).",
    ),
    weight_max: str = WEIGHT_MAX_OPTION,
    support_copies: int = SUPPORT_COPIES_OPTION,
    spare_pairs: int | None = SPARE_PAIRS_OPTION,
    max_memory: str | None = typer.Option(
        None,
        "--max-memory",
        help="Memory budget (bytes, or with K/M/G/T, e.g. 4G): the chips are simulated in "
        "rounds within it (default: half the machine's memory).",
    ),
    torch_device: str | None = typer.Option(
        None, "--torch-device", help="Where the simulated chips live: cpu (default) or cuda."
    ),
    engine: str | None = typer.Option(
        None,
        "--engine",
        help="Program-and-verify engine of the simulated chips: torch (default) or fused "
        "(compiled, CPU only; its own random numbers).",
    ),
    as_json: bool = JSON_OPTION,
    progress: bool = PROGRESS_OPTION,
) -> None:
    """Adapt the meta-trained model to new tasks on chips, with the computer in the loop."""
    from memlearn.experiments.provenance import package_versions

    with user_errors():
        config = DeployConfig(
            checkpoint=checkpoint, preset=preset, strategy=strategy, policy=policy, chips=chips,
            tasks=tasks, ways=ways, shots=shots, steps=steps, split=split, levels=levels,
            weight_max=weight_max, support_copies=support_copies, spare_pairs=spare_pairs,
            seed=seed, root=root, bench=bench, bake_hours=bake_hours, bake_celsius=bake_celsius,
            max_memory=max_memory, torch_device=torch_device, engine=engine,
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
    checkpoint: Path | None = CHECKPOINT_OPTION,
    preset: str | None = PRESET_OPTION,
    strategy: str = STRATEGY_OPTION,
    seed: int = SEED_OPTION,
    root: Path | None = ROOT_OPTION,
    progress: bool = PROGRESS_OPTION,
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


def register(app: typer.Typer) -> None:
    """Attach ``adapt`` and ``demo`` to the main application."""
    app.command("adapt")(adapt)
    app.command("demo")(demo)
