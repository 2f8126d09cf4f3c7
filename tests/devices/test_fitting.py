"""Fitting a preset to measurements: recovers the model's own parameters; bad CSVs."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch

import memlearn.devices
from memlearn.devices import celsius, equivalent_seconds, load_preset, program, read, relax
from memlearn.devices.fitting import fit_measurements, read_measurements
from memlearn.errors import CorruptDataError, MemlearnError

SEED = 11
TRUE = {
    "relax_log": 0.2e-6,
    "relax_mean": 0.08e-6,
    "ea_ev": 1.2,
    "relax_icc_exp": 0.5,
    "relax_fast": 2.5e-6,
}
MILO = Path(memlearn.devices.__file__).with_name("data") / "milo2021_sigma.csv"


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    preset = load_preset("hfo2-mlc").replace(**TRUE)
    levels = preset.levels(5)
    per_level = 1000
    gen = torch.Generator().manual_seed(SEED)
    rows = []
    plan = (
        (25.0, (10.0, 1e3, 1e5, 1e6)),
        (125.0, (600.0, 3600.0, 36000.0)),
        (150.0, (600.0, 3600.0, 43200.0)),
    )
    for temp, times in plan:
        r = program(preset, levels.repeat_interleave(per_level), "iterative-reset", generator=gen)
        age = 0.0
        lvl = torch.arange(5).repeat_interleave(per_level).tolist()
        for t in times:
            relax(preset, r.cells, equivalent_seconds(preset, t - age, celsius(temp)), gen)
            age = t
            reads = read(preset, r.cells.g, gen).tolist()  # a bench measures reads
            rows.extend(zip(lvl, reads, [t] * len(lvl), [temp] * len(lvl), strict=True))
    path = tmp_path_factory.mktemp("fit") / "measured.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["level", "conductance", "time", "temperature"])
        w.writerows(rows)
    return path


def test_fit_recovers_known_parameters(measured, tmp_path):
    res = fit_measurements(measured, "hfo2-mlc", "iterative-reset", name="lab-cell")
    assert res.drift_sigma == pytest.approx(TRUE["relax_log"], rel=0.2)
    assert res.drift_mean == pytest.approx(TRUE["relax_mean"], rel=0.2)
    assert res.ea_ev == pytest.approx(TRUE["ea_ev"], abs=0.15)  # weakly identified: ~0.1 eV s.e.
    assert res.icc_exp == pytest.approx(TRUE["relax_icc_exp"], abs=0.2)
    assert res.fast_sigma == pytest.approx(TRUE["relax_fast"], rel=0.25)
    assert res.dropped_outliers > 0  # stuck cells are not fitted as spread
    p = res.preset
    assert p.name == "lab-cell" and p.relax_log == pytest.approx(res.drift_sigma)
    assert p.sources["ea_ev"].startswith("[P] fit to measured.csv")
    assert [lv for lv, _, _ in res.levels] == [0, 1, 2, 3, 4]
    assert p.g_min == pytest.approx(10e-6, rel=0.35) and p.g_max == pytest.approx(150e-6, rel=0.05)


def test_published_spread_is_matched_and_is_the_presets_source():
    """The preset's stability law comes from fitting Milo et al. (IRPS 2021) as tabulated in
    devices/data; the fitted preset, programmed with iterative-set, reproduces the published
    sigma(G) within 10 % at the levels in the window, 12 % at 175 uS above it (the adaptive
    controller's in-band spread at that level alone nearly reaches the published sigma)."""
    res = fit_measurements(MILO, "hfo2-mlc", "iterative-set")
    assert len(res.spread_check) == 6
    for mean, measured_sd, fitted_sd in res.spread_check:
        assert fitted_sd == pytest.approx(measured_sd, rel=0.10 if mean <= 150e-6 else 0.12), mean
    shipped = load_preset("hfo2-mlc")
    assert shipped.relax_fast == pytest.approx(res.fast_sigma, rel=0.01)
    assert shipped.relax_icc_exp == pytest.approx(res.icc_exp, abs=0.011)
    assert "milo2021_sigma.csv" in shipped.sources["relax_fast"]
    # the published spread falls with G; so does the fitted law (exponent > 0)
    assert res.levels[0][2] > res.levels[-1][2] and res.icc_exp > 0


def test_statistics_layout_is_read_and_checked(tmp_path):
    m = read_measurements(MILO)
    assert m.std is not None and m.level.tolist() == list(range(6))
    assert m.conductance[0] == pytest.approx(50e-6) and m.std[0] == pytest.approx(
        4.327e-6, rel=1e-3
    )
    bad = tmp_path / "bad.csv"
    bad.write_text("level,mean,std\n0,5e-5,0\n1,7e-5,4e-6\n")
    with pytest.raises(CorruptDataError, match="'std' must be > 0"):
        read_measurements(bad)


def test_without_time_only_levels_are_fitted(tmp_path):
    path = tmp_path / "levels.csv"
    path.write_text("level,conductance\n0,1.1e-5\n0,0.9e-5\n0,1.0e-5\n1,5.1e-5\n1,4.9e-5\n")
    res = fit_measurements(path)
    assert res.drift_sigma is None and res.ea_ev is None
    assert res.preset.g_min == pytest.approx(1.0e-5) and res.preset.g_max == pytest.approx(5e-5)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("lvl,conductance\n0,1e-5\n", "missing column"),
        ("level,conductance\n", "no data rows"),
        ("level,conductance\n0,abc\n1,2e-5\n", "line 2: column 'conductance' value 'abc'"),
        ("level,conductance\n0,10\n1,20\n", "microsiemens"),
        ("level,conductance\n0,1e-5\n0,2e-5\n", "at least 2 distinct levels"),
        ("level,conductance\n0.5,1e-5\n1,2e-5\n", "line 2: 'level' must hold non-negative"),
        ("level,conductance,time\n0,1e-5,-1\n1,2e-5,1\n", "'time' must be >= 0"),
        ("level,conductance\n0,1e-5\n0,-1e-4\n1,2e-5\n", "line 3: conductances must be >= -1e-05"),
        ("level,conductance\n0,1e-5\n1\n", "line 3: column 'conductance' is empty"),
        ("level,conductance,time\n0,1e-5,\n1,2e-5,1\n", "line 2: column 'time' is empty"),
        ("level,conductance\n0,nan\n1,2e-5\n", "not finite"),
        ("\n", "missing column"),
    ],
)
def test_malformed_csv_gives_clear_errors(tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(CorruptDataError, match=message):
        read_measurements(path)


def test_byte_order_mark_and_extra_columns_are_accepted(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_text("level,conductance,chip\n0,1e-5,a\n1,2e-5,b\n", encoding="utf-8-sig")
    m = read_measurements(path)
    assert m.level.tolist() == [0, 1] and m.conductance.tolist() == [1e-5, 2e-5]


def test_fitted_preset_reproduces_the_measured_drift(measured, tmp_path):
    """Round trip: the fitted preset, saved and reloaded, ages its cells as the data did."""
    from memlearn.devices import save_preset

    res = fit_measurements(measured, "hfo2-mlc", "iterative-reset")
    path = save_preset(res.preset, tmp_path / "fitted.json")
    fitted = load_preset(str(path))
    true = load_preset("hfo2-mlc").replace(**TRUE)
    spreads = []
    for p in (true, fitted):
        gen = torch.Generator().manual_seed(3)
        r = program(p, torch.full((4000,), 100e-6), "hybrid", generator=gen)
        g0 = r.cells.g.clone()
        relax(p, r.cells, equivalent_seconds(p, 12 * 3600, celsius(150)), gen)
        ok = r.cells.stuck == 0
        spreads.append(float((r.cells.g - g0)[ok].std()))
    assert spreads[1] == pytest.approx(spreads[0], rel=0.15)


def test_missing_file_and_bad_strategy(tmp_path):
    with pytest.raises(MemlearnError, match="does not exist"):
        read_measurements(tmp_path / "none.csv")
    with pytest.raises(MemlearnError, match="unknown strategy"):
        fit_measurements(tmp_path / "none.csv", strategy="magic")
