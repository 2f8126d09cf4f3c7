"""``memlearn continual``: a binarised network with metaplastic synapses learns a sequence of
MNIST tasks with its binary weights in OxRAM and its 8-bit hidden weights in FeRAM."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from memlearn.cli.errors import user_errors
from memlearn.continual.benchmarks import BENCHMARKS, SPLITS
from memlearn.continual.run import EWC_LAMBDA, METHODS, ContinualConfig, run_continual
from memlearn.continual.store import DEFAULT_W_MAX, ROUNDINGS


def _hidden(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        return tuple(int(t) for t in text.split(","))
    except ValueError:
        raise ValueError(f"--hidden must be comma-separated integers, got {text!r}") from None


def continual(
    benchmark: str = typer.Option(
        "permuted-mnist", "--benchmark", help=f"Task sequence: {', '.join(BENCHMARKS)}."
    ),
    tasks: int = typer.Option(6, "--tasks", help="Tasks learned in sequence."),
    meta: float = typer.Option(1.35, "--meta", help="Metaplasticity m >= 0 (0: plain BNN)."),
    network: str = typer.Option(
        "chip", "--network", help="chip (fits the chip's 16,384 weights) or reference (larger)."
    ),
    hidden: str | None = typer.Option(
        None, "--hidden", help="Hidden layer sizes, e.g. 256,256 (default: the network's)."
    ),
    method: str = typer.Option(
        "bnn", "--method", help=f"Learner: {', '.join(METHODS)} (float, ewc: software baselines)."
    ),
    software: bool = typer.Option(
        False, "--software", help="Float hidden weights in software (no memories simulated)."
    ),
    chips: int = typer.Option(1, "--chips", help="Independent chips (networks) simulated."),
    epochs: int = typer.Option(1, "--epochs", help="Passes over each task's training images."),
    batch: int = typer.Option(100, "--batch", help="Images per training step."),
    train_size: int | None = typer.Option(
        None, "--train-size", help="Training images per task (default: all 60,000)."
    ),
    test_size: int | None = typer.Option(
        None, "--test-size", help="Evaluation images per task (default: all 10,000)."
    ),
    split: str = typer.Option(
        "test",
        "--eval-split",
        help=f"Evaluation images: {', '.join(SPLITS)} (validation: 10,000 held-out training "
        "images; train on the other 50,000).",
    ),
    shared_norms: bool = typer.Option(
        False, "--shared-norms", help="One batch norm for all tasks (default: one per task)."
    ),
    running_stats: bool = typer.Option(
        False,
        "--running-stats",
        help="Evaluate with batch norm's running statistics (default: the evaluated batch's).",
    ),
    rounding: str = typer.Option(
        "stochastic", "--rounding", help=f"Sub-LSB updates: {', '.join(ROUNDINGS)}."
    ),
    lr: float | None = typer.Option(
        None, "--lr", help="Adam rate (default: BNN 14/steps per task in [0.005, 0.1]; float 1e-3)."
    ),
    weight_max: float = typer.Option(
        DEFAULT_W_MAX, "--weight-max", help="Full scale of hidden words."
    ),
    ewc_lambda: float = typer.Option(
        EWC_LAMBDA, "--ewc-lambda", help="EWC penalty strength (default chosen on validation)."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of tasks, chips and training."),
    root: Path | None = typer.Option(None, "--root", help="Data root (default: MEMLEARN_DATA)."),
    figure: Path | None = typer.Option(None, "--figure", help="PNG of accuracy over training."),
    out: Path | None = typer.Option(None, "--out", help="Also write the JSON to this file."),
    run_dir: Path | None = typer.Option(
        None,
        "--run-dir",
        help="Run folder: checkpoint after every task, result.json and accuracy.png at the end.",
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --run-dir."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace the run in --run-dir (its files are removed)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Learn a sequence of tasks on simulated FeRAM/OxRAM chips; report forgetting and wear."""
    from memlearn.continual.checkpoint import check_run_dir, clear_run_dir

    with user_errors():
        config = ContinualConfig(
            benchmark=benchmark, tasks=tasks, meta=meta, network=network,
            hidden=_hidden(hidden), method=method, memory="software" if software else "chip",
            chips=chips, epochs=epochs, batch=batch, train_size=train_size,
            test_size=test_size, split=split, task_norms=not shared_norms,
            batch_stats=not running_stats, lr=lr,
            rounding=rounding, weight_max=weight_max, ewc_lambda=ewc_lambda, seed=seed,
            root=str(root) if root else None,
        ).check()  # fmt: skip
        check_run_dir(run_dir, resume, overwrite)
        if run_dir is not None and overwrite:
            clear_run_dir(run_dir)
        summary, payload = _run(config, run_dir, resume, figure, out, as_json)
    if as_json:
        typer.echo(json.dumps(payload))
        return
    _table(summary)


def _run(
    config: ContinualConfig,
    run_dir: Path | None,
    resume: bool,
    figure: Path | None,
    out: Path | None,
    as_json: bool,
) -> tuple[dict, dict]:
    """Learn the sequence with a progress bar; write the figure and JSON files asked for."""
    from tqdm import tqdm

    from memlearn.continual.checkpoint import FIGURE_FILE, RESULT_FILE
    from memlearn.continual.plot import accuracy_figure
    from memlearn.continual.summary import summarise
    from memlearn.experiments.provenance import provenance, write_json

    bar = tqdm(desc="continual", unit="step", disable=as_json)

    def tick(step: int, total: int) -> None:
        if bar.total != total:
            bar.reset(total=total)
        bar.update(step - bar.n)

    result = run_continual(config, progress=tick, run_dir=run_dir, resume=resume)
    bar.close()
    summary = summarise(result)
    payload = {**summary, **provenance(config.to_dict())}
    title = f"{config.benchmark}, {config.network} network, {config.method}, m = {config.meta:g}"
    if figure is not None:
        accuracy_figure(figure, summary, title)
    if out is not None:
        write_json(out, payload)
    if run_dir is not None:
        write_json(run_dir / RESULT_FILE, payload)
        accuracy_figure(run_dir / FIGURE_FILE, summary, title)
    return summary, payload


def _table(summary: dict) -> None:
    acc = summary["accuracy_matrix"]
    typer.echo("accuracy (%) on task j (columns) after learning task i (rows):")
    for i, row in enumerate(acc):
        typer.echo(f"  after {i + 1}: " + " ".join(f"{100 * a:5.1f}" for a in row))
    typer.echo(
        f"mean final accuracy {100 * summary['mean_final_accuracy']:.1f} %, learned "
        f"{100 * summary['learned_accuracy']:.1f} %, forgetting "
        f"{100 * summary['forgetting']:.1f} points"
    )
    if "writes_per_cell" in summary:
        for mem, w in summary["writes_per_cell"].items():
            typer.echo(
                f"{mem}: writes/cell mean {w['mean']:.1f} max {w['max']:.0f}, endurance used "
                f"{summary['endurance_used'][mem]:.2e}, tasks until wear-out "
                f"{summary['tasks_until_wear_out'][mem]:.3g}"
            )
        typer.echo(f"energy per step {summary['energy_per_step_j']['total']:.3e} J")


def register(app: typer.Typer) -> None:
    """Attach ``memlearn continual``."""
    app.command("continual")(continual)
