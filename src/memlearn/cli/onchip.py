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

from memlearn.chip.base import STRATEGIES, Chip, ChipLayout
from memlearn.cli.errors import user_errors
from memlearn.data.augment import DEFAULT_SUPPORT_COPIES
from memlearn.onchip.loop import AdaptConfig, AdaptResult, chip_levels
from memlearn.onchip.policies import DEFAULT_POLICY, POLICIES
from memlearn.onchip.repair import output_layout, repair_output, tile_spares
from memlearn.onchip.run import (
    MAX_SUPPORT_COPIES,
    QUERIES,
    WEIGHT_MAX_SOURCES,
    ci95,
    deployed_levels,
    deployment_summary,
    head_layout,
    inner_lrs_from,
    resolve_weight_max,
    run_adaptation,
    summarise,
    with_copies,
)

# Options shared by `adapt`, `adapt-gap` and `demo` (Typer reads them, never changes them).
_CHECKPOINT = typer.Option(
    None, "--checkpoint", help="Meta-trained checkpoint (default: the shipped model)."
)
_PRESET = typer.Option("hfo2-mlc", "--preset", help="Device preset name or file.")
_STRATEGY = typer.Option("hybrid", "--strategy", help=f"Write strategy: {', '.join(STRATEGIES)}.")
_POLICY = typer.Option(DEFAULT_POLICY, "--policy", help=f"Update policy: {', '.join(POLICIES)}.")
_WAYS = typer.Option(5, "--ways", help="Classes per task (must match the model).")
_SHOTS = typer.Option(1, "--shots", help="Support images per class.")
_STEPS = typer.Option(5, "--steps", help="On-chip gradient updates per task.")
_SPLIT = typer.Option(
    None, "--split", help="Alphabets to draw tasks from (default: evaluation if present, else val)."
)
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


def _spare_pairs(layout: ChipLayout, spare_pairs: int | None) -> int:
    """``--spare-pairs``, checked; ``None``: the rest of the output array's tile."""
    if spare_pairs is None:
        return tile_spares(layout, layout.arrays[-1].name)
    if spare_pairs < 0:
        raise ValueError(f"--spare-pairs must be >= 0, got {spare_pairs}")
    return spare_pairs


def _mean_or_none(values: Any) -> float | None:
    return None if values is None else float(values.double().mean())


def _parse_bench(bench: str) -> tuple[str, int]:
    host, sep, port = bench.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"--bench must be HOST:PORT (port 1-65535), got {bench!r}")
    return host, int(port)


def make_chip(
    preset: str,
    chips: int,
    layout: ChipLayout,
    levels: int,
    seed: int,
    bench: str | None = None,
    *,
    spare_pairs: int = 0,
    strategy: str = "hybrid",
) -> Chip:
    """A batch of simulated chips, or the bench at ``bench`` (``HOST:PORT``), for the model's
    ``layout``.  With ``spare_pairs`` the output array has that many more column pairs, and the
    chip is returned repaired: tested, with its output columns on the healthiest pairs
    (:mod:`memlearn.onchip.repair`)."""
    chip = _physical_chip(preset, chips, output_layout(layout, spare_pairs), levels, seed, bench)
    try:
        return repair_output(chip, layout, strategy)
    except BaseException:
        if hasattr(chip, "close"):
            chip.close()
        raise


def _physical_chip(
    preset: str, chips: int, layout: ChipLayout, levels: int, seed: int, bench: str | None
) -> Chip:
    if bench:
        from memlearn.chip.remote import RemoteChip

        chip = RemoteChip(*_parse_bench(bench))
        if chip.layout.arrays != layout.arrays:
            chip.close()
            raise ValueError(
                f"the bench's arrays {chip.layout.arrays} do not fit the model's {layout.arrays} "
                f"(the output array counts the spare pairs of --spare-pairs)"
            )
        return chip
    from memlearn.chip.simulated import SimulatedChip

    return SimulatedChip(chips, preset=preset, layout=layout, levels=levels, seed=seed)


