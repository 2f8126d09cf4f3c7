"""Cell technologies behind one interface, registered by preset kind; write strategies
registered by name."""

from __future__ import annotations

import pytest
import torch

from memlearn.crossbar.array import CrossbarArray
from memlearn.devices import KINDS, characterize, list_presets, load_preset, program, technology
from memlearn.devices.cells import CellState, sample_cells
from memlearn.devices.feram import FerroelectricCell
from memlearn.devices.preset import COMMON_PARAMETERS, from_dict, to_dict
from memlearn.devices.retention import relax
from memlearn.devices.rram import ResistiveCell
from memlearn.devices.strategies import STRATEGIES, check_strategy, get_strategy
from memlearn.devices.technologies import TECHNOLOGIES
from memlearn.devices.technology import CellTechnology, WriteTally
from memlearn.devices.variants import reachable_window
from memlearn.errors import MemlearnError


def test_every_shipped_preset_has_a_registered_technology():
    assert set(KINDS) == {"rram", "feram"}
    for name in list_presets():
        p = load_preset(name)
        tech = technology(p)
        assert tech is p.technology is TECHNOLOGIES[p.kind]
        assert tech.kind == p.kind
        assert COMMON_PARAMETERS <= tech.required <= set(p.values)
    assert isinstance(technology("rram"), ResistiveCell)
    assert isinstance(technology("feram"), FerroelectricCell)
    with pytest.raises(
        MemlearnError, match=r"unknown cell kind 'pcm'; allowed \['rram', 'feram'\]"
    ):
        technology("pcm")


def test_feram_capabilities_come_from_its_technology():
    fe = load_preset("feram-1t1c")
    gen = torch.Generator().manual_seed(0)
    arr = CrossbarArray(fe, 1, 2, 2, generator=gen)
    zeros = torch.zeros(1, 2, 2, dtype=torch.int64)
    with pytest.raises(MemlearnError, match="fixed incremental pulses need a resistive"):
        arr.pulse(zeros, zeros)
    with pytest.raises(MemlearnError, match="stores 2 states per cell: levels must be 2"):
        characterize(fe, levels=4, cells=10)
    assert reachable_window(fe) == fe.window
    lo, hi = reachable_window("hfo2-mlc")
    assert 0 < lo < hi
    cells = sample_cells(fe, (5,), gen)
    before = cells.g.clone()
    relax(fe, cells, 3600.0, gen)  # no drift modelled: cells only age
    assert torch.equal(cells.g, before)
    assert torch.equal(cells.age_s, torch.full((5,), 3600.0))


class _IdealBinaryCell(CellTechnology):
    """A test technology: writes land exactly on the nearer window edge, one pulse each."""

    kind = "ideal-binary"
    required = COMMON_PARAMETERS
    states = 2

    def sample(self, preset, shape, generator):
        return torch.full(shape, preset.values["g_min"]), torch.ones(shape), torch.zeros(shape)

    def write(self, preset, cells, target, strategy, tolerance, max_pulses, generator, tally):
        lo, hi = preset.window
        cells.g.copy_(torch.where(target >= 0.5 * (lo + hi), hi, lo))
        tally.set_pulses += 1


def test_a_new_technology_is_a_class_and_a_registry_entry(monkeypatch):
    monkeypatch.setitem(TECHNOLOGIES, _IdealBinaryCell.kind, _IdealBinaryCell())
    data = to_dict(load_preset("feram-1t1c"))
    data["meta"].update(kind="ideal-binary", name="ideal")
    del data["feram"]
    p = from_dict(data)
    assert isinstance(p.technology, _IdealBinaryCell)
    lo, hi = p.window
    r = program(p, torch.tensor([lo, hi, 0.9 * hi]), generator=torch.Generator().manual_seed(0))
    assert r.conductance.tolist() == pytest.approx([lo, hi, hi])
    assert r.set_pulses.tolist() == [1, 1, 1]
    assert isinstance(r.cells, CellState)
    with pytest.raises(MemlearnError, match="lacks parameters"):
        from_dict({**data, "read": {}})


def test_strategy_registry():
    assert STRATEGIES == ("single-set", "iterative-set", "iterative-reset", "hybrid")
    for name in STRATEGIES:
        assert check_strategy(name) == name
        assert get_strategy(name).name == name
    assert [get_strategy(s).ends_with_reset for s in STRATEGIES] == [False, False, True, False]
    with pytest.raises(MemlearnError, match=r"unknown strategy 'fast'; allowed \['single-set'"):
        get_strategy("fast")
    from memlearn.devices import programming

    assert programming.STRATEGIES is STRATEGIES
    assert programming.check_strategy is check_strategy


def test_write_tally_starts_empty():
    t = WriteTally.zeros(3)
    assert t.set_pulses.dtype == torch.int32 and t.energy.dtype == torch.float32
    assert not t.failed.any() and float(t.energy.sum()) == 0.0
