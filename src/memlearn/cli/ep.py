"""``memlearn ep train``: equilibrium propagation (or backprop) on MNIST, on simulated crossbars
or in float."""

from __future__ import annotations

import json
import math

import typer

from memlearn.cli.common import split_help
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


@app.command("adapt-head")
def adapt_head_command(
    tasks: int = typer.Option(200, "--tasks", help="Few-shot tasks adapted."),
    split: str = typer.Option("val", "--split", help=split_help()),
    steps: int = typer.Option(5, "--steps", help="Updates per task."),
    chips: int = typer.Option(100, "--chips", help="Simulated chips at once (tasks in rounds)."),
    preset: str = typer.Option(None, "--preset", help="Device preset (default hfo2-mlc)."),
    levels: int = typer.Option(None, "--levels", help="Levels per cell (default the model's)."),
    policy: str = typer.Option("accumulate", "--policy", help="The chips' update policy."),
    beta: float = typer.Option(0.5, "--beta", help="Nudging strength (> 0)."),
    t_nudge: int = typer.Option(10, "--t-nudge", help="Fixed-point steps per nudged phase."),
    software_only: bool = typer.Option(False, "--software-only", help="Float weights only."),
    checkpoint: str = typer.Option(None, "--checkpoint", help="Model (default: shipped)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the tasks, the chips and the loop."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object on stdout."),
) -> None:
    """The Omniglot head (32-16-5) adapted by EP against the gradient loop, same tasks."""
    from memlearn.ep.adapt import adapt_head
    from memlearn.ep.head import check_head_ep
    from memlearn.experiments.provenance import provenance
    from memlearn.onchip.deploy import DeployConfig

    with user_errors():
        check_head_ep(beta, t_nudge)
        config = DeployConfig(
            checkpoint=checkpoint, preset=preset, policy=policy, chips=chips, tasks=tasks,
            steps=steps, split=split, levels=levels, seed=seed,
        )  # fmt: skip
        result = adapt_head(config, beta, t_nudge, chips=not software_only)
    options = {"tasks": tasks, "split": split, "steps": steps, "chips": chips, "preset": preset,
               "levels": levels, "policy": policy, "beta": beta, "t_nudge": t_nudge,
               "software_only": software_only, "checkpoint": checkpoint, "seed": seed}  # fmt: skip
    if as_json:
        typer.echo(json.dumps(_clean({**result, **provenance(options)})))
        return
    run = result["run"]
    typer.echo(
        f"{run['tasks']} tasks of split {run['split']}, {steps} updates, beta {beta}; "
        f"query accuracy after each update (step 0: as deployed):"
    )
    rows = [("software", k, v) for k, v in result["software"].items()]
    rows += [("chips", k, v) for k, v in result.get("chip", {}).items()]
    for where, rule, curve in rows:
        acc = " ".join(f"{100 * a:.1f}" for a in curve["accuracy_by_step"])
        extra = ""
        if "energy_per_adaptation_j" in curve:
            extra = (
                f"; writes {curve['writes_per_adaptation']:.0f}, energy "
                f"{1e9 * curve['energy_per_adaptation_j']:.1f} nJ per adaptation"
            )
        typer.echo(f"  {where:8s} {rule:8s} {acc} (± {100 * (curve['ci95'] or 0):.1f}){extra}")
