"""The gate DAC table the controller looks SET compliances and energies up in gives exactly what
the gate and transistor physics compute, code by code."""

from __future__ import annotations

import pytest
import torch

from memlearn.devices import load_preset
from memlearn.devices.physics import (
    compliance,
    dac_table,
    gate_code,
    gate_voltage,
    set_energy,
)


@pytest.mark.parametrize("name", ["hfo2-mlc", "oxram-slc"])
def test_dac_table_matches_the_physics_bit_for_bit(name):
    preset = load_preset(name)
    table = dac_table(preset)
    assert table is not None
    icc_max = preset.values["icc_max"]
    icc = torch.rand(20_000, generator=torch.Generator().manual_seed(0)) * 1.5 * icc_max
    icc[:3] = torch.tensor([0.0, preset.values["icc_min"], icc_max])
    direct = compliance(preset, gate_voltage(preset, icc))
    code = gate_code(preset, icc).long()
    assert torch.equal(table[0][code], direct)
    assert torch.equal(table[1][code], set_energy(preset, direct))


def test_no_table_without_a_dac_grid():
    assert dac_table(load_preset("hfo2-mlc").replace(gate_step=0.0)) is None
