"""Reads take each cell's age in the 1/f read-noise law: characterisation after a bake reads
noisier than right after programming, as the law says; a cell no write touched reads at the
preset's ``settle_s`` (its first use), never younger."""

from __future__ import annotations

import torch

from memlearn.devices.characterize import characterize
from memlearn.devices.physics import flicker_band, read_age, read_sigma
from memlearn.devices.preset import load_preset
from memlearn.devices.retention import celsius, equivalent_seconds

BAKE_HOURS = 1000.0
BAKE_CELSIUS = 150.0


def _still_preset():
    """hfo2-mlc with no relaxation (a bake moves no cell, it only ages them), no stuck cells
    and the 1/f term alone (no additive read noise), so the reads' spread is the law's."""
    return load_preset("hfo2-mlc").replace(
        relax_fast=0.0, relax_log=0.0, relax_mean=0.0, stuck_low_rate=0.0, stuck_high_rate=0.0,
        read_noise_rel=0.0,
    )  # fmt: skip


def _normalised_noise(stats, preset, age: float) -> float:
    """Std of the reads' noise over the law's sigma at ``age`` (s), all cells together."""
    g = stats.samples
    return float(((stats.reads - g) / read_sigma(preset, g, age)).std())


def test_characterisation_after_a_long_bake_reads_with_the_noise_of_the_cells_age():
    p = _still_preset()
    ch = characterize(p, "iterative-set", 4, 2000, None, BAKE_HOURS, BAKE_CELSIUS, seed=0)
    assert ch.baked is not None
    assert torch.equal(ch.baked.samples, ch.programmed.samples)  # the bake moved nothing
    settle = p.values["settle_s"]
    aged = settle + equivalent_seconds(p, BAKE_HOURS * 3600.0, celsius(BAKE_CELSIUS))
    # the law's ratio of the two ages' noise is well above the estimate's precision
    assert flicker_band(p, aged) / flicker_band(p, settle) > 1.4
    assert abs(_normalised_noise(ch.programmed, p, settle) - 1.0) < 0.03
    assert abs(_normalised_noise(ch.baked, p, aged) - 1.0) < 0.03  # not settle_s's noise
    programmed = (ch.programmed.reads - ch.programmed.samples).std()
    baked = (ch.baked.reads - ch.baked.samples).std()
    assert float(baked / programmed) > 1.3


def test_reads_see_at_least_the_settle_time():
    p = load_preset("hfo2-mlc")
    settle = p.values["settle_s"]
    age = torch.tensor([0.0, 0.5 * settle, settle, 3600.0])
    assert read_age(p, age).tolist() == [settle, settle, settle, 3600.0]
    g = torch.full((4,), 100e-6)
    sigma = read_sigma(p, g, read_age(p, age))
    assert torch.equal(sigma[:3], read_sigma(p, g[:3]))  # the default age is settle_s
    assert float(sigma[3]) > float(sigma[2])
