"""``memlearn device``: list presets, characterise a write strategy, fit a preset to data."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from memlearn.cli.common import with_config
from memlearn.cli.errors import user_errors
from memlearn.devices.preset import DEFAULT_PRESET

if TYPE_CHECKING:
    from memlearn.devices.characterize import Characterization

HELP = (
    "Device presets and their sources, strategy characterisation (level statistics, error "
    "rate, pulses, energy, bake), and fitting a preset to measured conductances."
)

app = typer.Typer(help=HELP, no_args_is_help=True)


@app.command("presets")
def presets(
    show: str = typer.Option(None, "--show", help="Print every parameter of this preset."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List the shipped presets (the default first), or show one preset's parameters."""
    from memlearn.devices.preset import PARAMETERS, list_presets, load_preset

    with user_errors():
        if show:
            p = load_preset(show)
            if as_json:
                typer.echo(json.dumps(with_config({
                    "name": p.name, "kind": p.kind, "description": p.description,
                    "parameters": {
                        k: {"value": p.values[k], "unit": PARAMETERS[k][1], "source": p.sources[k]}
                        for k in PARAMETERS if k in p.values
                    },
                }, {"show": show})))  # fmt: skip
                return
            typer.echo(f"{p.name} ({p.kind}): {p.description}")
            for key in PARAMETERS:
                if key in p.values:
                    unit = PARAMETERS[key][1]
                    typer.echo(f"  {key:20s} {p.values[key]:<12.4g} {unit:6s} {p.sources[key]}")
            return
        names = sorted(list_presets(), key=lambda n: (n != DEFAULT_PRESET, n))
        loaded = [load_preset(n) for n in names]
        if as_json:
            typer.echo(json.dumps(with_config({
                "default": DEFAULT_PRESET,
                "presets": [
                    {"name": p.name, "kind": p.kind, "description": p.description,
                     "window_us": [p.window[0] * 1e6, p.window[1] * 1e6],
                     "sources": sorted(set(p.sources.values()))}
                    for p in loaded
                ],
            }, {"show": None})))  # fmt: skip
            return
        for p in loaded:
            mark = " (default)" if p.name == DEFAULT_PRESET else ""
            lo, hi = p.window
            typer.echo(f"{p.name}{mark} [{p.kind}] window {lo * 1e6:g}-{hi * 1e6:g} uS")
            typer.echo(f"  {p.description}")
            tags = Counter(s.split("]")[0] + "]" for s in p.sources.values() if s.startswith("["))
            counts = ", ".join(f"{n} {tag}" for tag, n in sorted(tags.items()))
            typer.echo(
                f"  sources: {counts} (each value's: memlearn device presets --show {p.name})"
            )


@app.command("characterize")
def characterize_cmd(
    preset: str = typer.Option(DEFAULT_PRESET, "--preset", help="Preset name or file."),
    strategy: str = typer.Option(
        "hybrid", "--strategy", help="single-set, iterative-set, iterative-reset or hybrid."
    ),  # fmt: skip
    levels: int = typer.Option(8, "--levels", help="Number of levels, 2-64 (2-16 typical)."),
    cells: int = typer.Option(1000, "--cells", help="Cells programmed per level."),
    window_us: tuple[float, float] | None = typer.Option(
        None, "--window-us", help="Conductance window LO HI in µS (default: the strategy's)."
    ),
    bake_hours: float = typer.Option(0.0, "--bake-hours", help="Bake duration (h) after."),
    bake_celsius: float = typer.Option(150.0, "--bake-celsius", help="Bake temperature (°C)."),
    seed: int = typer.Option(0, "--seed", help="Random seed."),
    as_json: bool = typer.Option(False, "--json", help="Print exactly one JSON object."),
    plot: Path = typer.Option(None, "--plot", help="Write conductance histograms (PNG)."),
    csv_out: Path = typer.Option(
        None, "--csv", help="Write every cell's conductance as a CSV in the 'fit' format."
    ),
) -> None:
    """Program M cells per level with a strategy and report the level statistics (µS).

    With --bake-hours the text shows the levels before and after the bake; the --json object
    (keys preset, strategy, levels, level_error_rate, pulses_per_cell, energy_per_cell_j,
    failed_fraction) holds the baked figures: the same command without the bake gives the
    as-programmed ones (the same seed programs the same cells).
    """
    from memlearn.bounds import check_celsius, check_hours
    from memlearn.devices.characterize import (
        characterize,
        plot_characterization,
        write_measurements_csv,
    )
    from memlearn.devices.levels import strategy_window
    from memlearn.devices.preset import load_preset
    from memlearn.devices.programming import check_strategy

    with user_errors():
        for option, path in (("--plot", plot), ("--csv", csv_out)):
            if path is not None and not path.parent.is_dir():
                raise ValueError(f"{option}: folder {str(path.parent)!r} does not exist")
        if plot is not None and plot.suffix.lower() != ".png":
            raise ValueError(f"--plot must name a .png file, got {str(plot)!r}")
        if seed < 0:
            raise ValueError(f"--seed must be >= 0, got {seed}")
        check_hours(bake_hours, "--bake-hours")
        check_celsius(bake_celsius, "--bake-celsius")
        window = None
        if window_us is not None and window_us[0] is not None:
            window = (window_us[0] * 1e-6, window_us[1] * 1e-6)
        p = load_preset(preset)
        check_strategy(strategy)
        win = window if window is not None else strategy_window(p, strategy)
        ch = characterize(p, strategy, levels, cells, win, bake_hours, bake_celsius, seed)
        if plot is not None:
            plot_characterization(ch, str(plot))
        if csv_out is not None:
            write_measurements_csv(ch, str(csv_out))
    if as_json:
        record = {
            "preset": preset, "strategy": strategy, "levels": levels, "cells": cells,
            "window_us": None if window is None else [window_us[0], window_us[1]],
            "bake_hours": bake_hours, "bake_celsius": bake_celsius, "seed": seed,
            "plot": None if plot is None else str(plot),
            "csv": None if csv_out is None else str(csv_out),
        }  # fmt: skip
        typer.echo(json.dumps(with_config(ch.as_json(), record)))
        return
    _print_characterization(ch, cells, bake_hours, bake_celsius, plot)


