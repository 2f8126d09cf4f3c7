"""``reproduce()`` and ``memlearn reproduce``: the staged output directory, the report and run
record, and clear errors before anything is written."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memlearn.cli.main import app
from memlearn.errors import MemlearnError
from memlearn.experiments.reproduce import reproduce

TINY = {"energy": {"levels": (4, 8), "strategies": ("hybrid",), "tasks": 3}}


def test_reproduce_writes_report_data_and_record(tmp_path: Path, shared_data: Path):
    out = tmp_path / "repro"
    result = reproduce(
        out,
        studies=["energy"],
        quick=True,
        overrides=TINY,
        root=shared_data,
        seed=2,
        progress=False,
    )
    names = {p.name for p in out.iterdir()}
    assert names == {
        "energy.png",
        "energy.csv",
        "energy.json",
        "run.json",
        "report.md",
        "report.html",
    }
    assert [p.name for p in tmp_path.iterdir()] == ["repro"]  # no staging directory left
    info = json.loads((out / "run.json").read_text())
    assert info["kind"] == "memlearn-reproduce"
    assert info["config"]["seed"] == 2 and info["config"]["mode"] == "quick"
    assert info["config"]["support_copies"] == 4  # memlearn adapt's loop
    assert {"memlearn", "torch", "numpy"} <= set(info["versions"])
    assert info["settings"]["energy"]["levels"] == [4, 8]
    assert info["study_seeds"]["energy"] >= 0 and info["tasks"]["split"] == "val"
    md = (out / "report.md").read_text()
    assert "## Energy and writes per adaptation" in md and "< 10 µJ" in md
    assert f"**{int(result.outcomes[0].reproduced)} of 1 published trends reproduced.**" in md
    png = base64.b64encode((out / "energy.png").read_bytes()).decode()
    assert f"data:image/png;base64,{png}" in (out / "report.html").read_text()

    # a second run (one point) replaces the first one; a failing run leaves it untouched
    reproduce(
        out,
        studies=["energy"],
        quick=True,
        overrides={"energy": {**TINY["energy"], "levels": (4,)}},
        root=shared_data,
        seed=3,
        progress=False,
    )
    assert json.loads((out / "run.json").read_text())["config"]["seed"] == 3
    bad = {"energy": {"strategies": ("magic",), "tasks": 3}}
    with pytest.raises(MemlearnError, match="unknown strategy 'magic'"):
        reproduce(out, studies=["energy"], overrides=bad, root=shared_data, progress=False)
    assert json.loads((out / "run.json").read_text())["config"]["seed"] == 3
    assert [p.name for p in tmp_path.iterdir()] == ["repro"]


def test_reproduce_refuses_a_directory_it_did_not_write(tmp_path: Path):
    (tmp_path / "notes.txt").write_text("keep me")
    with pytest.raises(MemlearnError, match="not a memlearn reproduction"):
        reproduce(tmp_path, studies=["energy"], progress=False)
    assert (tmp_path / "notes.txt").read_text() == "keep me"


def _cli(*args: str):
    return CliRunner().invoke(app, ["reproduce", *args])


def test_cli_runs_one_study_and_prints_one_json_object(tmp_path: Path, shared_data: Path):
    out = tmp_path / "energy-run"
    res = _cli(
        "energy",
        "--quick",
        "--levels",
        "4",
        "--tasks",
        "3",
        "--out",
        str(out),
        "--root",
        str(shared_data),
        "--json",
        "--no-progress",
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["out"] == str(out) and [s["key"] for s in payload["studies"]] == ["energy"]
    assert (out / "report.html").is_file() and (out / "energy.csv").is_file()
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["mode"] == "quick" and config["studies"] == "energy"
    assert json.loads((out / "run.json").read_text())["settings"]["energy"]["levels"] == [4]
    assert config["command"].startswith("memlearn")


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["overlapp"], "unknown study 'overlapp'; allowed: overlap, window"),
        (["--backend", "dask"], "unknown backend 'dask'; allowed: local, ray"),
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--preset", "feram-1t1c"], "need a multi-level resistive (rram) preset"),
        (["--policy", "sgd"], "unknown update policy 'sgd'"),
        (["energy", "--ratios", "0.1,1"], "--ratios applies to overlap; none of them is run"),
        (["--levels", "1,8"], "--levels must be integers in [2, 64]"),
        (["--ratios", "0.1"], "--ratios must be at least two numbers > 0"),
        (["--tasks", "0"], "--tasks must be >= 1"),
        (["--seed", "-1"], "--seed must be >= 0"),
        (["--support-copies", "-2"], "--support-copies must be in [0, 64], got -2"),
    ],
)
def test_cli_bad_input_is_named_and_writes_nothing(tmp_path: Path, args, words):
    out = tmp_path / "out"
    res = _cli(*args, "--out", str(out), "--no-progress")
    assert res.exit_code == 2
    assert words in " ".join(res.output.split()), res.output
    assert list(tmp_path.iterdir()) == []


def test_cli_unwritable_out_dir_is_named(tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    res = _cli("energy", "--out", str(blocker / "out"), "--no-progress")
    assert res.exit_code == 2
    assert "cannot create the directory" in res.output
    existing = tmp_path / "other"
    existing.mkdir()
    (existing / "data.csv").write_text("x")
    res = _cli("energy", "--out", str(existing), "--no-progress")
    assert res.exit_code == 2 and "not a memlearn reproduction" in res.output
