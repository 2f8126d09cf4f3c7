"""``memlearn snn train``, ``evaluate`` and ``hidden``: the SPIRIT spiking layer on SLC RRAM,
and a 144-H-10 network of the same cells and neurons."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

import typer

from memlearn.cli.errors import user_errors

HELP = "SPIRIT spiking inference on single-level RRAM (train the layer, evaluate on chips)."
app = typer.Typer(help=HELP, no_args_is_help=True, add_completion=False)


def _threads() -> None:
    import torch

    torch.set_num_threads(min(2, torch.get_num_threads()))


def _steps_bar(steps: int):
    """The time-step progress bar of an evaluation, on stderr also with ``--json`` (stdout
    keeps exactly one JSON object)."""
    from tqdm import tqdm

    return tqdm(total=steps, desc="time steps", file=sys.stderr)


@app.command()
def train(
    out: Path = typer.Option(
        Path("runs/spirit-snn"), help="Run folder: spirit-snn.pt, its .json and state.pt."
    ),
    resume: bool = typer.Option(False, "--resume", help="Continue the run saved in --out."),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Start afresh in an --out that holds a run (removes it)."
    ),
    epochs: int = typer.Option(None, help="Passes over the 60,000 training images [8]."),
    seed: int = typer.Option(None, help="Random seed [0]."),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
) -> None:
    """Train the 144 -> 10 layer (integer weights -4..+4, tanh neurons) and its float twin.

    Writes OUT/spirit-snn.pt, OUT/spirit-snn.json and OUT/state.pt (saved after every epoch:
    --resume continues a killed run with its saved config).  An OUT that holds a run is refused
    unless --resume or --overwrite.  The shipped model is OUT's two spirit-snn files, trained
    with the defaults (memlearn.snn.train.SHIPPED_COMMAND)."""
    with user_errors():
        from dataclasses import asdict

        from tqdm import tqdm

        from memlearn.data.mnist import load_mnist
        from memlearn.snn import rundir
        from memlearn.snn.train import TrainConfig, epochs_done, train_run

        given = {k: v for k, v in (("epochs", epochs), ("seed", seed)) if v is not None}
        TrainConfig(**given).check()  # bad options first, before the folder is looked at
        rundir.check_run_folder(out, resume, overwrite)
        state = rundir.read_state(out) if resume else None
        base = asdict(TrainConfig()) if state is None else state["config"]
        cfg = TrainConfig(**{**base, **given}).check()
        _threads()
        train_set, test_set = load_mnist("train"), load_mnist("test")
        bar = tqdm(total=2 * cfg.epochs, desc="snn train", file=sys.stderr)  # also with --json
        bar.update(epochs_done(state, cfg))
        command = "memlearn snn train" + (" " + shlex.join(sys.argv[3:]) if sys.argv[3:] else "")
        metrics = train_run(
            train_set, test_set, cfg, out, resume=resume, overwrite=overwrite, command=command,
            progress=lambda: bar.update(),
        )  # fmt: skip
        bar.close()
        metrics["checkpoint"] = str(out / rundir.MODEL_FILE)
        typer.echo(json.dumps(metrics) if as_json else json.dumps(metrics, indent=2))


@app.command()
def evaluate(
    chips: int = typer.Option(100, help="Simulated chips (each with its own cells)."),
    images: int = typer.Option(10_000, help="MNIST test images (the first M)."),
    preset: str = typer.Option("oxram-slc", help="Device preset of the cells."),
    strategy: str = typer.Option("single-set", help="Write strategy (single-set: no verify)."),
    hours: float = typer.Option(1.0, help="Time between programming and inference (h)."),
    reads: float = typer.Option(0.0, help="Read pulses per cell before inference (disturb)."),
    delta_s: int = typer.Option(
        10, "--delta-s", help="ΔS (N2D2 TerminateDelta): stop when the leader is ΔS spikes ahead."
    ),
    coding: str = typer.Option(
        "periodic", help="Input rate coding: periodic (N2D2 JitteredPeriodic) or poisson."
    ),
    seed: int = typer.Option(0, help="Random seed."),
    checkpoint: Path = typer.Option(None, help="Checkpoint (default: the shipped one)."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object."),
) -> None:
    """Program the layer into SLC cells of CHIPS chips and classify IMAGES test images."""
    with user_errors():
        from memlearn.data.mnist import MNIST_COUNTS, load_mnist
        from memlearn.errors import MemlearnError
        from memlearn.experiments.provenance import provenance
        from memlearn.snn.evaluate import EvalConfig
        from memlearn.snn.evaluate import evaluate as run_eval
        from memlearn.snn.model import downscale
        from memlearn.snn.neuron import NeuronConfig
        from memlearn.snn.train import load_checkpoint

        if not 1 <= images <= MNIST_COUNTS["test"]:
            raise MemlearnError(f"--images must be in 1..10000, got {images}")
        cfg = EvalConfig(
            chips=chips, preset=preset, strategy=strategy, hours=hours, reads=reads, seed=seed,
            neuron=NeuronConfig(delta_s=delta_s, coding=coding),
        ).check()  # fmt: skip
        w, float_w = load_checkpoint(checkpoint)
        _threads()
        test = load_mnist("test")
        x, y = downscale(test.images[:images]), test.labels[:images]
        bar = _steps_bar(cfg.neuron.steps)
        out = run_eval(w, float_w, x, y, cfg, progress=lambda _: bar.update())
        bar.close()
        out["images"] = images
        out.update(provenance(out.pop("config")))
        if as_json:
            typer.echo(json.dumps(out))
            return
        out.pop("accuracy_per_chip")
        typer.echo(json.dumps(out, indent=2))


@app.command()
def hidden(
    hidden: int = typer.Option(32, help="Hidden neurons H of the 144-H-10 network."),
    epochs: int = typer.Option(8, help="Passes over the 60,000 training images."),
    seed: int = typer.Option(0, help="Random seed (training, or cells and spikes with --chips)."),
    out: Path = typer.Option(
        None, help="Write the trained network to OUT/spirit-hidden<H>.pt and its .json."
    ),
    chips: int = typer.Option(
        None, help="Instead of training: run the checkpoint's network on CHIPS simulated chips."
    ),
    images: int = typer.Option(2000, help="With --chips: MNIST test images (the first M)."),
    preset: str = typer.Option("oxram-slc", help="With --chips: device preset of the cells."),
    strategy: str = typer.Option("single-set", help="With --chips: write strategy."),
    hours: float = typer.Option(1.0, help="With --chips: time between programming and use (h)."),
    reads: float = typer.Option(0.0, help="With --chips: read pulses per cell before use."),
    delta_s: int = typer.Option(10, "--delta-s", help="With --chips: ΔS (N2D2 TerminateDelta)."),
    coding: str = typer.Option("periodic", help="With --chips: input rate coding."),
    checkpoint: Path = typer.Option(
        None, help="With --chips: checkpoint (default: the shipped 144-32-10 network)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print the metrics as one JSON object."),
) -> None:
    """Train a 144-H-10 network with the chip's integer weights and tanh neurons (ideal
    accuracy; --out saves it), or with --chips run a trained one on simulated SLC cells."""
    with user_errors():
        from memlearn.errors import MemlearnError
        from memlearn.snn.hidden import check_hidden

        check_hidden(hidden)
        if chips is not None and out is not None:
            raise MemlearnError("--out saves a trained network: it does not go with --chips")
        if chips is None and checkpoint is not None:
            raise MemlearnError("--checkpoint is the network run on chips: it needs --chips N")
        if chips is not None:
            result = _hidden_chips(
                hidden, checkpoint, images, as_json,
                chips=chips, preset=preset, strategy=strategy, hours=hours, reads=reads, seed=seed,
                neuron={"delta_s": delta_s, "coding": coding},
            )  # fmt: skip
        else:
            result = _hidden_train(hidden, epochs, seed, out)
        typer.echo(json.dumps(result) if as_json else json.dumps(result, indent=2))


def _hidden_train(hidden: int, epochs: int, seed: int, out: Path | None) -> dict:
    from memlearn.data.mnist import load_mnist
    from memlearn.snn.hidden import save_hidden, train_hidden
    from memlearn.snn.train import TrainConfig

    cfg = TrainConfig(epochs=epochs, seed=seed).check()
    _threads()
    metrics, weights = train_hidden(load_mnist("train"), load_mnist("test"), hidden, cfg)
    if out is not None:
        command = "memlearn snn hidden" + (" " + shlex.join(sys.argv[3:]) if sys.argv[3:] else "")
        path = save_hidden(metrics, weights, out / f"spirit-hidden{hidden}.pt", command)
        metrics["checkpoint"] = str(path)
    return metrics


def _hidden_chips(
    hidden: int, checkpoint: Path | None, images: int, as_json: bool, neuron: dict, **options
) -> dict:
    from memlearn.data.mnist import MNIST_COUNTS, load_mnist
    from memlearn.errors import MemlearnError
    from memlearn.experiments.provenance import provenance
    from memlearn.snn.evaluate import EvalConfig
    from memlearn.snn.hidden import load_hidden
    from memlearn.snn.hidden_eval import CALIBRATION_IMAGES, evaluate_hidden
    from memlearn.snn.model import downscale
    from memlearn.snn.neuron import NeuronConfig

    if not 1 <= images <= MNIST_COUNTS["test"]:
        raise MemlearnError(f"--images must be in 1..10000, got {images}")
    cfg = EvalConfig(**options, neuron=NeuronConfig(**neuron)).check()
    weights = load_hidden(checkpoint)
    if weights.hidden != hidden:
        raise MemlearnError(
            f"--hidden {hidden} but the checkpoint holds a 144-{weights.hidden}-10 network; "
            f"pass --hidden {weights.hidden} or a --checkpoint trained with --hidden {hidden}"
        )
    _threads()
    test = load_mnist("test")
    x, y = downscale(test.images[:images]), test.labels[:images]
    x_cal = downscale(load_mnist("train").images[:CALIBRATION_IMAGES])
    bar = _steps_bar(cfg.neuron.steps)
    out = evaluate_hidden(weights, x, y, x_cal, cfg, progress=lambda _: bar.update())
    bar.close()
    out["images"] = images
    out.update(provenance(out.pop("config")))
    if not as_json:
        out.pop("accuracy_per_chip")
    return out


def register(root: typer.Typer) -> None:
    root.add_typer(app, name="snn", help=HELP)
