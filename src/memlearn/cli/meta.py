"""``memlearn meta-train``, ``memlearn evaluate`` and ``memlearn baseline``: off-chip few-shot
learning on Omniglot (training, and ideal-software evaluation of a checkpoint)."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import typer

from memlearn.cli.common import (
    TASK_SPLITS,
    bar_disabled,
    deprecated_alias,
    progress_bar,
    progress_option,
    split_help,
    with_config,
)
from memlearn.cli.errors import user_errors

CHECKPOINT_HELP = "Checkpoint (.pt) to evaluate; default: the model shipped with memlearn."
SPLIT_HELP = split_help("Split to sample tasks from")
PROGRESS_HELP = "Show a progress bar on stderr (never with --json)."
ROOT_HELP = "Data root (default: $MEMLEARN_DATA, else the per-user data folder)."


def _set_threads() -> None:
    import torch

    if not torch.cuda.is_available():
        torch.set_num_threads(min(2, torch.get_num_threads()))


def _curve_config(checkpoint: Path) -> dict[str, Any]:
    """The config of ``--curve-from``: the one the checkpoint was trained with (its network's
    shape in any case), with the curve phase alone to run on it."""
    from memlearn.meta.checkpoint import load_checkpoint
    from memlearn.meta.config import DEFAULT_CURVE_STEPS, TrainConfig, current_names

    if not checkpoint.is_file():
        raise ValueError(f"--curve-from {checkpoint} does not exist (or is not a file)")
    _, info = load_checkpoint(checkpoint)
    cfg = {**TrainConfig().to_dict(), **current_names(info["training"].get("config", {}))}
    cfg.update({k: info["config"][k] for k in ("ways", "widths", "hidden", "normalize", "pooling")})
    cfg["curve_steps"] = cfg["curve_steps"] or DEFAULT_CURVE_STEPS
    return cfg


def _train_config(
    config: Path | None,
    overrides: dict[str, object],
    out: Path,
    resume: bool,
    start: dict[str, Any] | None = None,
):
    """The run's TrainConfig: the --config file (or ``start``, or the defaults) with the
    explicit options on top; with --resume, the config saved in OUT, which explicit options
    must not contradict."""
    from memlearn.errors import MemlearnError
    from memlearn.meta.config import DEFAULT_HARDWARE_STEPS, TrainConfig
    from memlearn.meta.rundir import saved_config

    saved = saved_config(out) if resume and out.is_dir() else None
    if saved is not None and config is None:
        base = {**TrainConfig().to_dict(), **saved}
    elif start is not None:
        base = start
    else:
        base = TrainConfig.from_file(config).to_dict() if config else TrainConfig().to_dict()
    cfg = dict(base)
    cfg.update({k: v for k, v in overrides.items() if v is not None})
    if overrides.get("device_preset") is not None and cfg["hardware_steps"] == 0:
        cfg["hardware_steps"] = DEFAULT_HARDWARE_STEPS
    result = TrainConfig.from_dict(cfg)
    if saved is not None:
        stored = {**TrainConfig().to_dict(), **saved}
        changed = sorted(k for k in stored if stored[k] != result.to_dict()[k])
        if changed:
            raise MemlearnError(
                f"--resume: {out} was trained with a different config; these options differ "
                f"from the saved ones: "
                + ", ".join(f"{k} ({stored[k]!r} saved, {result.to_dict()[k]!r} given)"
                            for k in changed)
                + " (omit them to reuse the saved config, or start afresh with --overwrite)"
            )  # fmt: skip
    return result


def meta_train(
    config: Path | None = typer.Option(None, "--config", help="JSON file of TrainConfig keys."),
    preset: str | None = typer.Option(
        None,
        "--preset",
        help="Device preset for hardware-aware training (e.g. hfo2-mlc); adds the hardware-"
        "aware phase (250 steps, memlearn.meta.config.DEFAULT_HARDWARE_STEPS, unless the "
        "config sets hardware_steps).",
    ),
    device: str | None = typer.Option(None, "--device", hidden=True),
    strategy: str | None = typer.Option(None, "--strategy", help="Write strategy (hybrid...)."),
    out: Path = typer.Option(Path("runs/meta"), "--out", help="Output folder."),
    resume: bool = typer.Option(
        False, "--resume", help="Continue the run saved in --out (with its saved config)."
    ),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Start afresh in an --out that holds a run (removes it)."
    ),
    seed: int | None = typer.Option(None, "--seed", help="Override the config's seed."),
    curve_from: Path | None = typer.Option(
        None,
        "--curve-from",
        help="Run the curve phase alone on this checkpoint (e.g. the shipped model's .pt), with "
        "the config it was trained with: its per-step inner rates re-learned on cached features "
        "so that every update helps (TrainConfig's curve_steps, default 500, curve_loss and "
        "curve_tasks).",
    ),
    root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
    torch_device: str | None = typer.Option(
        None, "--torch-device", help="cpu or cuda (default: cuda when present)."
    ),
    progress: bool = progress_option(),
) -> None:
    """Meta-train the few-shot network on the train split, validating on held-out alphabets.

    Writes OUT/model.pt (+ .json), OUT/baseline.pt, OUT/log.jsonl (one JSON object per step)
    and OUT/summary.json; OUT/state.pt makes the run resumable after a kill (--resume).  An OUT
    that holds a run is refused unless --resume or --overwrite.  With --curve-from CKPT, only
    the curve phase runs, on CKPT (no baseline.pt).
    """
    with user_errors():
        from memlearn.data import load_split
        from memlearn.meta.train import check_run
        from memlearn.meta.train import meta_train as run

        preset = deprecated_alias("--device", "--preset", device, preset)
        _set_threads()
        overrides = {"seed": seed, "strategy": strategy, "device_preset": preset}
        start = None
        if curve_from is not None:
            if config is not None:
                raise ValueError(
                    "--curve-from takes the checkpoint's own config: omit --config (or set "
                    "init_from and init_phase='curve' in the --config file instead)"
                )
            start = _curve_config(curve_from)
            overrides.update(init_from=str(curve_from), init_phase="curve")
        cfg = _train_config(config, overrides, out, resume, start)
        # every option is checked before any data is read or any folder made
        check_run(cfg, out, resume=resume, overwrite=overwrite, device=torch_device)
        if root is not None and not root.is_dir():
            raise FileNotFoundError(f"--root {root} is not a folder")
        train = load_split(cfg.train_split, root)
        val = load_split(cfg.val_split, root)
        command = "memlearn " + " ".join(shlex.quote(a) for a in sys.argv[1:])
        summary = run(
            cfg, train, val, out, resume=resume, overwrite=overwrite, progress=progress,
            command=command, device=torch_device,
        )  # fmt: skip
    typer.echo(json.dumps(summary, indent=2))


def _check_evaluate(o: dict[str, Any]) -> None:
    """Every option of ``evaluate``/``baseline``, before the checkpoint or the data is read."""
    from memlearn.data.layout import DRAWERS
    from memlearn.devices.programming import STRATEGIES
    from memlearn.onchip.deploy_config import MAX_LEVELS

    for name, low in (("ways", 2), ("shots", 1), ("steps", 0), ("tasks", 1), ("queries", 1),
                      ("seed", 0)):  # fmt: skip
        if o[name] < low:
            raise ValueError(f"--{name} must be >= {low}, got {o[name]}")
    if o["shots"] >= DRAWERS:
        raise ValueError(
            f"--shots {o['shots']} leaves no query image: an Omniglot class has {DRAWERS} "
            f"images, so --shots must be in [1, {DRAWERS - 1}]"
        )
    if o["split"] is not None and o["split"] not in TASK_SPLITS:
        raise ValueError(f"unknown split {o['split']!r}; allowed: {', '.join(TASK_SPLITS)}")
    if o["checkpoint"] is not None and not o["checkpoint"].is_file():
        raise ValueError(f"checkpoint {o['checkpoint']} does not exist (or is not a file)")
    if o["root"] is not None and not o["root"].is_dir():
        raise ValueError(f"--root {o['root']} is not a folder")
    if o.get("preset") is not None:
        from memlearn.devices.preset import load_preset

        load_preset(o["preset"])  # an unknown preset fails here, naming the presets
        if o["strategy"] not in STRATEGIES:
            raise ValueError(
                f"unknown strategy {o['strategy']!r}; allowed: {', '.join(STRATEGIES)}"
            )
        if not 2 <= o["levels"] <= MAX_LEVELS:
            raise ValueError(f"--levels must be in [2, {MAX_LEVELS}], got {o['levels']}")


def _evaluate(o: dict[str, Any], baseline: bool, progress: bool) -> None:
    """Run ``evaluate`` (or ``baseline``) with the options ``o`` (named as the command's)."""
    from memlearn.data import default_eval_split, load_split
    from memlearn.meta.checkpoint import load_checkpoint, shipped_checkpoint_path
    from memlearn.meta.evaluate import evaluate

    _check_evaluate(o)
    _set_threads()
    checkpoint, root, preset = o["checkpoint"], o["root"], o.get("preset")
    strategy, levels, seed = o.get("strategy"), o.get("levels"), o["seed"]
    if baseline and checkpoint is None:
        checkpoint = shipped_checkpoint_path("omniglot_5way_baseline.pt")
    net, info = load_checkpoint(checkpoint)
    name = o["split"] or default_eval_split(root)
    classes = load_split(name, root)
    programmer = None
    if preset:
        from memlearn.meta.hardware import TableProgrammer

        if not info.get("weight_max"):
            raise ValueError(f"checkpoint {info['path']} has no weight_max for --preset")
        from memlearn.onchip.policies import DEFAULT_POLICY

        # updates reach the levels as the checkpoint was trained to expect, else as the loop's
        # default policy does
        rule = (info.get("device") or {}).get("update_rule", DEFAULT_POLICY)
        programmer = TableProgrammer.from_device(preset, strategy, levels, seed=seed, rounding=rule)
    ways, shots, steps, tasks = o["ways"], o["shots"], o["steps"], o["tasks"]
    with progress_bar(tasks, "tasks", bar_disabled(progress, o["as_json"])) as bar:
        result = evaluate(
            net, info["inner_lrs"], classes, ways=ways, shots=shots, steps=steps, tasks=tasks,
            queries=o["queries"], seed=seed, transductive=o.get("transductive", False),
            programmer=programmer, weight_max=info.get("weight_max") if preset else None,
            progress=bar.update,
        )  # fmt: skip
    note = f"checkpoint {info['path']}; split {name!r} ({classes.n_classes} classes)"
    if preset:
        note += (
            f"; head programmed as {preset}/{strategy}, {levels} levels, {programmer.rounding} "
            "updates (software model)"
        )
    if o.get("transductive"):
        note += "; TRANSDUCTIVE batch norm (statistics of each task's images, not chip-like)"
    if o["as_json"]:
        typer.echo(note, err=True)
        record = {k: (str(v) if isinstance(v, Path) else v) for k, v in o.items() if k != "as_json"}
        record.update(checkpoint=str(info["path"]), split=name, inner_lrs=info["inner_lrs"])
        if programmer is not None:
            record["update_rule"] = programmer.rounding
        typer.echo(json.dumps(with_config(result, record)))
        return
    typer.echo(note)
    typer.echo(f"{ways}-way {shots}-shot, {tasks} tasks, {steps} updates (lrs {info['inner_lrs']})")
    for k, acc in enumerate(result["accuracy_by_step"]):
        typer.echo(f"  after {k} updates: {100 * acc:6.2f} %")
    typer.echo(f"  95 % CI (last step): ± {100 * result['accuracy_ci95']:.2f} points")


def evaluate_cmd(
    checkpoint: Path | None = typer.Option(None, "--checkpoint", help=CHECKPOINT_HELP),
    split: str | None = typer.Option(None, "--split", help=SPLIT_HELP),
    ways: int = typer.Option(5, "--ways", help="Classes per task."),
    shots: int = typer.Option(1, "--shots", help="Support images per class."),
    steps: int = typer.Option(5, "--steps", help="Inner SGD updates of the head."),
    tasks: int = typer.Option(1000, "--tasks", help="Tasks to average over."),
    queries: int = typer.Option(
        15, "--queries", help="Query images per class (at most 20 - shots: what a class has)."
    ),
    seed: int = typer.Option(0, "--seed", help="Task sampling seed."),
    root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object."),
    transductive: bool = typer.Option(
        False, "--transductive", help="Extra, not chip-like: BN with each task's statistics."
    ),
    preset: str | None = typer.Option(
        None,
        "--preset",
        help="Extra: hold the head on this device preset's levels with its measured "
        "programming statistics (default: ideal float weights).",
    ),
    device: str | None = typer.Option(None, "--device", hidden=True),
    strategy: str = typer.Option("hybrid", "--strategy", help="Write strategy for --preset."),
    levels: int = typer.Option(8, "--levels", help="Levels per cell for --preset."),
    progress: bool = progress_option(PROGRESS_HELP),
) -> None:
    """Ideal-software few-shot accuracy of a checkpoint after 0..STEPS head updates."""
    with user_errors():
        preset = deprecated_alias("--device", "--preset", device, preset)
        options = dict(locals())
        for key in ("device", "progress"):
            options.pop(key)
        _evaluate(options, baseline=False, progress=progress)


def baseline_cmd(
    checkpoint: Path | None = typer.Option(
        None, "--checkpoint", help="Baseline checkpoint; default: the shipped baseline."
    ),
    split: str | None = typer.Option(None, "--split", help=SPLIT_HELP),
    ways: int = typer.Option(5, "--ways", help="Classes per task."),
    shots: int = typer.Option(1, "--shots", help="Support images per class."),
    steps: int = typer.Option(5, "--steps", help="Fine-tuning SGD updates of the head."),
    tasks: int = typer.Option(1000, "--tasks", help="Tasks to average over."),
    queries: int = typer.Option(
        15, "--queries", help="Query images per class (at most 20 - shots: what a class has)."
    ),
    seed: int = typer.Option(0, "--seed", help="Task sampling seed."),
    root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object."),
    progress: bool = progress_option(PROGRESS_HELP),
) -> None:
    """Baseline without meta-learning: pretrained classifier, head fine-tuned on the support set.

    Prints the same JSON as memlearn evaluate.
    """
    with user_errors():
        options = dict(locals())
        options.pop("progress")
        _evaluate(options, baseline=True, progress=progress)


def register(app: typer.Typer) -> None:
    """Attach ``meta-train``, ``evaluate`` and ``baseline`` to the main application."""
    app.command("meta-train")(meta_train)
    app.command("evaluate")(evaluate_cmd)
    app.command("baseline")(baseline_cmd)
