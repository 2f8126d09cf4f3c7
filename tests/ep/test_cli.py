"""``memlearn ep train``: one JSON object, resume continues a checkpoint, clear errors."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from memlearn.cli.main import app

TINY = ["ep", "train", "--network", "784-16-10", "--train-images", "200", "--test-images",
        "100", "--t-nudge", "4", "--chips", "2", "--json"]  # fmt: skip


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--beta", "0"], "beta must be"),
        (["--network", "784-ten-10"], "unknown network string"),
        (["--levels", "1"], "levels must be"),
        (["--update", "sgd"], "unknown update"),
    ],
)
def test_bad_options_give_one_error_line(args, message):
    result = CliRunner().invoke(app, ["ep", "train", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_train_json_and_resume(shared_data, tmp_path):
    runner = CliRunner()
    out = tmp_path / "run"
    first = runner.invoke(app, [*TINY, "--epochs", "1", "--out", str(out)])
    assert first.exit_code == 0, first.output
    one = json.loads(first.stdout)
    assert one["epochs"] == 1 and len(one["test_accuracy"]["per_chip"]) == 2
    for key in ("writes_per_cell", "pulses", "energy_per_image_j", "wall_s", "config"):
        assert key in one
    energy = one["energy_per_image_j"]
    assert energy["total"] == pytest.approx(sum(energy["by_phase"].values()), rel=1e-9)
    assert set(energy["by_phase"]) == {"free", "nudged", "program"}
    assert (out / "checkpoint.pkl").exists() and (out / "metrics.json").exists()
    second = runner.invoke(app, [*TINY, "--epochs", "2", "--out", str(out), "--resume"])
    assert second.exit_code == 0, second.output
    two = json.loads(second.stdout)
    assert two["epochs"] == 2 and len(two["history"]) == 2
    assert two["history"][0] == one["history"][0]  # the first epoch was not redone
    assert two["writes_per_cell"]["mean"] >= one["writes_per_cell"]["mean"]
    straight = runner.invoke(app, [*TINY, "--epochs", "2", "--out", str(tmp_path / "s")])
    whole = json.loads(straight.stdout)
    assert whole["history"][1]["test_accuracy"] == two["history"][1]["test_accuracy"]
    assert whole["pulses"] == two["pulses"]  # resuming continues the same seeded run
    other = runner.invoke(app, [*TINY, "--epochs", "2", "--out", str(out), "--resume",
                                "--levels", "16"])  # fmt: skip
    assert other.exit_code == 2 and "different configuration" in other.output
