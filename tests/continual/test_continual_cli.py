"""``memlearn continual``: bad inputs refused before any work; one JSON object on a tiny run."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from memlearn.cli.main import app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--meta", "-0.5"], "meta"),
        (["--tasks", "0"], "tasks must be an integer >= 1"),
        (["--benchmark", "cifar"], "unknown benchmark"),
        (["--benchmark", "split-mnist", "--tasks", "6"], "at most 5"),
        (["--network", "chip", "--hidden", "512"], "the chip holds 16384"),
        (["--network", "huge"], "unknown network"),
        (["--rounding", "up"], "unknown rounding"),
        (["--method", "sgd"], "unknown method"),
        (["--chips", "0"], "chips must be"),
    ],
)
def test_bad_inputs_give_one_clear_error(args, message, tmp_path):
    # --root points at an empty directory: a refused option must fail before loading data
    result = CliRunner().invoke(app, ["continual", *args, "--root", str(tmp_path), "--json"])
    assert result.exit_code == 2
    assert message in result.output


def test_json_run_on_the_chip(shared_data, tmp_path):
    args = "continual --tasks 2 --train-size 300 --test-size 200 --batch 50 --chips 2 --json"
    args = [*args.split(), "--figure", str(tmp_path / "f.png")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    keys = "accuracy_matrix mean_final_accuracy forgetting writes_per_cell endurance_used"
    for key in [*keys.split(), "tasks_until_wear_out", "energy_per_step_j", "config"]:
        assert key in out
    assert len(out["accuracy_matrix"]) == 2
    w = out["writes_per_cell"]
    assert w["oxram"]["max"] < w["feram"]["max"]  # training state goes to FeRAM
    e = out["energy_per_step_j"]
    assert e["total"] == pytest.approx(sum(e["breakdown"].values()))
    assert (tmp_path / "f.png").stat().st_size > 1000


def test_a_folder_holding_a_run_is_refused_before_any_work(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "checkpoint.pt").write_bytes(b"x")
    for extra, message in (
        ([], "already holds a run"),
        (["--resume", "--overwrite"], "exclude each other"),
    ):
        args = ["continual", "--run-dir", str(tmp_path / "run"), *extra]
        result = CliRunner().invoke(app, [*args, "--root", str(tmp_path), "--json"])
        assert result.exit_code == 2 and message in result.output
    result = CliRunner().invoke(app, ["continual", "--resume", "--root", str(tmp_path)])
    assert result.exit_code == 2 and "need --run-dir" in result.output
