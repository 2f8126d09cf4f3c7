"""``memlearn device``: JSON schema, plot, presets listing, fit → usable preset, bad input."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from memlearn.cli.main import app
from memlearn.devices import load_preset

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, ["device", *args])


def test_characterize_json_schema_and_plot(tmp_path):
    png = tmp_path / "hist.png"
    res = invoke("characterize", "--strategy", "hybrid", "--levels", "4", "--cells", "200",
                 "--bake-hours", "12", "--bake-celsius", "150", "--seed", "1", "--json",
                 "--plot", str(png))  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    for key, kind in (("preset", str), ("strategy", str), ("levels", list),
                      ("level_error_rate", float), ("pulses_per_cell", float),
                      ("energy_per_cell_j", float), ("failed_fraction", float)):  # fmt: skip
        assert isinstance(out[key], kind), key
    assert out["preset"] == "hfo2-mlc" and out["strategy"] == "hybrid"
    assert [set(lv) for lv in out["levels"]] == [{"target_us", "mean_us", "std_us"}] * 4
    assert out["levels"][0]["target_us"] == pytest.approx(10.0)
    assert out["levels"][-1]["target_us"] == pytest.approx(150.0)
    assert out["level_error_rate"] >= out["before_bake"]["level_error_rate"]
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_characterize_window_and_text_output():
    res = invoke("characterize", "--levels", "3", "--cells", "50", "--window-us", "20", "100",
                 "--strategy", "single-set")  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "level error rate" in res.stdout and "100.00" in res.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--levels", "1"], "levels must be an integer in [2, 64]"),
        (["--window-us", "150", "10"], "0 < G_min < G_max"),
        (["--preset", "unobtainium"], "unknown preset 'unobtainium'"),
        (["--strategy", "magic"], "unknown strategy 'magic'"),
        (["--cells", "1"], "cells must be an integer >= 2"),
    ],
)
def test_characterize_bad_inputs(args, message):
    res = invoke("characterize", "--cells", "20", *args)
    assert res.exit_code == 2
    assert message in res.output


def test_presets_listing_and_show():
    res = invoke("presets", "--json")
    assert res.exit_code == 0
    data = json.loads(res.stdout)
    assert data["default"] == "hfo2-mlc" and data["presets"][0]["name"] == "hfo2-mlc"
    res = invoke("presets", "--show", "feram-1t1c")
    assert res.exit_code == 0 and "Francois" in res.stdout


def test_fit_writes_a_preset_usable_by_name_of_file(tmp_path):
    csv_path = tmp_path / "m.csv"
    csv_path.write_text(
        "level,conductance,time\n"
        + "".join(f"{lv},{g:.3e},{t}\n" for t in (1, 1000) for lv, g in
                  ((0, 11e-6), (0, 12e-6), (0, 13e-6), (1, 60e-6), (1, 62e-6), (1, 65e-6)))
    )  # fmt: skip
    out = tmp_path / "lab.toml"
    res = invoke("fit", str(csv_path), "--out", str(out), "--name", "lab", "--json")
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["file"] == str(out)
    assert load_preset(str(out)).name == "lab"
    res = invoke("characterize", "--preset", str(out), "--levels", "2", "--cells", "20", "--json")
    assert res.exit_code == 0, res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("level;conductance\n0;1e-5\n")
    res = invoke("fit", str(bad), "--out", str(tmp_path / "x.toml"))
    assert res.exit_code == 2 and "missing column" in res.output
    assert not (tmp_path / "x.toml").exists()


def test_characterize_csv_feeds_fit(tmp_path):
    csv_path = tmp_path / "cells.csv"
    res = invoke("characterize", "--levels", "3", "--cells", "100", "--bake-hours", "12",
                 "--csv", str(csv_path))  # fmt: skip
    assert res.exit_code == 0, res.output
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "level,conductance,time,temperature" and len(lines) == 1 + 2 * 300
    res = invoke("fit", str(csv_path), "--out", str(tmp_path / "p.toml"), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ea_ev"] is None  # one time per temperature: Ea is not identifiable, kept
    assert out["drift_sigma_us_per_ln_t"] > 0
