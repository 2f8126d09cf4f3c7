"""The fused program-and-verify engine against the torch controller: without noise the same
outcome cell by cell (pulse counts, failures, conductances, charges, wear, abandoned cells);
with the preset's noise the same distributions; bit-identical whatever the thread count."""

from __future__ import annotations

import hashlib
import json

import pytest
import torch
from scipy.stats import ks_2samp, kstest, norm
from typer.testing import CliRunner

from memlearn.cli.main import app
from memlearn.devices import engines, load_preset, program
from memlearn.devices.cells import STUCK_HIGH, STUCK_LOW, sample_cells
from memlearn.devices.engines import ENGINES, check_engine
from memlearn.devices.fused_random import normals
from memlearn.devices.levels import strategy_levels
from memlearn.errors import MemlearnError
from memlearn.onchip.deploy import DeployConfig

numba = pytest.importorskip("numba")

VERIFIED = ("iterative-set", "iterative-reset", "hybrid")


def _quiet(**changes: float):
    """hfo2-mlc without cycle-to-cycle or read noise: every pulse and read exact."""
    return load_preset("hfo2-mlc").replace(
        set_c2c=0.0, reset_c2c=0.0, reset_c2c_jump=0.0, read_noise=0.0, read_noise_rel=0.0,
        **changes,
    )  # fmt: skip


def _cells(preset, n: int, seed: int = 3):
    """Cells with wide RESET-onset shifts, 2 % stuck low, 2 % stuck high, 8 % that wear out
    within 1-21 pulses and 38 % already written somewhere in the window."""
    gen = torch.Generator().manual_seed(seed)
    cells = sample_cells(preset, (n,), gen)
    cells.reset_shift.copy_(0.08 * torch.randn(n, generator=gen))
    u = torch.rand(n, generator=gen)
    cells.stuck.zero_()
    low, high = u < 0.02, (u >= 0.02) & (u < 0.04)
    worn, written = (u >= 0.04) & (u < 0.12), (u >= 0.12) & (u < 0.5)
    cells.stuck[low], cells.g[low] = STUCK_LOW, preset.values["g_stuck_low"]
    cells.stuck[high], cells.g[high] = STUCK_HIGH, preset.values["g_stuck_high"]
    cells.endurance[worn] = 1.0 + 20.0 * torch.rand(int(worn.sum()), generator=gen)
    cells.g[written] = 5e-6 + 150e-6 * torch.rand(int(written.sum()), generator=gen)
    return cells


def _twice(preset, strategy: str, engine: str, per_level: int = 100):
    """Two program operations (the targets, then reversed) on the same ``_cells``."""
    tgt = strategy_levels(preset, 8, strategy).repeat_interleave(per_level)
    cells = _cells(preset, tgt.numel())
    first = program(preset, tgt, strategy, generator=torch.Generator().manual_seed(1),
                    cells=cells, settle_s=0.0, engine=engine)  # fmt: skip
    stuck_before = first.cells.stuck.clone()
    second = program(preset, tgt.flip(0), strategy, generator=torch.Generator().manual_seed(2),
                     cells=first.cells.clone(), settle_s=0.0, engine=engine)  # fmt: skip
    return first, stuck_before, second


