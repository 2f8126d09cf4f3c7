"""``memlearn ep train``: equilibrium propagation (or backprop) on MNIST, on simulated crossbars
or in float."""

from __future__ import annotations

import json
import math

import typer

from memlearn.cli.errors import user_errors
from memlearn.ep.config import DEFAULT_NETWORK, DEFAULT_PRESET, RULES, UPDATES, EPConfig, quick

HELP = "Equilibrium propagation on simulated crossbars (and the backprop baseline) on MNIST."

app = typer.Typer(no_args_is_help=True, add_completion=False, help=HELP)


def _lrs(text: str | None, option: str) -> tuple[float, ...] | None:
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError as exc:
        raise ValueError(f"{option} must be comma-separated numbers, got {text!r}") from exc


def _clean(value):
    """NaN -> None so the JSON is standard."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


@app.command("train")
def train_command(
    network: str = typer.Option(DEFAULT_NETWORK, "--network", help="Layer sizes, e.g. 784-500-10."),
    epochs: int = typer.Option(1, "--epochs", help="Training epochs."),
    preset: str = typer.Option(DEFAULT_PRESET, "--preset", help="Device preset name or file."),
    levels: int = typer.Option(8, "--levels", help="Conductance levels per cell (2-64)."),
    update: str = typer.Option("accumulate", "--update", help=f"One of {', '.join(UPDATES)}."),
    rule: str = typer.Option("ep", "--rule", help=f"One of {', '.join(RULES)}."),
    chips: int = typer.Option(1, "--chips", help="Simulated chips trained side by side."),
    software: bool = typer.Option(False, "--software", help="Float weights, no crossbar."),
    beta: float = typer.Option(0.5, "--beta", help="Nudging strength (> 0)."),
    one_sided: bool = typer.Option(False, "--one-sided", help="Nudge +beta only."),
    t_free: int = typer.Option(30, "--t-free", help="Free-phase relaxation steps (T1)."),
    t_nudge: int = typer.Option(10, "--t-nudge", help="Nudged-phase relaxation steps (T2)."),
    batch: int = typer.Option(50, "--batch", help="Mini-batch size."),
    lrs: str = typer.Option(None, "--lrs", help="Learning rates per layer, e.g. 0.2,0.1."),
    spread: float = typer.Option(1.0, "--spread", help="Programming spread factor."),
    weight_max: str = typer.Option(
        None, "--weight-max", help="Full-scale weight per layer x sqrt(fan-in), e.g. 3,8."
    ),
    strategy: str = typer.Option("hybrid", "--strategy", help="Write strategy."),
    train_images: int = typer.Option(60000, "--train-images", help="Training images used."),
    test_images: int = typer.Option(10000, "--test-images", help="Test images used."),
    validation: int = typer.Option(
        0, "--validation", help="Hold out N training images and evaluate on them, not the test set."
    ),
    quick_run: bool = typer.Option(False, "--quick", help="6,000/2,000 images (minutes)."),
    seed: int = typer.Option(0, "--seed", help="Seed of weights, cells and batches."),
    out: str = typer.Option(None, "--out", help="Directory for checkpoint and metrics.json."),
    resume: bool = typer.Option(False, "--resume", help="Continue the checkpoint in --out."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """Train a layered network by EP (or backprop) and print its figures."""
    from memlearn.ep.run import train
    from memlearn.experiments.provenance import provenance

    with user_errors():
        config = EPConfig(
            network=network, rule=rule, substrate="float" if software else "array",
            update=update, beta=beta, symmetric=not one_sided, t_free=t_free, t_nudge=t_nudge,
            batch=batch, lrs=_lrs(lrs, "--lrs"), epochs=epochs, train_images=train_images,
            test_images=test_images, validation=validation, preset=preset, levels=levels,
            strategy=strategy, chips=chips, spread=spread, seed=seed,
            weight_max=_lrs(weight_max, "--weight-max"),
        )  # fmt: skip
        if quick_run:
            quick(config)
        config.validate()
        result = train(config, out, resume=resume, progress=not as_json)
    payload = _clean({**result, **provenance(config.as_dict())})
    if as_json:
        typer.echo(json.dumps(payload))
        return
    acc = result["test_accuracy"]
    typer.echo(
        f"{config.rule} on {config.substrate} ({network}): {result['evaluated_on']} accuracy "
        f"{100 * acc['mean']:.2f} % ± {100 * (acc['ci95'] or 0):.2f} after {result['epochs']} "
        f"epochs, train {100 * result['train_accuracy']['mean']:.2f} %, {result['wall_s']:.0f} s"
    )
    if "writes_per_cell" in result:
        w, e = result["writes_per_cell"], result["energy_per_image_j"]
        typer.echo(
            f"writes per cell: mean {w['mean']:.3f}, max {w['max']:.0f}; pulses "
            f"{result['pulses']['mean']:.0f}; energy per training image {1e9 * e['total']:.2f} nJ"
        )
