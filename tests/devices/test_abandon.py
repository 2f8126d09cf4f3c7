"""Abandoning unresponsive cells (the preset's ``abandon_pulses``): a stuck cell is given up
after that many pulses without moving, flagged failed; a cell that moves slowly is not; off
(the default), the stuck cell takes the whole pulse limit."""

from __future__ import annotations

import pytest
import torch

from memlearn.devices import load_preset, program
from memlearn.devices.cells import STUCK_LOW, STUCK_NONE, sample_cells
from memlearn.errors import MemlearnError

K = 10  # pulses without a move before a cell is abandoned


def _quiet(abandon: int):
    """hfo2-mlc without read noise or spread (every read and step exact), small SET steps."""
    return load_preset("hfo2-mlc").replace(
        abandon_pulses=abandon, read_noise=0.0, read_noise_rel=0.0, set_c2c=0.0,
        iset_step=0.01, gate_step=0.0,
    )  # fmt: skip


def _program(abandon: int):
    """Two cells programmed to 100 uS with iterative SET: cell 0 stuck low, cell 1 healthy at
    10 uS, whose SET ramp climbs ~1 uS a pulse (slower than the move band of 8 uS)."""
    preset = _quiet(abandon)
    cells = sample_cells(preset, (2,), torch.Generator().manual_seed(0))
    cells.stuck.copy_(torch.tensor([STUCK_LOW, STUCK_NONE], dtype=torch.int8))
    cells.g.copy_(torch.tensor([preset.values["g_stuck_low"], 10e-6]))
    cells.set_gain.fill_(1.0)
    cells.endurance.fill_(1e9)
    target = torch.full((2,), 100e-6)
    gen = torch.Generator().manual_seed(1)
    return program(preset, target, "iterative-set", generator=gen, cells=cells, settle_s=0.0)


def test_a_stuck_cell_is_abandoned_and_a_slow_one_is_not():
    r = _program(K)
    limit = int(load_preset("hfo2-mlc").values["max_pulses"])
    assert bool(r.failed[0]) and int(r.pulses[0]) == K  # given up after K unmoved SETs
    assert not bool(r.failed[1])  # verified
    assert K < int(r.pulses[1]) < limit  # though it took longer than K pulses to get there
    assert abs(float(r.conductance[1]) - 100e-6) <= 4e-6


def test_without_the_option_the_stuck_cell_takes_the_pulse_limit():
    r = _program(0)
    limit = int(load_preset("hfo2-mlc").values["max_pulses"])
    assert bool(r.failed[0]) and int(r.pulses[0]) == limit
    assert not bool(r.failed[1])


def test_the_option_is_off_by_default_and_must_be_a_whole_number():
    assert load_preset("hfo2-mlc").values["abandon_pulses"] == 0
    with pytest.raises(MemlearnError, match="abandon_pulses"):
        load_preset("hfo2-mlc").replace(abandon_pulses=2.5)
