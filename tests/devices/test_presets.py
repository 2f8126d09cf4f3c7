"""Presets: every shipped value has a tagged source; loading, saving and bad files."""

from __future__ import annotations

import dataclasses
import json
import re

import pytest
import torch

from memlearn.devices import (
    DEFAULT_PRESET,
    level_conductances,
    list_presets,
    load_preset,
    nearest_level,
    save_preset,
)
from memlearn.devices.preset import PARAMETERS, to_dict
from memlearn.errors import MemlearnError


def test_shipped_presets_load_and_cite_sources():
    names = list_presets()
    assert {"hfo2-mlc", "oxram-slc", "feram-1t1c"} <= set(names)
    assert DEFAULT_PRESET == "hfo2-mlc"
    for name in names:
        p = load_preset(name)
        assert p.name == name
        for key, value in p.values.items():
            assert key in PARAMETERS
            assert re.match(r"^\[(P|S|I|E)\]", p.sources[key]), (name, key, p.sources[key])
            assert value == value  # finite numbers only
        lo, hi = p.window
        assert 0 < lo < hi


CIRCULAR = re.compile(
    r"to match|tuned|raised to|lowered to|calibrated (so|to)|chosen so"
    r"|hybrid (drifts|keeps|loses|wins|is best)",
    re.I,
)
"""Words of a source that sets a value from the result it is meant to produce (the former
hfo2-mlc's relaxation sources, e.g. "raised to match the broadening after a 150 C bake in the
reference work", "reference work: hybrid drifts less")."""


def circular_sources(preset) -> list[str]:
    """The parameters of ``preset`` whose source reads as tuned to a conclusion."""
    return [k for k, s in preset.sources.items() if CIRCULAR.search(s)]


def test_no_shipped_parameter_is_tuned_to_a_conclusion():
    for name in list_presets():
        assert circular_sources(load_preset(name)) == [], name
    planted = load_preset("hfo2-mlc")
    sources = dict(planted.sources)
    sources["relax_log"] = "[E] raised to match the broadening after a 150 C bake"
    sources["relax_fast"] = "[E] RESET-terminated states relax less (reference: hybrid drifts less)"
    planted = dataclasses.replace(planted, sources=sources)
    assert sorted(circular_sources(planted)) == ["relax_fast", "relax_log"]


def test_round_trip_toml_and_json(tmp_path):
    p = load_preset("hfo2-mlc").replace(ea_ev=1.2)
    for suffix in (".toml", ".json"):
        path = save_preset(p, tmp_path / f"fitted{suffix}")
        q = load_preset(str(path))
        assert q.values == p.values
        assert q.sources == p.sources
    assert "overridden" in p.sources["ea_ev"]


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d["window"].update(g_min={"value": 2e-4, "source": "[E]"}), "inverted"),
        (lambda d: d["window"].pop("g_max"), "lacks parameters"),
        (lambda d: d["read"].update(bogus={"value": 1, "source": "[E]"}), "unknown parameter"),
        (lambda d: d["read"].update(v_read={"value": "x", "source": "[E]"}), "not a number"),
        (lambda d: d["read"].update(v_read=0.2), "value = <number>"),
        (lambda d: d["meta"].update(kind="pcm"), "kind 'pcm' unknown"),
        (lambda d: d["faults"].update(stuck_low_rate={"value": -0.1, "source": "[E]"}), ">= 0"),
    ],
)
def test_bad_preset_files_are_rejected(tmp_path, mutate, message):
    data = to_dict(load_preset("hfo2-mlc"))
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(MemlearnError, match=message):
        load_preset(str(path))


def test_unknown_or_broken_preset_names(tmp_path):
    with pytest.raises(MemlearnError, match="unknown preset 'nope'.*hfo2-mlc"):
        load_preset("nope")
    with pytest.raises(MemlearnError, match="does not exist"):
        load_preset(str(tmp_path / "missing.toml"))
    broken = tmp_path / "broken.toml"
    broken.write_text("[meta\nname = ")
    with pytest.raises(MemlearnError, match="not valid TOML"):
        load_preset(str(broken))
    with pytest.raises(MemlearnError, match=r"\.toml or \.json"):
        save_preset(load_preset("hfo2-mlc"), tmp_path / "x.yaml")


def test_levels_placement_and_decoding():
    lv = level_conductances(8, (10e-6, 150e-6))
    assert lv.shape == (8,)
    assert torch.allclose(lv[1:] - lv[:-1], torch.full((7,), 20e-6), rtol=1e-5)
    log = level_conductances(4, (10e-6, 1000e-6), "log")
    assert torch.allclose(log[1:] / log[:-1], torch.full((3,), 10 ** (2 / 3)), rtol=1e-4)
    g = torch.tensor([9e-6, 19.9e-6, 20.1e-6, 149e-6, 500e-6])
    assert nearest_level(g, lv).tolist() == [0, 0, 1, 7, 7]
    assert torch.equal(load_preset("hfo2-mlc").levels(8), lv)


@pytest.mark.parametrize("n", [1, 0, -3, 65, 2.5])
def test_levels_below_two_are_rejected(n):
    with pytest.raises(MemlearnError, match=r"levels must be an integer in \[2, 64\]"):
        level_conductances(n, (10e-6, 150e-6))


@pytest.mark.parametrize("window", [(150e-6, 10e-6), (10e-6, 10e-6), (-1e-6, 10e-6)])
def test_inverted_or_empty_window_is_rejected(window):
    with pytest.raises(MemlearnError, match="0 < G_min < G_max"):
        level_conductances(8, window)


def test_unknown_spacing():
    with pytest.raises(MemlearnError, match="unknown level spacing 'cubic'"):
        level_conductances(4, (10e-6, 150e-6), "cubic")
