"""Pinned outcomes of the program-and-verify controller on a larger seeded case than
``test_programming_pins`` (8 levels x 40 cells, a second operation with a small pulse limit),
so that cells finish over many pulses and the controller's compaction of finished cells is
exercised.  Counts and flags compare exactly, conductances and energies to a relative 1e-5.
After an intended change of behaviour, regenerate ``controller_pins.json`` with
``python tests/devices/test_controller_pins.py`` and say why in the commit.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from test_programming_pins import compare_pins

from memlearn.devices import STRATEGIES, load_preset, program

PINS = Path(__file__).with_name("controller_pins.json")
EXACT = {"set_pulses", "reset_pulses", "verify_reads", "failed", "stuck"}


def _case(strategy: str) -> dict[str, list]:
    p = load_preset("hfo2-mlc").replace(endurance=12.0)  # some cells wear out on the way
    g = torch.Generator().manual_seed(7)
    tgt = p.levels(8).repeat_interleave(40)
    first = program(p, tgt, strategy, generator=g)
    again = program(p, tgt.flip(0), strategy, generator=g, cells=first.cells, max_pulses=5)
    out: dict[str, list] = {}
    for name, r in (("", first), ("again_", again)):
        out[name + "conductance"] = r.conductance.tolist()
        out[name + "set_pulses"] = r.set_pulses.tolist()
        out[name + "reset_pulses"] = r.reset_pulses.tolist()
        out[name + "verify_reads"] = r.verify_reads.tolist()
        out[name + "energy_j"] = r.energy_j.tolist()
        out[name + "failed"] = r.failed.tolist()
    out["stuck"] = again.cells.stuck.tolist()
    return out


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_controller_matches_pins(strategy):
    want = json.loads(PINS.read_text())[strategy]
    got = _case(strategy)
    compare_pins(got, want, EXACT | {f"again_{k}" for k in EXACT})


def test_pinned_case_exercises_the_controller():
    want = json.loads(PINS.read_text())
    pulses = torch.tensor(want["hybrid"]["set_pulses"]) + torch.tensor(
        want["hybrid"]["reset_pulses"]
    )
    assert int(pulses.max()) > 5 and len(set(pulses.tolist())) > 5  # cells finish at many pulses
    assert sum(want["hybrid"]["stuck"]) > 0  # and some wear out


if __name__ == "__main__":  # regenerate the pins (only after an intended change)
    PINS.write_text(json.dumps({s: _case(s) for s in STRATEGIES}) + "\n")
    sys.exit(0)
