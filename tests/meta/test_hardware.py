"""Hardware-aware weight programming: levels, partial re-programming, straight-through, noise."""

from __future__ import annotations

import pytest
import torch

from memlearn.meta.hardware import (
    ClipAwareProgrammer,
    IdealProgrammer,
    LevelProgrammer,
    TableProgrammer,
    make_programmer,
    milo_spread,
)


def _weights(seed: int = 0, shape: tuple[int, ...] = (3, 16, 32)) -> torch.Tensor:
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed)) * 0.3


def test_quantises_to_differential_levels() -> None:
    prog = LevelProgrammer(levels=8, spread=None)
    w = _weights()
    out = prog(w, None, 0.5)
    step_w = 0.5 / 7  # a weight level: one conductance step of one cell
    k = out.weight / step_w
    torch.testing.assert_close(k, k.round(), atol=1e-4, rtol=0)
    assert out.weight.abs().max() <= 0.5 + 1e-6  # clipped at the full window
    # One cell of each pair stays at G_min: the pair never has both cells above it.
    assert ((out.level_plus > 0) & (out.level_minus > 0)).sum() == 0
    inside = w.abs() < 0.5
    assert (out.weight - w)[inside].abs().max() <= step_w / 2 + 1e-6  # nearest level
    assert out.written.all()


def test_only_changed_cells_are_reprogrammed() -> None:
    prog = LevelProgrammer(levels=8)
    gen = torch.Generator().manual_seed(1)
    w = _weights(1)
    first = prog(w, None, 0.5, gen)
    nudged = first.weight.detach().clone()
    nudged[0, 0, :4] += 0.2  # more than a level step: these pairs move
    second = prog(nudged, first, 0.5, gen)
    moved_p = second.level_plus != first.level_plus
    moved_m = second.level_minus != first.level_minus
    assert torch.equal(second.written, moved_p | moved_m)
    assert bool(second.written[0, 0, :4].all()) and int(second.written.sum()) == 4
    # a cell whose own level did not change keeps its conductance, even in a written pair
    assert torch.equal(second.g_plus[~moved_p], first.g_plus[~moved_p])
    assert torch.equal(second.g_minus[~moved_m], first.g_minus[~moved_m])


def test_updates_round_stochastically_from_the_last_level() -> None:
    """An update of a quarter step moves a pair one level up with probability 1/4, so the
    expected nominal weight follows the requested one (the chip's ``stochastic`` policy)."""
    prog = LevelProgrammer(levels=8, spread=None)
    step = 0.5 / 7
    w = torch.full((200_000,), 2 * step)
    first = prog(w, None, 0.5)
    second = prog(first.weight + 0.25 * step, first, 0.5, torch.Generator().manual_seed(2))
    moved = (second.level_plus - first.level_plus).float()
    assert set(moved.unique().tolist()) == {0.0, 1.0}
    assert abs(float(moved.mean()) - 0.25) < 0.005
    nearest = LevelProgrammer(levels=8, spread=None, rounding="verify")
    again = nearest(first.weight + 0.25 * step, first, 0.5)
    assert not again.written.any()  # nearest rounding drops an update below half a step


def test_accumulate_keeps_sub_step_updates_in_a_float_copy() -> None:
    """Four updates of a quarter step each: ``verify`` never moves the pair, ``accumulate``
    moves it exactly one level once the copy crosses the half-step boundary (after the second
    update), and the copy holds the requested weight to float precision, clipped at the full
    scale."""
    step = 0.5 / 7
    w = torch.full((4,), 2 * step)
    acc = LevelProgrammer(levels=8, spread=None, rounding="accumulate")
    near = LevelProgrammer(levels=8, spread=None, rounding="verify")
    a, n = acc(w, None, 0.5), near(w, None, 0.5)
    torch.testing.assert_close(a.copy, w)
    levels = []
    for _ in range(4):
        a = acc(a.weight + 0.25 * step, a, 0.5)
        n = near(n.weight + 0.25 * step, n, 0.5)
        levels.append(int(a.level_plus[0]))
    assert levels == [2, 3, 3, 3]
    assert int(n.level_plus[0]) == 2
    torch.testing.assert_close(a.copy, torch.full((4,), 3 * step))
    big = acc(a.weight + 10.0, a, 0.5)  # beyond the window: the copy stops at the full scale
    torch.testing.assert_close(big.copy, torch.full((4,), 0.5))
    assert int(big.level_plus[0]) == 7
    with pytest.raises(ValueError, match="accumulate"):
        LevelProgrammer(rounding="sometimes")


