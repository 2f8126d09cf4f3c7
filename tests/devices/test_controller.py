"""The adaptive program-and-verify controller: cells whose RESET onset is far from nominal
still land, pulse counts add up, hybrid splits its levels, strategies' windows."""

from __future__ import annotations

import pytest
import torch

from memlearn.devices import load_preset, program
from memlearn.devices.cells import STUCK_NONE, sample_cells
from memlearn.devices.characterize import characterize
from memlearn.devices.levels import strategy_levels, strategy_window
from memlearn.devices.strategies import get_strategy
from memlearn.errors import MemlearnError

VERIFIED = ("iterative-set", "iterative-reset", "hybrid")


def _healthy_cells(preset, n: int, shift: float, seed: int = 3):
    cells = sample_cells(preset, (n,), torch.Generator().manual_seed(seed))
    cells.stuck.fill_(STUCK_NONE)
    cells.endurance.fill_(1e9)
    cells.set_gain.fill_(1.0)
    cells.reset_shift.fill_(shift)
    return cells


@pytest.mark.parametrize("strategy", VERIFIED)
@pytest.mark.parametrize("sigmas", [-3.0, 3.0])
def test_cells_with_a_shifted_reset_onset_land_within_the_budget(strategy, sigmas):
    p = load_preset("hfo2-mlc")
    shift = sigmas * p.values["reset_d2d"]
    tgt = strategy_levels(p, 8, strategy).repeat_interleave(25)
    cells = _healthy_cells(p, tgt.numel(), shift)
    r = program(p, tgt, strategy, generator=torch.Generator().manual_seed(5), cells=cells)
    assert not bool(r.failed.any()), f"{int(r.failed.sum())} of {tgt.numel()} never verified"
    assert int(r.pulses.max()) <= p.values["max_pulses"]


@pytest.mark.parametrize("strategy", ("single-set", *VERIFIED))
def test_counts_are_conserved(strategy):
    p = load_preset("hfo2-mlc").replace(endurance=20.0)  # some cells wear out on the way
    g = torch.Generator().manual_seed(11)
    tgt = strategy_levels(p, 8, strategy).repeat_interleave(30)
    first = program(p, tgt, strategy, generator=g)
    for r in (
        first,
        program(p, tgt.flip(0), strategy, generator=g, cells=first.cells, max_pulses=4),
    ):
        assert torch.equal(r.pulses, r.set_pulses + r.reset_pulses)
        assert r.conductance.shape == tgt.shape and bool((r.set_pulses >= 0).all())
        if strategy == "single-set":
            assert bool((r.verify_reads == 0).all()) and bool((r.set_pulses == 1).all())
        else:  # one verify read before the first pulse and one after each
            assert torch.equal(r.verify_reads, r.pulses + 1)
            assert bool((r.energy_j >= r.verify_energy_j).all())
            assert bool((r.verify_energy_j > 0).all())
    assert int(r.pulses.max()) <= 4


def test_hybrid_respects_its_level_split():
    p = load_preset("hfo2-mlc")
    split = p.values["hybrid_split"]
    tgt = strategy_levels(p, 8, "hybrid").repeat_interleave(40)
    low = tgt < split
    assert bool(low.any()) and bool((~low).any())
    r = program(p, tgt, "hybrid", generator=torch.Generator().manual_seed(2))
    done = (r.cells.stuck == STUCK_NONE) & ~r.failed & (r.pulses > 0)
    # RESET-verified levels end with a RESET; SET-verified ones with a SET, never trimmed
    assert bool(r.cells.reset_final[done & low].all())
    assert not bool(r.cells.reset_final[done & ~low].any())
    assert torch.equal(get_strategy("hybrid").reset_terminated(p, tgt), low)
    # a SET-verified level only RESETs fully after an overshoot: fewer RESETs than SETs
    assert int(r.reset_pulses[~low].sum()) < int(r.set_pulses[~low].sum())


def test_hybrid_window_opens_below_the_set_range():
    p = load_preset("hfo2-mlc")
    lo, hi = strategy_window(p, "hybrid")
    assert hi == p.window[1] and lo < p.values["icc_min"] / p.values["set_k_volts"] < p.window[0]
    for s in ("single-set", "iterative-set", "iterative-reset"):
        assert strategy_window(p, s) == p.window
    assert float(strategy_levels(p, 4, "hybrid")[0]) == pytest.approx(lo)
    with pytest.raises(MemlearnError, match="window"):
        strategy_window(p.replace(hybrid_window_ratio=20.0), "hybrid")


def test_characterize_reports_sigma_over_spacing_and_healthy_errors():
    ch = characterize("hfo2-mlc", "single-set", levels=4, cells=200, seed=1)
    st = ch.programmed
    assert 0.0 <= st.healthy_error_rate <= st.error_rate + 0.01
    spacing = float(st.targets[1] - st.targets[0])
    assert st.sigma_over_spacing == pytest.approx(float(st.stds.mean()) / spacing, rel=1e-4)
    assert 0.0 <= ch.healthy_failed_fraction <= ch.failed_fraction + 0.01


def test_characterize_command_shows_the_new_figures():
    from typer.testing import CliRunner

    from memlearn.cli.main import app

    res = CliRunner().invoke(
        app, ["device", "characterize", "--strategy", "hybrid", "--levels", "3", "--cells", "50"]
    )
    assert res.exit_code == 0, res.output
    assert "sigma/Delta" in res.stdout and "of the cells not stuck" in res.stdout
    assert "     5.00" in res.stdout  # hybrid's window opens at 5 uS by default