def _setup(
    checkpoint: Path | None,
    preset: str,
    strategy: str,
    policy: str,
    weight_max_source: str,
    tasks: int,
    ways: int,
    shots: int,
    split: str | None,
    levels: int | None,
    seed: int,
    root: Path | None,
    support_copies: int,
) -> tuple[Any, dict[str, Any], list[float], int, str, Any]:
    """Check the options shared by ``adapt`` and ``adapt-gap``; load the model and the tasks.

    Returns the network, the checkpoint info, the inner learning rates, the level count, the
    split and the task batch (support sets with their ``support_copies`` distorted copies).
    """
    from memlearn.data import TaskSampler, default_eval_split, load_split
    from memlearn.devices.preset import load_preset
    from memlearn.meta.checkpoint import load_checkpoint

    if tasks < 1:
        raise ValueError(f"--tasks must be >= 1, got {tasks}")
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; allowed: {', '.join(STRATEGIES)}")
    if policy not in POLICIES:
        raise ValueError(f"unknown policy {policy!r}; allowed: {', '.join(POLICIES)}")
    if weight_max_source not in WEIGHT_MAX_SOURCES:
        raise ValueError(
            f"unknown --weight-max {weight_max_source!r}; allowed: {', '.join(WEIGHT_MAX_SOURCES)}"
        )
    if not 0 <= support_copies <= MAX_SUPPORT_COPIES:
        raise ValueError(
            f"--support-copies must be in [0, {MAX_SUPPORT_COPIES}], got {support_copies}"
        )
    if levels is not None and not 2 <= levels <= 64:
        raise ValueError(f"--levels must be in [2, 64], got {levels}")
    load_preset(preset)  # fail early on an unknown preset
    net, info = load_checkpoint(checkpoint)
    if net.fc2.weight.shape[0] != ways:
        raise ValueError(
            f"the checkpoint is a {net.fc2.weight.shape[0]}-way model; --ways {ways} does not fit"
        )
    lrs = inner_lrs_from(info)
    levels = deployed_levels(info, levels)
    split = split or default_eval_split(root)
    classes = load_split(split, root, rotations=False)
    batch = TaskSampler(classes, ways=ways, shots=shots, queries=QUERIES, seed=seed).sample(tasks)
    return net, info, lrs, levels, split, with_copies(batch, support_copies, seed)


def run(
    *,
    checkpoint: Path | None,
    preset: str,
    strategy: str,
    policy: str,
    chips: int,
    tasks: int,
    ways: int,
    shots: int,
    steps: int,
    split: str | None,
    levels: int | None,
    bake_hours: float,
    bake_celsius: float,
    seed: int,
    root: Path | None,
    bench: str | None = None,
    weight_max_source: str = "auto",
    support_copies: int = DEFAULT_SUPPORT_COPIES,
    spare_pairs: int | None = None,
) -> tuple[dict[str, Any], AdaptResult, dict[str, Any]]:
    """Run one adaptation study; returns the JSON summary, the per-task result and run info."""
    for name, value, low in (("chips", chips, 1), ("steps", steps, 0)):
        if value < low:
            raise ValueError(f"--{name} must be >= {low}, got {value}")
    if bake_hours < 0:
        raise ValueError(f"--bake-hours must be >= 0, got {bake_hours}")
    if not -273.15 < bake_celsius <= 400:
        raise ValueError(f"--bake-celsius must be in (-273.15, 400], got {bake_celsius}")
    if bake_hours > 0 and bench is None and chips < tasks:
        raise ValueError(
            f"a bake ages every cell of a chip, so each task needs its own chip: give --chips >= "
            f"--tasks with --bake-hours (got --chips {chips}, --tasks {tasks})"
        )
    net, info, lrs, levels, split, batch = _setup(
        checkpoint, preset, strategy, policy, weight_max_source, tasks, ways, shots, split,
        levels, seed, root, support_copies,
    )  # fmt: skip
    n_chips = min(chips, tasks)
    layout = head_layout(net)
    spare_pairs = _spare_pairs(layout, spare_pairs)
    chip = make_chip(
        preset, n_chips, layout, levels, seed, bench, spare_pairs=spare_pairs, strategy=strategy
    )
    try:
        level_g = chip_levels(chip, None)  # the chip's own levels (S)
        weight_max, weight_max_from = resolve_weight_max(
            net, info, lrs, steps=steps, levels=level_g, policy=policy,
            ways=ways, shots=shots, source=weight_max_source, root=root, seed=seed,
            preset=preset, strategy=strategy, support_copies=support_copies,
        )  # fmt: skip
    except BaseException:
        if hasattr(chip, "close"):
            chip.close()
        raise
    config = AdaptConfig(
        steps=steps,
        strategy=strategy,
        policy=policy,
        levels=level_g,
        weight_max=weight_max,
        bake_seconds=bake_hours * 3600.0,
        bake_kelvin=bake_celsius + 273.15,
        seed=seed,
    )
    started = time.perf_counter()
    try:
        result = run_adaptation(chip, net, lrs, batch, config)
    finally:
        if hasattr(chip, "close"):
            chip.close()
    elapsed = time.perf_counter() - started
    if bench:
        preset = str(getattr(chip, "preset", None) or preset)
    summary = {
        "preset": preset,
        "strategy": strategy,
        "ways": ways,
        "shots": shots,
        "steps": steps,
        "tasks": tasks,
        "chips": chip.n_chips,
        **summarise(result),
    }
    run_info = {
        "split": split,
        "policy": policy,
        "levels": levels,
        "seed": seed,
        "checkpoint": info.get("path"),
        "inner_lrs": lrs,
        "weight_max": weight_max,
        "weight_max_source": weight_max_from,
        "support_copies": support_copies,
        "spare_pairs": spare_pairs,
        "repair_test_energy_j": _mean_or_none(getattr(chip, "test_energy_j", None)),
        "repair_faulty_pairs": _mean_or_none(getattr(chip, "faulty_pairs", None)),
        "bench": bench,
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
    console.print(f"[dim]{info['seconds']:.1f} s[/dim]")


def adapt(
    checkpoint: Path | None = _CHECKPOINT,
    preset: str = _PRESET,
    strategy: str = _STRATEGY,
    policy: str = _POLICY,
    chips: int = typer.Option(100, "--chips", help="Simulated chips (tasks run in rounds)."),
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
        None, "--bench", help="Drive a bench (HOST:PORT, e.g. `memlearn chip serve`) instead."
    ),
    weight_max: str = _WEIGHT_MAX,
    support_copies: int = _SUPPORT_COPIES,
    spare_pairs: int | None = _SPARE_PAIRS,
    as_json: bool = _JSON,
) -> None:
    """Adapt the meta-trained model to new tasks on chips, with the computer in the loop."""
    with user_errors():
        summary, result, info = run(
            checkpoint=checkpoint,
            preset=preset,
            strategy=strategy,
            policy=policy,
            chips=chips,
            tasks=tasks,
            ways=ways,
            shots=shots,
            steps=steps,
            split=split,
            levels=levels,
            bake_hours=bake_hours,
            bake_celsius=bake_celsius,
            seed=seed,
            root=root,
            bench=bench,
            weight_max_source=weight_max,
            support_copies=support_copies,
            spare_pairs=spare_pairs,
        )
    if as_json:
        typer.echo(f"split: {info['split']}", err=True)
        typer.echo(json.dumps(summary))
    else:
        _table(summary, result, info)


