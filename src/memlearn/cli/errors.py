"""Turning library errors into one clear CLI message and a non-zero exit code."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import typer

from memlearn.errors import MemlearnError


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    """Print a user-facing error as ``error: ...`` on stderr and exit with status 2."""
    try:
        yield
    except (MemlearnError, ValueError, FileNotFoundError) as exc:
        typer.secho(f"error: {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(code=2) from exc
