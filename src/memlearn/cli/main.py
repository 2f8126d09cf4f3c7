"""The ``memlearn`` command: one Typer application with a sub-command per layer."""

from __future__ import annotations

import os
from typing import Any

# OpenMP worker threads that spin-wait between parallel regions made runs on shared 2-core
# machines several-fold slower (`memlearn demo`: 102 s instead of 13 s; bench/program.py).  Let
# them sleep unless the user says otherwise; this must precede torch's first import.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import typer  # noqa: E402

from memlearn import __version__  # noqa: E402


def _flags_show_no_type() -> None:
    """Typer's help shows ``<bool>`` after every flag (``--json <bool>``), as if it took a value:
    a flag's type column stays empty instead (an explicit ``metavar`` still shows)."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "_memlearn", False):
        return

    def display_type_rich(self: TyperOption, ctx: object) -> str | None:
        if self.metavar is None and self.is_flag and not self.count:
            return None
        return shown(self, ctx)

    display_type_rich._memlearn = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


def _usage_errors_in_one_line() -> None:
    """A usage error (``--tasks abc``, an unknown option) is one ``error:`` line on stderr, as
    every other mistake, instead of Typer's usage block and framed panel."""
    from typer import rich_utils

    if getattr(rich_utils.rich_format_error, "_memlearn", False):
        return

    def one_line(exc: Any) -> None:
        if type(exc).__name__ == "NoArgsIsHelpError":  # the help is shown instead
            return
        ctx = getattr(exc, "ctx", None)
        hint = f" (see {ctx.command_path} --help)" if ctx is not None else ""
        typer.echo(f"error: {exc.format_message()}{hint}", err=True)

    one_line._memlearn = True  # type: ignore[attr-defined]
    rich_utils.rich_format_error = one_line  # type: ignore[assignment]


_flags_show_no_type()
_usage_errors_in_one_line()

app = typer.Typer(
    name="memlearn",
    help=(
        "memlearn: simulate and drive on-chip learning on resistive-memory crossbars. "
        "Program multi-level ReRAM cells pulse by pulse, meta-train a few-shot network "
        "off-chip, adapt it on (simulated or real) chips, and reproduce the reference studies."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"memlearn {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """memlearn command line."""


def _register() -> None:
    """Attach the sub-commands of each layer (each module adds its own commands)."""
    # Each entry: module path, attribute, how it attaches ("group" NAME or "commands").
    from memlearn.cli import data as data_cli

    app.add_typer(data_cli.app, name="data", help=data_cli.HELP)

    from memlearn.cli import device as device_cli

    app.add_typer(device_cli.app, name="device", help=device_cli.HELP)

    from memlearn.cli import chip as chip_cli
    from memlearn.cli import onchip as onchip_cli

    app.add_typer(chip_cli.app, name="chip", help=chip_cli.HELP)
    onchip_cli.register(app)
    from memlearn.cli import gap as gap_cli

    gap_cli.register(app)

    from memlearn.cli import meta as meta_cli

    meta_cli.register(app)

    from memlearn.cli import snn as snn_cli

    snn_cli.register(app)

    from memlearn.cli import ep as ep_cli

    app.add_typer(ep_cli.app, name="ep", help=ep_cli.HELP)

    from memlearn.cli import reproduce as reproduce_cli

    reproduce_cli.register(app)

    from memlearn.cli import continual as continual_cli

    continual_cli.register(app)


_register()
