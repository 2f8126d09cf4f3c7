"""Every command and subcommand of ``memlearn`` with bad values: one ``error:`` line on stderr,
exit status 2, no traceback, no file left behind, and no data or network needed (each option is
checked before any data is read).

The commands are enumerated from the Typer application: a new command without rows in
:data:`BAD` fails :func:`test_every_command_has_rows`.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from memlearn.cli.main import app

# Placeholders in the rows: FILE a plain file (where a folder is needed), NODIR a folder that
# does not exist, CSV a valid measurement file for `device fit`.
FILE, NODIR, CSV = "{file}", "{nodir}", "{csv}"

BAD: dict[str, list[tuple[list[str], str]]] = {
    "adapt": [
        (["--preset", "no-such"], "no-such"),
        (["--strategy", "magic"], "unknown strategy 'magic'"),
        (["--policy", "sgd"], "unknown policy 'sgd'"),
        (["--split", "nope"], "unknown split 'nope'"),
        (["--split", "runs"], "unknown split 'runs'"),
        (["--tasks", "0"], "tasks must be >= 1"),
        (["--tasks", "-3"], "tasks must be >= 1"),
        (["--chips", "0"], "chips"),
        (["--ways", "1"], "ways must be >= 2"),
        (["--shots", "0"], "shots must be >= 1"),
        (["--shots", "25"], "shots 25 is too many"),
        (["--steps", "-1"], "steps must be >= 0"),
        (["--levels", "1"], "levels must be in [2, 64]"),
        (["--levels", "99"], "levels must be in [2, 64]"),
        (["--bake-hours", "1e299"], "bake_hours must be >= 0 and at most"),
        (["--bake-hours", "-1"], "bake_hours must be >= 0"),
        (["--bake-hours", "nan"], "bake_hours"),
        (["--bake-celsius", "5000"], "bake_celsius"),
        (["--bake-celsius", "-300"], "bake_celsius"),
        (["--spare-pairs", "-1"], "spare_pairs must be >= 0"),
        (["--spare-pairs", "500"], "must be in [0, 11]"),
        (["--weight-max", "largest"], "unknown weight_max"),
        (["--support-copies", "-1"], "support_copies"),
        (["--support-copies", "1000"], "support_copies"),
        (["--seed", "-1"], "seed must be >= 0"),
        (["--checkpoint", "missing.pt"], "missing.pt"),
        (["--checkpoint", NODIR], "does not exist"),
        (["--root", FILE], "not a folder"),
        (["--root", NODIR], "not a folder"),
        (["--bench", "nowhere"], "bench must be HOST:PORT"),
        (["--bench", "host:70000"], "bench must be HOST:PORT"),
        (["--tasks", "abc"], "Invalid value for '--tasks'"),
        (["--no-such-option"], "No such option"),
    ],
    "adapt-gap": [
        (["--preset", "no-such"], "no-such"),
        (["--strategy", "magic"], "unknown strategy"),
        (["--policy", "sgd"], "unknown policy"),
        (["--split", "nope"], "unknown split"),
        (["--tasks", "0"], "tasks must be >= 1"),
        (["--chips", "0"], "chips"),
        (["--max-chips", "0"], "chips"),
        (["--chips", "3", "--max-chips", "4"], "differ"),
        (["--shots", "25"], "too many"),
        (["--steps", "-2"], "steps must be >= 0"),
        (["--levels", "0"], "levels"),
        (["--spare-pairs", "500"], "must be in [0, 11]"),
        (["--weight-max", "x"], "unknown weight_max"),
        (["--support-copies", "-1"], "support_copies"),
        (["--seed", "-1"], "seed"),
        (["--checkpoint", "missing.pt"], "missing.pt"),
        (["--root", FILE], "not a folder"),
    ],
    "demo": [
        (["--out", FILE], "is a file"),
        (["--preset", "no-such"], "no-such"),
        (["--strategy", "magic"], "unknown strategy"),
        (["--seed", "-1"], "seed"),
        (["--checkpoint", "missing.pt"], "missing.pt"),
        (["--root", NODIR], "not a folder"),
        (["--root", FILE], "not a folder"),
    ],
    "meta-train": [
        (["--preset", "no-such"], "no-such"),
        (["--device", "no-such"], "no-such"),
        (["--strategy", "magic"], "strategy"),
        (["--torch-device", "gpu"], "unknown torch device 'gpu'"),
        (["--config", "missing.json"], "does not exist"),
        (["--config", NODIR], "does not exist"),
        (["--resume", "--overwrite"], "exclude each other"),
        (["--resume"], "no training state"),
        (["--seed", "-1"], "seed"),
        (["--root", NODIR], "--root"),
        (["--root", FILE], "--root"),
        (["--out", FILE], "out"),
    ],
    "evaluate": [
        (["--split", "nope"], "unknown split 'nope'"),
        (["--split", "runs"], "unknown split 'runs'"),
        (["--ways", "1"], "--ways must be >= 2"),
        (["--shots", "0"], "--shots must be >= 1"),
        (["--shots", "20"], "--shots 20 leaves no query image"),
        (["--steps", "-1"], "--steps must be >= 0"),
        (["--tasks", "0"], "--tasks must be >= 1"),
        (["--queries", "0"], "--queries must be >= 1"),
        (["--seed", "-1"], "--seed must be >= 0"),
        (["--checkpoint", "missing.pt"], "missing.pt"),
        (["--root", NODIR], "not a folder"),
        (["--root", FILE], "not a folder"),
        (["--preset", "no-such"], "no-such"),
        (["--device", "no-such"], "no-such"),
        (["--preset", "hfo2-mlc", "--strategy", "magic"], "unknown strategy"),
        (["--preset", "hfo2-mlc", "--levels", "1"], "--levels must be in [2, 64]"),
    ],
    "baseline": [
        (["--split", "nope"], "unknown split"),
        (["--ways", "0"], "--ways"),
        (["--shots", "-1"], "--shots"),
        (["--steps", "-1"], "--steps"),
        (["--tasks", "0"], "--tasks"),
        (["--queries", "-5"], "--queries"),
        (["--checkpoint", "missing.pt"], "missing.pt"),
        (["--root", FILE], "not a folder"),
    ],
    "reproduce": [
        (["nope"], "unknown study 'nope'"),
        (["--preset", "no-such"], "no-such"),
        (["--policy", "sgd"], "policy"),
        (["--backend", "cloud"], "unknown backend"),
        (["--seed", "-1"], "--seed"),
        (["overlap", "--tasks", "0"], "--tasks must be >= 1"),
        (["overlap", "--levels", "1,2"], "--levels must be integers in [2, 64]"),
        (["overlap", "--ratios", "0,1"], "--ratios"),
        (["window", "--spans-us", "x"], "--spans-us"),
        (["strategies", "--cells", "1"], "--cells must be >= 2"),
        (["curves", "--task-sets", "0"], "--task-sets"),
        (["retention", "--bake-hours", "1e299"], "--bake-hours"),
        (["retention", "--bake-celsius", "5000"], "--bake-celsius"),
        (["retention", "--drift-factors", "x"], "--drift-factors"),
        (["retention", "--drift-factors", "4,16"], "drift factors must include 1"),
        (["overlap", "--strategy", "magic"], "unknown strategy"),
        (["strategies", "--levels", "4"], "none of them is run"),
        (["--support-copies", "-1"], "--support-copies"),
        (["--checkpoint", "missing.pt"], "missing.pt"),
        (["--root", NODIR], "not a folder"),
        (["--out", FILE], "not a directory"),
    ],
    "data fetch": [
        (["nope"], "unknown data set 'nope'"),
        (["omniglot", "--file", "nope.zip"], "nope.zip"),
        (["omniglot", "--root", FILE], ""),
        (["mnist", "--root", "fetched", "--mirror", "http://mirror.invalid"], "mirror.invalid"),
        (["mnist", "--root", "fetched"], ""),
    ],
    "data check": [
        (["--root", NODIR], "not a folder"),
        (["--root", FILE], "not a folder"),
    ],
    "device presets": [
        (["--show", "no-such"], "no-such"),
    ],
    "device characterize": [
        (["--preset", "no-such"], "no-such"),
        (["--strategy", "magic"], "magic"),
        (["--levels", "1"], "levels"),
        (["--levels", "99"], "levels"),
        (["--cells", "0"], "cells"),
        (["--window-us", "100", "10"], "window"),
        (["--window-us", "-5", "10"], "window"),
        (["--bake-hours", "1e299"], "--bake-hours"),
        (["--bake-hours", "-1"], "--bake-hours"),
        (["--bake-celsius", "5000"], "--bake-celsius"),
        (["--seed", "-1"], "seed"),
        (["--plot", "nodir/x.png"], "does not exist"),
        (["--plot", "x.txt"], ".png"),
        (["--csv", "nodir/x.csv"], "does not exist"),
    ],
    "device fit": [
        ([], "Missing argument"),
        (["missing.csv"], "missing.csv"),
        ([NODIR], "nodir"),
        ([CSV, "--preset", "no-such"], "no-such"),
        ([CSV, "--strategy", "magic"], "magic"),
        ([CSV, "--out", "nodir/p.toml"], "nodir"),
        ([CSV, "--out", "p.txt"], "p.txt"),
        ([CSV, "--name", "bad/name"], "name"),
    ],
    "chip serve": [
        (["--preset", "no-such"], "no-such"),
        (["--chips", "0"], "--chips"),
        (["--levels", "1"], "levels"),
        (["--port", "70000"], "--port"),
        (["--port", "-1"], "--port"),
        (["--host", "256.0.0.1"], "256.0.0.1"),
        (["--spare-pairs", "500"], "must be in [0, 11]"),
        (["--spare-pairs", "-1"], "spare"),
        (["--max-message-mb", "0"], "--max-message-mb"),
        (["--idle-timeout", "0"], "--idle-timeout"),
        (["--max-clients", "0"], "--max-clients"),
        (["--max-buffered-mb", "-1"], "--max-buffered-mb"),
        (["--seed", "-1"], "seed"),
    ],
    "continual": [
        (["--meta", "-1"], "meta (m) must be a finite number >= 0"),
        (["--tasks", "0"], "tasks must be an integer >= 1"),
        (["--benchmark", "foo"], "unknown benchmark 'foo'"),
        (["--chips", "0"], "chips must be an integer >= 1"),
        (["--network", "chip", "--hidden", "5000,5000"], "the chip holds 16384 binary weights"),
        (["--network", "foo"], "unknown network 'foo'"),
        (["--weight-max", "0"], "weight_max must be > 0"),
        (["--epochs", "0"], "epochs must be an integer >= 1"),
        (["--batch", "0"], "batch must be an integer >= 1"),
        (["--rounding", "foo"], "unknown rounding 'foo'"),
    ],
    "snn train": [
        (["--epochs", "0"], "epochs must be >= 1"),
        (["--resume", "--overwrite"], "--resume and --overwrite exclude each other"),
    ],
    "snn evaluate": [
        (["--chips", "0"], "chips must be an integer >= 1"),
        (["--images", "0"], "--images must be in 1..10000"),
        (["--preset", "no-such"], "no-such"),
        (["--strategy", "magic"], "unknown strategy 'magic'"),
        (["--hours", "-1"], "hours must be >= 0"),
        (["--reads", "-1"], "reads must be >= 0"),
        (["--delta-s", "0"], "delta_s must be an integer >= 1"),
        (["--coding", "burst"], "coding must be one of periodic, poisson"),
    ],
    "snn hidden": [
        (["--hidden", "0"], "hidden must be an integer in 1..1024"),
        (["--epochs", "0"], "epochs must be >= 1"),
    ],
    "ep train": [
        (["--network", "784-x-10"], "unknown network string '784-x-10'"),
        (["--beta", "0"], "beta must be a finite number > 0"),
        (["--levels", "1"], "levels must be an integer in [2, 64]"),
        (["--update", "foo"], "unknown update 'foo'"),
        (["--rule", "foo"], "unknown rule 'foo'"),
        (["--preset", "no-such"], "no-such"),
        (["--chips", "0"], "chips must be an integer >= 1"),
        (["--epochs", "0"], "epochs must be an integer >= 1"),
        (["--validation", "1"], "validation (1) + train_images (60000) must be <= 60000"),
    ],
    "ep adapt-head": [
        (["--beta", "0"], "beta must be a finite number > 0"),
        (["--t-nudge", "0"], "t_nudge must be an integer >= 1"),
        (["--tasks", "0"], "tasks must be >= 1"),
        (["--split", "nope"], "unknown split 'nope'"),
        (["--policy", "magic"], "unknown policy 'magic'"),
        (["--levels", "1"], "levels must be in [2, 64]"),
    ],
}


def command_paths() -> list[str]:
    """Every leaf command of the application, as its words (``"device fit"``)."""

    def walk(command: typer.core.TyperCommand, prefix: tuple[str, ...]) -> list[str]:
        if hasattr(command, "commands"):  # a group
            return [p for n, sub in command.commands.items() for p in walk(sub, (*prefix, n))]
        return [" ".join(prefix)]

    return sorted(walk(typer.main.get_command(app), ()))


def test_every_command_has_rows() -> None:
    missing = [c for c in command_paths() if not BAD.get(c)]
    assert not missing, f"commands without bad-input rows in {__name__}.BAD: {missing}"
    stale = sorted(set(BAD) - set(command_paths()))
    assert not stale, f"rows for commands that do not exist: {stale}"


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture()
def sandbox(tmp_path, monkeypatch):
    """An empty cwd with a file, a measurement CSV and no data anywhere (no MEMLEARN_DATA, an
    empty home and caches); returns (cwd, placeholder values)."""
    cwd, home = tmp_path / "cwd", tmp_path / "home"
    cwd.mkdir()
    home.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.delenv("MEMLEARN_DATA", raising=False)
    monkeypatch.delenv("MEMLEARN_DATA_MIRROR", raising=False)
    for var in ("HOME", "XDG_CACHE_HOME", "XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.setenv(var, str(home))
    # nothing may serve or reach the network: an accepted row fails at once instead of hanging
    import urllib.error
    import urllib.request

    import memlearn.chip.server

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("the bad value was accepted: the command started its work")

    monkeypatch.setattr(memlearn.chip.server.ChipServer, "serve_forever", refuse)

    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError("no network in this test")

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    (cwd / "taken").write_text("a file, not a folder\n")
    rows = ["level,conductance"] + [f"{lv},{(20 + 10 * lv + d) * 1e-6:.3e}"
                                      for lv in range(4) for d in (-1, 0, 1)]  # fmt: skip
    (cwd / "meas.csv").write_text("\n".join(rows) + "\n")
    values = {FILE: "taken", NODIR: "nodir", CSV: "meas.csv"}
    return cwd, values


ROWS = [(cmd, args, words) for cmd, rows in BAD.items() for args, words in rows]


@pytest.mark.parametrize(("command", "args", "words"), ROWS, ids=[
    f"{c}:{' '.join(a)}" for c, a, _ in ROWS
])  # fmt: skip
def test_bad_value_is_one_error_line(sandbox, command, args, words) -> None:
    cwd, values = sandbox
    before = _tree(cwd) | {"home/" + p for p in _tree(cwd.parent / "home")}
    argv = [*command.split(), *(values.get(a, a) for a in args)]
    if command in ("meta-train", "demo") and "--out" not in args:
        argv += ["--out", "run-out"]
    res = CliRunner().invoke(app, argv)
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert res.exit_code == 2, (argv, res.exit_code, res.output, res.exception)
    assert isinstance(res.exception, SystemExit), (argv, res.exception)
    assert len(errors) == 1, (argv, res.stderr)
    assert words in errors[0] or words in res.stderr, (argv, words, res.stderr)
    assert "Traceback" not in res.output, res.output
    after = _tree(cwd) | {"home/" + p for p in _tree(cwd.parent / "home")}
    assert after == before, f"{argv} left {sorted(after - before)}"
    assert os.getcwd() == str(cwd)


def test_help_shows_no_bool_metavar_and_no_literal_backticks() -> None:
    """Flags render without a type, help texts without reStructuredText backticks, and every
    --split help lists the split names."""
    from memlearn.cli.common import SPLITS_TEXT

    runner = CliRunner()
    for command in ["", *command_paths()]:
        res = runner.invoke(app, [*command.split(), "--help"], env={"COLUMNS": "200"})
        assert res.exit_code == 0, (command, res.output)
        assert "<bool>" not in res.output, command
        assert "``" not in res.output and "`" not in res.output, command
        if "--split" in res.output:
            assert SPLITS_TEXT in res.output, command


def test_deprecated_names_still_work_with_a_note(tmp_path) -> None:
    res = CliRunner().invoke(app, ["evaluate", "--device", "no-such", "--tasks", "0"])
    lines = res.stderr.splitlines()
    assert lines[0] == "note: --device is deprecated; use --preset"
    assert res.exit_code == 2 and lines[1].startswith("error: --tasks")
