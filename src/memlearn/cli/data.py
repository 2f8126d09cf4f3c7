"""``memlearn data``: fetch and check the data sets."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from memlearn.cli.common import progress_option, with_config
from memlearn.cli.errors import user_errors

HELP = "Fetch the official data sets (with checksums) and check which are present and valid."

app = typer.Typer(help=HELP, no_args_is_help=True)

ROOT_HELP = (
    "Data root (default: $MEMLEARN_DATA, else the per-user cache folder). Data sets live in "
    "<root>/omniglot/ and <root>/mnist/."
)


@app.command()
def fetch(
    dataset: str = typer.Argument(..., help="Data set to download: omniglot or mnist."),
    root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
    file: list[str] | None = typer.Option(
        None,
        "--file",
        help="Only this official file (repeatable), e.g. images_evaluation.zip.",
    ),
    mirror: str | None = typer.Option(
        None,
        "--mirror",
        help="URL base laid out like a data root (<mirror>/omniglot/<file>); also "
        "$MEMLEARN_DATA_MIRROR. Default: the official locations.",
    ),
    force: bool = typer.Option(
        False, "--force", help="Download again even if a valid copy exists."
    ),
    progress: bool = progress_option("Show a progress bar on stderr (never with --json)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """Download the official files of DATASET, verify their checksums, and write them atomically.

    A corrupt or truncated download is refused and that file is not written; offline, use
    --mirror URL or point MEMLEARN_DATA at a copy of the files.
    Files already present and valid are kept.
    """
    from memlearn.data.fetch import fetch as do_fetch

    with user_errors():
        results = do_fetch(
            dataset, root, files=file, mirror=mirror, progress=progress and not as_json,
            force=force,
        )  # fmt: skip
    if as_json:
        files = [
            {"path": str(r.path), "verified": r.verified, "downloaded": r.downloaded}
            for r in results
        ]
        record = {
            "dataset": dataset, "root": None if root is None else str(root), "files": file,
            "mirror": mirror, "force": force,
        }  # fmt: skip
        typer.echo(json.dumps(with_config({"dataset": dataset, "files": files}, record)))
        return
    for r in results:
        action = "downloaded" if r.downloaded else "present"
        typer.echo(f"{action:10}  {r.path}  ({r.verified})")


@app.command()
def check(
    root: Path | None = typer.Option(None, "--root", help=ROOT_HELP),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
) -> None:
    """List which data sets are present and valid (layout, counts, checksums) and which are missing.

    Every image of a set that is not byte-for-byte the official file is checked to be a
    readable PNG.  Exit status 1 when a data set is present but invalid, 2 when none is present.
    """
    from memlearn.data.check import check_data
    from memlearn.data.layout import search_dirs
    from memlearn.data.roots import dataset_dirs

    with user_errors():
        if root is not None and not root.is_dir():
            raise ValueError(f"--root {root} is not a folder")
        statuses = check_data(root)
    searched = [str(p) for p in search_dirs(root)] + [str(p) for p in dataset_dirs("mnist", root)]
    if as_json:
        out = {"datasets": [s.as_dict() for s in statuses], "searched": searched}
        typer.echo(json.dumps(with_config(out, {"root": None if root is None else str(root)})))
    else:
        width = max(len(s.name) for s in statuses)
        for s in statuses:
            typer.echo(f"{s.name:{width}}  {s.state:7}  {s.detail}")
            if s.path:
                typer.echo(f"{'':{width}}           {s.path}")
        typer.echo("searched: " + ", ".join(searched))
    if all(s.state == "missing" for s in statuses):
        typer.echo(
            "error: no data set found. Get them with `memlearn data fetch omniglot` (and "
            "`mnist`), offline from a mirror with `--mirror URL`, or set MEMLEARN_DATA (or "
            "--root) to a folder that holds them. `memlearn demo` needs none: it uses the "
            "val alphabets embedded in memlearn.",
            err=True,
        )
        raise typer.Exit(code=2)
    if any(s.state == "invalid" for s in statuses):
        raise typer.Exit(code=1)