def demo(
    out: Path = typer.Option(Path("memlearn-demo"), "--out", help="Directory for PNG and JSON."),
    checkpoint: Path | None = _CHECKPOINT,
    preset: str = _PRESET,
    strategy: str = _STRATEGY,
    seed: int = _SEED,
    root: Path | None = _ROOT,
) -> None:
    """The shipped model learns 16 new 5-way 1-shot tasks on 16 simulated chips."""
    from memlearn.experiments.provenance import provenance, write_json
    from memlearn.onchip.plot import learning_curve_png

    with user_errors():
        summary, result, info = run(
            checkpoint=checkpoint,
            preset=preset,
            strategy=strategy,
            policy=DEFAULT_POLICY,
            chips=16,
            tasks=16,
            ways=5,
            shots=1,
            steps=5,
            split=None,
            levels=None,
            bake_hours=0.0,
            bake_celsius=150.0,
            seed=seed,
            root=root,
        )
        _table(summary, result, info)
        png = learning_curve_png(out / "learning_curve.png", result, summary, info)
        config = {"command": " ".join(["memlearn", *sys.argv[1:]]), **info}
        payload = provenance(config)
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
    preset: str = _PRESET,
    strategy: str = _STRATEGY,
    policy: str = _POLICY,
    tasks: int = typer.Option(200, "--tasks", help="New tasks, one simulated chip each."),
    max_chips: int = typer.Option(
        1000, "--max-chips", help="Chips simulated at once (more tasks run in rounds)."
    ),
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
) -> None:
    """Attribute the gap between on-chip and ideal-software accuracy to each non-ideality.

    The same tasks on simulated chips with each non-ideality (programming spread, read noise,
    converters, relaxation, stuck cells) switched off in turn, on an ideal chip with each one
    alone, in float on the levels (the loop's own loss), and with the loop's former design.
    """
    from memlearn.experiments.onchip_gap import attribute_gap
    from memlearn.onchip.run import head_weights, task_features

    with user_errors():
        if steps < 0:
            raise ValueError(f"--steps must be >= 0, got {steps}")
        if max_chips < 1:
            raise ValueError(f"--max-chips must be >= 1, got {max_chips}")
        net, info, lrs, levels, split, batch = _setup(
            checkpoint, preset, strategy, policy, weight_max, tasks, ways, shots, split, levels,
            seed, root, support_copies,
        )  # fmt: skip
        from memlearn.devices.preset import load_preset

        level_g = load_preset(preset).levels(levels)
        common = dict(
            steps=steps, levels=level_g, policy=policy, ways=ways, shots=shots,
            support_copies=support_copies,
        )  # fmt: skip
        wmax, wmax_from = resolve_weight_max(
            net, info, lrs, **common, source=weight_max, root=root, seed=seed, preset=preset,
            strategy=strategy,
        )  # fmt: skip
        peak, _ = resolve_weight_max(net, info, lrs, **common, source="peak", root=root, seed=seed)
        started = time.perf_counter()
        study = attribute_gap(
            task_features(net, batch.support_x), batch.support_y.long(),
            task_features(net, batch.query_x), batch.query_y.long(),
            head_weights(net), lrs, head_layout(net),
            weight_max=wmax, peak_weight_max=peak, preset=preset, strategy=strategy,
            policy=policy, levels=levels, steps=steps, seed=seed, max_chips=max_chips,
            spare_pairs=_spare_pairs(head_layout(net), spare_pairs),
        )  # fmt: skip
        study.info.update(split=split, weight_max_source=wmax_from, ways=ways, shots=shots)
        study.info["seconds"] = time.perf_counter() - started
    if as_json:
        typer.echo(json.dumps(study.as_dict()))
        return
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
