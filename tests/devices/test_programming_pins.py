"""Pinned outcomes of programming: every preset kind and write strategy, a reprogram with a
pulse limit, a bake, and a crossbar whose cells wear out, on a small seeded case.

``programming_pins.json`` holds the outcomes computed before the write strategies and cell
technologies were restructured; a change in behaviour (pulse decisions, random-number use,
energies) fails this test.  Counts and flags compare exactly, conductances and energies to a
relative 1e-5 (room for last-bit differences of vectorised math between CPUs, far below any
change in behaviour).  After an intended change of behaviour, regenerate the file with
``python tests/devices/test_programming_pins.py`` and say why in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

from memlearn.crossbar.array import CrossbarArray
from memlearn.devices import STRATEGIES, bake, load_preset, program

PINS = Path(__file__).with_name("programming_pins.json")
PRESETS = ("hfo2-mlc", "oxram-slc", "feram-1t1c")
EXACT = {"set_pulses", "reset_pulses", "verify_reads", "failed", "again_pulses", "again_failed"}
EXACT |= {"failed_cells", "stuck"}


def _program_case(preset_name: str, strategy: str) -> dict[str, list]:
    p = load_preset(preset_name)
    lo, hi = p.window
    g = torch.Generator().manual_seed(1234)
    tgt = torch.linspace(lo, hi, 6)
    if p.technology.states == 2:
        tgt = torch.tensor([lo, hi, hi, lo, hi, lo])
    r = program(p, tgt, strategy, generator=g)
    r2 = program(p, tgt.flip(0), strategy, generator=g, cells=r.cells, max_pulses=4)
    bake(p, r2.cells, 12, 150, g)
    return {
        "conductance": r.conductance.tolist(),
        "set_pulses": r.set_pulses.tolist(),
        "reset_pulses": r.reset_pulses.tolist(),
        "verify_reads": r.verify_reads.tolist(),
        "energy_j": r.energy_j.tolist(),
        "failed": r.failed.tolist(),
        "again_conductance": r2.conductance.tolist(),
        "again_pulses": r2.pulses.tolist(),
        "again_failed": r2.failed.tolist(),
        "baked": r2.cells.g.tolist(),
    }


def _crossbar_case() -> dict[str, list]:
    p = load_preset("hfo2-mlc").replace(endurance=3.0)  # cells wear out while programmed
    g = torch.Generator().manual_seed(99)
    arr = CrossbarArray(p, 2, 3, 2, generator=g)
    lo, hi = p.window
    gp = torch.linspace(lo, hi, 12).view(2, 3, 2)
    w = arr.program(gp, gp.flip(-1), "hybrid")
    arr.advance(3600.0, 350.0)
    return {
        "energy_j": w.energy_j.tolist(),
        "failed_cells": w.failed_cells.tolist(),
        "set_pulses": w.set_pulses.tolist(),
        "stuck": arr.cells.stuck.view(-1).tolist(),
        "conductance": arr.cells.g.view(-1).tolist(),
    }


def compute_pins() -> dict[str, dict[str, list]]:
    cases = {f"{p}/{s}": _program_case(p, s) for p in PRESETS for s in STRATEGIES}
    cases["crossbar/hfo2-mlc-endurance3/hybrid"] = _crossbar_case()
    return cases


@pytest.fixture(scope="module")
def pins() -> dict[str, dict[str, list]]:
    return json.loads(PINS.read_text())


@pytest.mark.parametrize("case", [f"{p}/{s}" for p in PRESETS for s in STRATEGIES])
def test_programming_matches_pins(pins, case):
    compare_pins(_program_case(*case.split("/")), pins[case])


def test_worn_out_crossbar_matches_pins(pins):
    got = _crossbar_case()
    assert sum(got["stuck"]) > 0  # the case does exercise wear
    compare_pins(got, pins["crossbar/hfo2-mlc-endurance3/hybrid"])


def compare_pins(got: dict[str, list], want: dict[str, list], exact: set[str] = EXACT) -> None:
    """Every pinned key present; counts in ``exact`` equal, the rest within 1e-5 relative."""
    assert got.keys() == want.keys()
    for key, value in want.items():
        if key in exact:
            assert got[key] == value, key
        else:
            torch.testing.assert_close(
                torch.tensor(got[key], dtype=torch.float64),
                torch.tensor(value, dtype=torch.float64),
                rtol=1e-5,
                atol=0.0,
                msg=key,
            )


if __name__ == "__main__":  # regenerate the pins (only after an intended change)
    PINS.write_text(json.dumps(compute_pins(), indent=1) + "\n")
    sys.exit(0)
