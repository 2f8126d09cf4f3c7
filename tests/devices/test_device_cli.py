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


SCHEMA = {
    "preset": str,
    "strategy": str,
    "levels": list,
    "level_error_rate": float,
    "pulses_per_cell": float,
    "energy_per_cell_j": float,
    "failed_fraction": float,
}


def check_schema(out: dict, levels: int) -> None:
    assert set(out) == set(SCHEMA) | {"config"}  # exactly the keys, and the config
    assert out["config"]["levels"] == levels and "torch" in out["config"]["versions"]
    for key, kind in SCHEMA.items():
        assert type(out[key]) is kind, key
    assert len(out["levels"]) == levels
    for level in out["levels"]:
        assert set(level) == {"target_us", "mean_us", "std_us"}
        assert all(type(v) is float for v in level.values())


def test_characterize_json_schema_and_plot(tmp_path):
    png = tmp_path / "hist.png"
    common = ["characterize", "--strategy", "hybrid", "--levels", "4", "--cells", "200",
              "--seed", "1", "--window-us", "10", "150", "--json"]  # fmt: skip
    res = invoke(*common, "--bake-hours", "12", "--bake-celsius", "150", "--plot", str(png))
    assert res.exit_code == 0, res.output
    baked = json.loads(res.stdout)
    check_schema(baked, 4)
    assert baked["preset"] == "hfo2-mlc" and baked["strategy"] == "hybrid"
    assert baked["levels"][0]["target_us"] == pytest.approx(10.0)
    assert baked["levels"][-1]["target_us"] == pytest.approx(150.0)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same command without the bake gives the as-programmed figures of the same cells
    res = invoke(*common)
    assert res.exit_code == 0, res.output
    fresh = json.loads(res.stdout)
    check_schema(fresh, 4)
    assert baked["level_error_rate"] >= fresh["level_error_rate"]
    assert baked["pulses_per_cell"] == fresh["pulses_per_cell"]
    for b, f in zip(baked["levels"], fresh["levels"], strict=True):
        assert b["std_us"] > f["std_us"]
    text = invoke(*common[:-1], "--bake-hours", "12")
    assert f"level error rate {fresh['level_error_rate']:.2%}" in text.stdout
    assert f"level error rate {baked['level_error_rate']:.2%}" in text.stdout


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
                 "--strategy", "iterative-set", "--csv", str(csv_path))  # fmt: skip
    assert res.exit_code == 0, res.output
    lines = csv_path.read_text().splitlines()
    assert lines[0] == "level,conductance,time,temperature" and len(lines) == 1 + 2 * 300
    res = invoke("fit", str(csv_path), "--strategy", "iterative-set", "--out",
                 str(tmp_path / "p.toml"), "--json")  # fmt: skip
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["ea_ev"] is None  # one time per temperature: Ea is not identifiable, kept
    assert out["drift_sigma_us_per_ln_t"] > 0
    assert out["relax_icc_exp"] > 0  # low-compliance states are the less stable, recovered
    fitted = load_preset(str(tmp_path / "p.toml"))
    assert fitted.relax_icc_exp == pytest.approx(out["relax_icc_exp"])
    assert fitted.relax_log == pytest.approx(out["drift_sigma_us_per_ln_t"] * 1e-6)
    assert len(out["spread_check"]) == 3
