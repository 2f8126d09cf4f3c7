"""``memlearn data``: fetch and check the data sets."""

from __future__ import annotations

import typer

HELP = "Fetch the official data sets (with checksums) and check which are present and valid."

app = typer.Typer(help=HELP, no_args_is_help=True)
