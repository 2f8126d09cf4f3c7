"""Options shared by ``memlearn adapt``, ``adapt-gap`` and ``demo`` (Typer reads them, never
changes them)."""

from __future__ import annotations

import typer

from memlearn.cli.common import progress_option, split_help
from memlearn.data.augment import DEFAULT_SUPPORT_COPIES
from memlearn.devices.programming import STRATEGIES
from memlearn.onchip.deploy_config import DEFAULT_PRESET
from memlearn.onchip.policies import DEFAULT_POLICY, POLICIES

CHECKPOINT_OPTION = typer.Option(
    None, "--checkpoint", help="Meta-trained checkpoint (default: the shipped model)."
)
PRESET_OPTION = typer.Option(
    None, "--preset", help=f"Device preset name or file (default: {DEFAULT_PRESET})."
)
STRATEGY_OPTION = typer.Option(
    "hybrid", "--strategy", help=f"Write strategy: {', '.join(STRATEGIES)}."
)
POLICY_OPTION = typer.Option(
    DEFAULT_POLICY, "--policy", help=f"Update policy: {', '.join(POLICIES)}."
)
WAYS_OPTION = typer.Option(5, "--ways", help="Classes per task (must match the model).")
SHOTS_OPTION = typer.Option(1, "--shots", help="Support images per class.")
STEPS_OPTION = typer.Option(5, "--steps", help="On-chip gradient updates per task.")
SPLIT_OPTION = typer.Option(None, "--split", help=split_help())
LEVELS_OPTION = typer.Option(
    None, "--levels", help="Conductance levels per cell (default: the model's, else 8)."
)
WEIGHT_MAX_OPTION = typer.Option(
    "auto",
    "--weight-max",
    help="Full-scale weight per layer: checkpoint, accuracy (calibrated on training tasks), "
    "peak, or auto (the checkpoint's when it was trained for this preset, strategy and levels; "
    "else accuracy, starting from the checkpoint's).",
)
SUPPORT_COPIES_OPTION = typer.Option(
    DEFAULT_SUPPORT_COPIES,
    "--support-copies",
    help="Distorted copies of each support image the loop also learns from (0: the shots alone).",
)
SPARE_PAIRS_OPTION = typer.Option(
    None,
    "--spare-pairs",
    help="Spare column pairs of the output array: a test pass puts each output on the "
    "healthiest pairs (default: the rest of its tile; 0: no repair).",
)
SEED_OPTION = typer.Option(0, "--seed", help="Seed of the tasks, the chips and the loop.")
ROOT_OPTION = typer.Option(
    None, "--root", help="Data root (default: MEMLEARN_DATA, then the cache)."
)
JSON_OPTION = typer.Option(False, "--json", help="Print one JSON object on stdout.")
PROGRESS_OPTION = progress_option("Show a progress bar on stderr (never with --json).")