def _assert_same(t, f):
    for name in ("set_pulses", "reset_pulses", "verify_reads", "failed"):
        assert torch.equal(getattr(t, name), getattr(f, name)), name
    for name in ("conductance", "energy_j", "verify_energy_j"):
        torch.testing.assert_close(getattr(f, name), getattr(t, name), rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(f.cells.set_icc, t.cells.set_icc, rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(f.cells.reset_depth, t.cells.reset_depth, rtol=1e-5, atol=1e-5)
    assert torch.equal(f.cells.reset_final, t.cells.reset_final)
    assert torch.equal(f.cells.stuck, t.cells.stuck)


@pytest.mark.parametrize("strategy", VERIFIED)
@pytest.mark.parametrize("changes", [{}, {"abandon_pulses": 4.0}, {"gate_step": 0.0}])
def test_without_noise_the_engines_agree_cell_by_cell(strategy, changes):
    preset = _quiet(**changes)
    t1, t_stuck, t2 = _twice(preset, strategy, "torch")
    f1, f_stuck, f2 = _twice(preset, strategy, "fused")
    _assert_same(t1, f1)
    assert torch.equal(t_stuck, f_stuck)
    _assert_same(t2, f2)
    # the case covers what it should: failures, wear, trims, several restarts
    limit = int(preset.values["max_pulses"])
    assert bool(t1.failed.any()) and bool((t_stuck == STUCK_HIGH).sum() > 0.02 * t_stuck.numel())
    assert int(t2.pulses.max()) >= 10 and bool((t2.reset_pulses > 1).any())
    abandoned = t1.failed & (t1.pulses < limit)
    assert bool(abandoned.any()) == bool(changes.get("abandon_pulses"))


@pytest.mark.parametrize("strategy", VERIFIED)
def test_with_noise_the_distributions_agree(strategy):
    preset = load_preset("hfo2-mlc")
    levels = strategy_levels(preset, 8, strategy)
    tgt = levels.repeat_interleave(500)
    out = {}
    for engine in ENGINES:  # the same cells (device-to-device spread, stuck cells) for both
        cells = sample_cells(preset, tgt.shape, torch.Generator().manual_seed(6))
        gen = torch.Generator().manual_seed(7)
        out[engine] = program(preset, tgt, strategy, generator=gen, cells=cells, engine=engine)
    t, f = out["torch"], out["fused"]
    for level in levels:
        at = tgt == level
        assert ks_2samp(t.conductance[at], f.conductance[at]).pvalue > 1e-3, float(level)
    for name in ("pulses", "energy_j"):  # means within 4 standard errors and 4 %
        a, b = getattr(t, name).double(), getattr(f, name).double()
        se = (a.var() / a.numel() + b.var() / b.numel()).sqrt()
        gap = abs(float(b.mean() - a.mean()))
        assert gap < 4 * float(se) and gap < 0.04 * float(a.mean()), name
    assert abs(float(f.failed.float().mean()) - float(t.failed.float().mean())) < 0.004
    assert not torch.equal(t.set_pulses, f.set_pulses)  # its own random numbers


def test_the_kernels_normals_are_standard_normal():
    z = normals(7, 3, 400_000)
    assert abs(z.mean()) < 0.01 and abs(z.var() - 1.0) < 0.01
    assert kstest(z, "norm").pvalue > 1e-3
    tail = int((abs(z) > 3.5).sum())  # the ziggurat's tail starts at 3.65
    assert abs(tail - 400_000 * 2 * norm.sf(3.5)) < 60
    firsts = [normals(11, i, 1)[0] for i in range(3000)]  # across the cells' streams
    assert kstest(firsts, "norm").pvalue > 1e-3
    assert (normals(7, 3, 5) == z[:5]).all() and not (normals(8, 3, 5) == z[:5]).any()


def _fused(seed: int):
    preset = load_preset("hfo2-mlc")
    tgt = strategy_levels(preset, 8, "hybrid").repeat_interleave(200)
    gen = torch.Generator().manual_seed(seed)
    result = program(preset, tgt, "hybrid", generator=gen, engine="fused")
    return result, gen.initial_seed(), torch.rand(1, generator=gen)


def test_fused_is_deterministic_and_the_same_on_any_number_of_threads(monkeypatch):
    if numba.config.NUMBA_NUM_THREADS < 2:
        pytest.skip("numba has a single thread here")
    monkeypatch.setattr(engines, "PARALLEL_CELLS", 0)  # these few cells on every thread
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one, _, after_one = _fused(4)
        numba.set_num_threads(2)
        two, _, after_two = _fused(4)
    finally:
        numba.set_num_threads(before)
    for name in ("conductance", "set_pulses", "reset_pulses", "energy_j", "failed"):
        assert torch.equal(getattr(one, name), getattr(two, name)), name
    assert torch.equal(after_one, after_two)  # the caller's generator advanced alike
    other, _, _ = _fused(5)
    assert not torch.equal(other.conductance, one.conductance)


def test_engine_names_and_devices_are_checked():
    tgt = torch.full((4,), 50e-6)
    allowed = r"unknown engine 'numba'; allowed \['torch', 'fused'\]"
    with pytest.raises(MemlearnError, match=allowed):
        program("hfo2-mlc", tgt, "hybrid", engine="numba")
    with pytest.raises(MemlearnError, match="fused engine runs on CPU tensors, not cuda"):
        check_engine("fused", "cuda")
    assert check_engine(None) == "torch" and check_engine("torch", "cuda") == "torch"
    with pytest.raises(ValueError, match="unknown engine 'numba'"):
        DeployConfig(engine="numba")
    if torch.cuda.is_available():
        with pytest.raises(ValueError, match="engine fused runs on the CPU"):
            DeployConfig(engine="fused", torch_device="cuda")
    single = {e: program("hfo2-mlc", tgt, "single-set", generator=torch.Generator().manual_seed(0),
                         engine=e) for e in ENGINES}  # fmt: skip
    assert torch.equal(single["torch"].conductance, single["fused"].conductance)  # not verified


def _adapt(engine: str) -> dict:
    args = ["adapt", "--tasks", "16", "--chips", "16", "--steps", "2", "--split", "val",
            "--json", "--engine", engine]  # fmt: skip
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def test_adapting_on_chips_with_the_fused_engine_learns_as_the_torch_one():
    from memlearn.meta.checkpoint import shipped_checkpoint_path

    try:
        shipped_checkpoint_path()
    except MemlearnError:
        pytest.skip("the shipped checkpoint is not in the tree")
    torch_run, fused_run = _adapt("torch"), _adapt("fused")
    assert fused_run["config"]["engine"] == "fused"
    acc_t, acc_f = torch_run["accuracy_by_step"], fused_run["accuracy_by_step"]
    assert acc_f[-1] > acc_f[0] + 0.4  # it learns
    assert abs(acc_f[-1] - acc_t[-1]) < 0.06
    pulses_t, pulses_f = torch_run["pulses_per_adaptation"], fused_run["pulses_per_adaptation"]
    assert abs(pulses_f - pulses_t) < 0.05 * pulses_t


PINNED = {  # SHA-256 prefixes of the fused engine's outcome, recorded before its speed-ups
    ("iterative-set", 0.0): "938be24bc06c2789",
    ("iterative-reset", 0.0): "838288181b427656",
    ("hybrid", 0.0): "6eecc93f772d8187",
    ("hybrid", 4.0): "41b394be5eaaa22e",
}


@pytest.mark.parametrize(("strategy", "abandon"), sorted(PINNED))
def test_the_fused_engines_outcome_is_pinned_bit_for_bit(strategy, abandon):
    """A seeded fused write (hfo2-mlc with its noise, 2,000 cells) gives the same bits as
    the kernel always has: its optimisations change no result."""
    preset = load_preset("hfo2-mlc").replace(abandon_pulses=abandon)
    tgt = strategy_levels(preset, 8, strategy).repeat_interleave(250)
    r = program(preset, tgt, strategy, generator=torch.Generator().manual_seed(7),
                settle_s=0.0, engine="fused")  # fmt: skip
    h = hashlib.sha256()
    for t in (r.conductance, r.set_pulses, r.reset_pulses, r.verify_reads, r.energy_j,
              r.verify_energy_j, r.failed, r.cells.set_icc, r.cells.reset_depth,
              r.cells.reset_final, r.cells.stuck):  # fmt: skip
        h.update(t.contiguous().numpy().tobytes())
    assert h.hexdigest()[:16] == PINNED[(strategy, abandon)]
