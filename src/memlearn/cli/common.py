"""What every command shares: split help, progress bars, the JSON record, deprecated aliases."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from memlearn.data.splits import SPLITS

# the splits that hold classes (`runs` holds Lake's fixed tasks: memlearn.data.load_runs)
TASK_SPLITS = tuple(s for s in SPLITS if s != "runs")
SPLITS_TEXT = ", ".join(TASK_SPLITS)


def split_help(what: str = "Alphabets to draw tasks from") -> str:
    """The help of a ``--split`` option, listing the split names."""
    return f"{what}: {SPLITS_TEXT} (default: evaluation when present, else val)."


def progress_option(help_text: str = "Show progress bars on stderr.") -> Any:
    """``--progress/--no-progress``, the one switch of progress bars on every command."""
    return typer.Option(True, "--progress/--no-progress", help=help_text)


def bar_disabled(progress: bool, as_json: bool = False) -> bool | None:
    """tqdm's ``disable``: off with ``--no-progress`` or ``--json``; else ``None`` (tqdm shows
    the bar only when stderr is a terminal)."""
    return True if (not progress or as_json) else None


@contextmanager
def progress_bar(total: int | None, desc: str, disable: bool | None) -> Iterator[Any]:
    """A tqdm bar on stderr (closed on exit) that vanishes when done."""
    import sys

    from tqdm.auto import tqdm

    with tqdm(total=total, desc=desc, disable=disable, file=sys.stderr, leave=False) as bar:
        yield bar


def with_config(payload: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    """``payload`` with a ``config`` key: the command's options as resolved and the versions of
    the packages the result depends on (a key already in ``payload`` is kept as it is)."""
    from memlearn.experiments.provenance import package_versions

    return {**payload, "config": {**config, "versions": package_versions()}}


def deprecated_alias(old: str, new: str, old_value: Any, new_value: Any) -> Any:
    """The value of option ``new`` given either as ``new`` or as its deprecated ``old`` name
    (which prints one note on stderr); both given and different is an error."""
    if old_value is None:
        return new_value
    typer.echo(f"note: {old} is deprecated; use {new}", err=True)
    if new_value is not None and new_value != old_value:
        raise ValueError(f"{old} (deprecated) and {new} differ ({old_value!r}, {new_value!r})")
    return old_value