def _print_characterization(
    ch: Characterization, cells: int, bake_hours: float, bake_celsius: float, plot: Path | None
) -> None:
    """The text report of ``device characterize``: each stage's levels in µS, then the cost."""
    stages = [("after programming", ch.programmed)]
    if ch.baked is not None:
        stages.append((f"after {bake_hours:g} h at {bake_celsius:g} C", ch.baked))
    typer.echo(f"preset {ch.preset}, strategy {ch.strategy}, {cells} cells per level")
    for title, st in stages:
        typer.echo(
            f"{title}: level error rate {st.error_rate:.2%} ({st.healthy_error_rate:.2%} of "
            f"the cells not stuck), sigma/Delta {st.sigma_over_spacing:.3f}"
        )
        typer.echo("  target_uS   mean_uS   std_uS")
        for row in st.as_json():
            typer.echo(f"  {row['target_us']:9.2f} {row['mean_us']:9.2f} {row['std_us']:8.2f}")
    typer.echo(
        f"pulses per cell {ch.pulses_per_cell:.2f}, energy per cell "
        f"{ch.energy_per_cell_j * 1e12:.1f} pJ, failed {ch.failed_fraction:.2%} "
        f"({ch.healthy_failed_fraction:.2%} of the cells not stuck never verified)"
    )
    if plot is not None:
        typer.echo(f"plot written to {plot}")


@app.command("fit")
def fit_cmd(
    measurements: Path = typer.Argument(
        ...,
        help="CSV: level, conductance (S) per read, or level, mean, std (S) per level;"
        " optional time (s), temperature (C), n.",
    ),  # fmt: skip
    base: str = typer.Option(DEFAULT_PRESET, "--preset", help="Base preset to start from."),
    strategy: str = typer.Option("hybrid", "--strategy", help="Strategy that wrote the data."),
    name: str = typer.Option(None, "--name", help="Name of the new preset."),
    out: Path = typer.Option(None, "--out", help="Preset file to write (.toml or .json)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Fit level statistics and drift (and Ea) to measurements; write a new preset file."""
    from memlearn.devices.fitting import fit_measurements
    from memlearn.devices.preset import save_preset

    with user_errors():
        if name is not None and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", name):
            raise ValueError(
                f"--name must be a plain name (letters, digits, '.', '_', '-'), got {name!r}"
            )
        if out is not None and not out.parent.is_dir():
            raise ValueError(f"--out: folder {str(out.parent)!r} does not exist")
        if out is not None and out.suffix.lower() not in (".toml", ".json"):
            raise ValueError(f"--out must name a .toml or .json file, got {str(out)!r}")
        result = fit_measurements(measurements, base, strategy, name)
        target = out or Path(f"{result.preset.name}.toml")
        save_preset(result.preset, target)
    summary = {
        "preset": result.preset.name,
        "file": str(target),
        "rows": result.rows,
        "dropped_outliers": result.dropped_outliers,
        "levels": [
            {"level": lv, "mean_us": m * 1e6, "std_us": s * 1e6} for lv, m, s in result.levels
        ],
        "drift_mean_us_per_ln_t": None if result.drift_mean is None else result.drift_mean * 1e6,
        "drift_sigma_us_per_ln_t": None if result.drift_sigma is None else result.drift_sigma * 1e6,
        "fast_sigma_us": None if result.fast_sigma is None else result.fast_sigma * 1e6,
        "ea_ev": result.ea_ev,
        "relax_icc_exp": result.icc_exp,
        "spread_check": [
            {"mean_us": m * 1e6, "std_us": s * 1e6, "fitted_std_us": f * 1e6}
            for m, s, f in result.spread_check
        ],
    }  # fmt: skip
    if as_json:
        record = {
            "measurements": str(measurements), "preset": base, "strategy": strategy,
            "name": name, "out": str(target),
        }  # fmt: skip
        typer.echo(json.dumps(with_config(summary, record)))
        return
    typer.echo(f"fitted {result.rows} rows ({result.dropped_outliers} outlying reads dropped)")
    for lv, m, s in result.levels:
        typer.echo(f"  level {lv}: mean {m * 1e6:.2f} uS, std {s * 1e6:.2f} uS")
    if result.drift_sigma is not None:
        typer.echo(
            f"  drift per ln(t) at g_ref: mean {result.drift_mean * 1e6:.3f} uS, "
            f"spread {result.drift_sigma * 1e6:.3f} uS (at I_ref)"
        )
    typer.echo(f"  fast relaxation at I_ref: {result.fast_sigma * 1e6:.3f} uS")
    if result.icc_exp is not None:
        typer.echo(f"  stability law: spread ∝ (I_cc / I_ref)^-{result.icc_exp:.2f}")
    for m, s, f in result.spread_check:
        typer.echo(
            f"  {m * 1e6:7.1f} uS: std measured {s * 1e6:.2f} uS, fitted preset {f * 1e6:.2f}"
        )
    if result.ea_ev is not None:
        typer.echo(f"  activation energy {result.ea_ev:.2f} eV")
    typer.echo(f"preset written to {target} (use --preset {target})")
