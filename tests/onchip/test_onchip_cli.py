"""``memlearn adapt``, ``memlearn demo`` and ``memlearn chip serve`` on the real data."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from memlearn.cli.main import app

pytest.importorskip("memlearn.chip.simulated", reason="SimulatedChip is not in the tree yet")

KEYS = {
    "preset",
    "strategy",
    "ways",
    "shots",
    "steps",
    "tasks",
    "chips",
    "accuracy_by_step",
    "accuracy_ci95",
    "software_accuracy_by_step",
    "writes_per_adaptation",
    "pulses_per_adaptation",
    "energy_per_adaptation_j",
    "energy_breakdown_j",
    "memory",
    "latency_per_adaptation_s",
    "system_energy_j",
}


@pytest.fixture(scope="module")
def shipped_model():
    from memlearn.errors import MemlearnError
    from memlearn.meta.checkpoint import shipped_checkpoint_path

    try:
        return shipped_checkpoint_path()
    except MemlearnError:
        pytest.skip("the shipped checkpoint is not in the tree yet")


def _adapt(root, *extra, chips=4):
    args = ["adapt", "--root", str(root), "--tasks", "6", "--chips", str(chips), "--steps", "2"]
    args.append("--json")
    return CliRunner().invoke(app, [*args, *extra])


def test_adapt_json_is_exact_and_deterministic(shared_data, shipped_model):
    first = _adapt(shared_data, "--seed", "3")
    assert first.exit_code == 0, first.output
    out = json.loads(first.stdout)
    assert set(out) == KEYS | {"config"}
    assert (out["tasks"], out["chips"], out["steps"], out["ways"], out["shots"]) == (6, 4, 2, 5, 1)
    assert len(out["accuracy_by_step"]) == 3 and len(out["software_accuracy_by_step"]) == 3
    assert all(0 <= a <= 1 for a in out["accuracy_by_step"] + out["software_accuracy_by_step"])
    assert out["writes_per_adaptation"] > 0 and out["pulses_per_adaptation"] > 0
    total = sum(out["energy_breakdown_j"].values())
    assert out["energy_per_adaptation_j"] == pytest.approx(total)
    assert "split:" in first.stderr
    memory = out.pop("memory")
    assert memory["rounds"] == 1 and memory["chips_per_round"] == 4 and memory["peak_bytes"] > 0
    again = json.loads(_adapt(shared_data, "--seed", "3").stdout)
    assert again.pop("memory")["budget_bytes"] == memory["budget_bytes"]
    assert again == out  # all but the measured peak memory


def test_adapt_bake_adds_accuracy_after_bake(shared_data, shipped_model):
    res = _adapt(shared_data, "--bake-hours", "12", "--bake-celsius", "150", chips=6)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert set(out) == KEYS | {"accuracy_after_bake", "config"}
    assert 0 <= out["accuracy_after_bake"] <= 1


@pytest.mark.parametrize(
    ("extra", "words"),
    [
        (["--strategy", "magic"], "unknown strategy 'magic'"),
        (["--policy", "sgd"], "unknown policy 'sgd'"),
        (["--preset", "no-such-preset"], "no-such-preset"),
        (["--tasks", "0"], "tasks must be >= 1"),
        (["--bake-hours", "-1"], "bake_hours must be >= 0"),
        (["--weight-max", "largest"], "unknown weight_max 'largest'"),
        (["--levels", "99"], "levels must be in [2, 64]"),
        (["--support-copies", "-1"], "support_copies must be in [0, 64]"),
        (["--spare-pairs", "-1"], "spare_pairs must be >= 0"),
        (["--bake-hours", "12"], "give chips >= tasks with a bake"),
        (["--shots", "25"], "shots 25 is too many"),
        (["--bench", "nowhere"], "bench must be HOST:PORT"),
        (["--max-memory", "4X"], "max_memory must be bytes, optionally with a suffix"),
        (["--max-memory", "1K"], "max_memory must be at least 64M"),
        (["--torch-device", "nowhere"], "unknown torch device 'nowhere'"),
    ],
)
def test_adapt_bad_inputs_need_neither_data_nor_model(tmp_path, extra, words):
    """Every option is checked before the data or the model is touched: with a data root and a
    checkpoint that do not exist, the error is still the option's."""
    missing = ["--checkpoint", str(tmp_path / "none.pt")]
    res = _adapt(tmp_path / "no-data", *missing, *extra)
    assert res.exit_code == 2, res.output
    assert words in res.stderr and res.stderr.startswith("error:")


def test_adapt_ways_must_fit_the_model(shared_data, shipped_model):
    res = _adapt(shared_data, "--ways", "7")
    assert res.exit_code == 2 and "5-way model" in res.stderr


def test_adapt_json_carries_its_config(shared_data, shipped_model):
    out = json.loads(_adapt(shared_data, "--seed", "1").stdout)
    config = out["config"]
    assert (config["seed"], config["split"], config["preset"]) == (1, "val", "hfo2-mlc")
    assert config["levels"] == 8 and config["policy"] and config["support_copies"] == 4
    assert len(config["weight_max"]) == 2 and config["weight_max_source"].startswith("checkpoint")
    assert config["spare_pairs"] == 11 and config["repair_test_energy_j"] > 0
    assert config["deployment"]["energy_j"] > 0 and "torch" in config["versions"]