def test_straight_through_gradient_is_identity() -> None:
    prog = LevelProgrammer(levels=4)
    w = _weights(2).requires_grad_(True)
    out = prog(w, None, 0.4, torch.Generator().manual_seed(0))
    upstream = torch.randn(w.shape, generator=torch.Generator().manual_seed(3))
    (out.weight * upstream).sum().backward()
    torch.testing.assert_close(w.grad, upstream)
    assert not torch.allclose(out.weight.detach(), w.detach())


def test_programming_spread_follows_milo_model() -> None:
    prog = LevelProgrammer(levels=8)
    level = torch.full((200_000,), 3, dtype=torch.int64)
    g = prog._program(level, torch.float32, torch.Generator().manual_seed(4))
    target = prog.g_min + 3 * prog.step
    expected = float(milo_spread(torch.tensor(target)))
    assert abs(float(g.mean()) - target) < 5 * expected / 200_000**0.5
    assert abs(float(g.std()) / expected - 1) < 0.02


def test_ideal_programmer_is_exact() -> None:
    w = _weights(5)
    assert make_programmer("ideal")(w, None, 1.0).weight is w
    assert isinstance(make_programmer("ideal"), IdealProgrammer)


def test_table_programmer_draws_measured_values() -> None:
    table = torch.tensor([[10e-6, 11e-6], [75e-6, 76e-6], [149e-6, 150e-6]])
    prog = TableProgrammer(table, 10e-6, 150e-6)
    w = torch.tensor([[-1.0, -0.5, 0.0, 0.5, 1.0]])
    out = prog(w, None, 1.0, torch.Generator().manual_seed(0))
    for g, lv in ((out.g_plus, out.level_plus), (out.g_minus, out.level_minus)):
        rows = table[lv]
        assert ((g[..., None] == rows).any(-1)).all()


def test_table_from_device_model() -> None:
    prog = TableProgrammer.from_device("hfo2-mlc", "hybrid", levels=4, samples=64, seed=0)
    assert prog.table.shape == (4, 64)
    means = prog.table.mean(1)
    assert (means.diff() > 0).all()  # levels stay ordered after programming
    g_min, g_max = prog.g_min, prog.g_max
    targets = torch.linspace(g_min, g_max, 4)
    assert (means - targets).abs().max() < (g_max - g_min) / 6


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"levels": 1}, "levels"),
        ({"g_min": 2e-6, "g_max": 1e-6}, "window"),
        ({"g_min": 0.0}, "window"),
        ({"rounding": "up"}, "rounding"),
    ],
)
def test_bad_programmer_options(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        LevelProgrammer(**kwargs)


def test_bad_programmer_calls() -> None:
    with pytest.raises(ValueError, match="unknown programmer"):
        make_programmer("analog")
    prog = LevelProgrammer()
    with pytest.raises(ValueError, match="weight_max"):
        prog(_weights(), None, 0.0)
    first = prog(_weights(), None, 1.0)
    with pytest.raises(ValueError, match="shape"):
        prog(_weights(shape=(2, 16, 32)), first, 1.0)


@pytest.mark.parametrize("rounding", ["accumulate", "verify"])
def test_clip_aware_programmer_passes_no_gradient_beyond_the_full_scale(rounding: str) -> None:
    plain = LevelProgrammer(levels=8, spread=None, rounding=rounding)
    clip = ClipAwareProgrammer(plain)
    w = torch.tensor([0.1, -0.3, 0.5, -2.0, 3.0], requires_grad=True)
    start = plain(torch.zeros(5), None, 1.0)
    state = clip(w, start, 1.0)
    assert torch.equal(state.weight, plain(w, start, 1.0).weight)  # the same values
    state.weight.sum().backward()
    assert w.grad.tolist() == [1.0, 1.0, 1.0, 0.0, 0.0]
