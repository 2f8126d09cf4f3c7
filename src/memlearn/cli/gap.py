"""``memlearn adapt-gap``: where the on-chip accuracy goes, one non-ideality at a time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from memlearn.cli.common import bar_disabled, deprecated_alias, progress_bar, with_config
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
from memlearn.onchip.deploy import DeployConfig

GAP_CHIPS = 1000  # [E] adapt-gap's chips simulated at once (a round of 1000 tasks fits in memory)


def adapt_gap(
    checkpoint: Path | None = CHECKPOINT_OPTION,
    preset: str | None = PRESET_OPTION,
    strategy: str = STRATEGY_OPTION,
    policy: str = POLICY_OPTION,
    tasks: int = typer.Option(200, "--tasks", help="New tasks, one simulated chip each."),
    chips: int | None = typer.Option(
        None, "--chips", help="Chips simulated at once (default 1000; more tasks run in rounds)."
    ),
    max_chips: int | None = typer.Option(None, "--max-chips", hidden=True),
    ways: int = WAYS_OPTION,
    shots: int = SHOTS_OPTION,
    steps: int = STEPS_OPTION,
    split: str | None = SPLIT_OPTION,
    levels: int | None = LEVELS_OPTION,
    weight_max: str = WEIGHT_MAX_OPTION,
    support_copies: int = SUPPORT_COPIES_OPTION,
    spare_pairs: int | None = SPARE_PAIRS_OPTION,
    seed: int = SEED_OPTION,
    root: Path | None = ROOT_OPTION,
    as_json: bool = JSON_OPTION,
    progress: bool = PROGRESS_OPTION,
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
    """Attach ``adapt-gap`` to the main application."""
    app.command("adapt-gap")(adapt_gap)