def test_demo_out_naming_a_file_is_one_error_line(tmp_path):
    path = tmp_path / "taken"
    path.write_text("not a directory")
    res = CliRunner().invoke(app, ["demo", "--root", str(tmp_path), "--out", str(path)])
    assert res.exit_code == 2
    assert res.stderr.strip().splitlines() == [f"error: --out {path} is a file; give a "
                                               "directory (made if missing)"]  # fmt: skip


def test_support_copies_scale_the_converter_energy(shared_data, shipped_model):
    """Each update runs the support images through the arrays: with 4 copies of each shot the
    DAC and ADC energy of an adaptation is 5 times that of the shots alone."""
    alone = json.loads(_adapt(shared_data, "--support-copies", "0").stdout)
    copies = json.loads(_adapt(shared_data, "--support-copies", "4").stdout)
    for part in ("dac", "adc"):
        ratio = copies["energy_breakdown_j"][part] / alone["energy_breakdown_j"][part]
        assert ratio == pytest.approx(5.0, rel=1e-4)
    assert copies["energy_per_adaptation_j"] > alone["energy_per_adaptation_j"]


def test_demo_writes_png_and_json(shared_data, shipped_model, tmp_path):
    res = CliRunner().invoke(app, ["demo", "--root", str(shared_data), "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    png = (tmp_path / "learning_curve.png").read_bytes()
    assert png.startswith(b"\x89PNG")
    payload = json.loads((tmp_path / "demo.json").read_text())
    assert payload["results"]["tasks"] == 16 and payload["results"]["chips"] == 16
    assert payload["config"]["seed"] == 0 and "torch" in payload["versions"]
    assert "held-out alphabets" in res.stdout


def test_chip_serve_answers_a_remote_chip():
    from memlearn.chip.remote import RemoteChip

    proc, host, port = _serve("--chips", "2", "--seed", "1")
    try:
        deadline = time.time() + 10
        while True:
            try:
                chip = RemoteChip(host, int(port), timeout_s=30)
                break
            except Exception:
                if time.time() > deadline:
                    raise
                time.sleep(0.1)
        with chip:
            assert chip.n_chips == 2 and chip.preset_name == "hfo2-mlc"
            g_plus, _ = chip.read_conductances("fc1")
            assert g_plus.shape == (2, 32, 16)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _serve(*args):
    """Start `memlearn chip serve` on a free loopback port; returns (process, host, port)."""
    cmd = [sys.executable, "-c", "from memlearn.cli.main import app; app()", "chip", "serve"]
    proc = subprocess.Popen([*cmd, "--port", "0", *args], stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    if "serving" not in line:
        proc.terminate()
        raise AssertionError(line)
    host, port = line.split(" on ")[1].split(";")[0].rsplit(":", 1)
    return proc, host, int(port)


def test_adapt_on_a_served_chip_equals_the_simulated_one(shared_data, shipped_model):
    """`memlearn adapt --bench` against `memlearn chip serve` with the same seed gives the very
    numbers of `memlearn adapt` on its own simulated chips."""
    local = _adapt(shared_data, "--seed", "5", "--bake-hours", "1", chips=6)
    assert local.exit_code == 0, local.output
    proc, host, port = _serve("--chips", "6", "--seed", "5")
    try:
        remote = _adapt(shared_data, "--seed", "5", "--bake-hours", "1", "--bench",
                        f"{host}:{port}", chips=6)  # fmt: skip
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert remote.exit_code == 0, remote.output
    remote_out, local_out = json.loads(remote.stdout), json.loads(local.stdout)
    assert remote_out.pop("config")["bench"] == f"{host}:{port}"
    local_out.pop("config")
    for key in ("latency_per_adaptation_s", "system_energy_j"):  # a bench reports no time
        local_out.pop(key)
    for out in (remote_out, local_out):  # measured, not simulated
        out["memory"].pop("peak_bytes")
    assert remote_out == local_out


def test_adapt_refuses_an_option_the_bench_contradicts(shared_data, shipped_model):
    proc, host, port = _serve("--chips", "2", "--seed", "5")
    try:
        res = _adapt(shared_data, "--bench", f"{host}:{port}", chips=3)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    assert res.exit_code == 2
    assert "chips 3 differs from the bench's 2" in res.stderr


def test_adapt_gap_attributes_the_gap(shared_data, shipped_model):
    args = ["adapt-gap", "--root", str(shared_data), "--tasks", "4", "--steps", "1", "--json"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    names = [r["name"] for r in out["rows"]]
    assert names[0] == "ideal software (float)" and "without stuck cells" in names
    assert out["info"]["tasks"] == 4 and out["info"]["weight_max_source"].startswith("checkpoint")
    assert all(len(r["accuracy_by_step"]) == 2 for r in out["rows"])
    bad = CliRunner().invoke(app, [*args[:-1], "--chips", "0"])
    assert bad.exit_code == 2 and "chips (chips simulated at once) must be >= 1" in bad.stderr
