"""The metaplastic rule: analytic cases."""

import math

import pytest
import torch

from memlearn.continual.metaplastic import binary, check_meta, f_meta, metaplastic_update
from memlearn.errors import MemlearnError


def test_f_meta_is_the_analytic_curve():
    w = torch.tensor([0.0, 0.5, -1.0, 2.0])
    m = 1.35
    want = torch.tensor([1 - math.tanh(m * abs(x)) ** 2 for x in w.tolist()])
    assert torch.allclose(f_meta(w, m), want)
    assert f_meta(torch.tensor([0.0]), 5.0).item() == 1.0


def test_only_updates_toward_a_sign_flip_are_attenuated():
    w = torch.tensor([1.0, 1.0, -1.0, -1.0])
    du = torch.tensor([-0.1, 0.1, 0.1, -0.1])  # toward zero, away, toward zero, away
    out = metaplastic_update(w, du, 1.0)
    f = 1 - math.tanh(1.0) ** 2
    assert torch.allclose(out, torch.tensor([-0.1 * f, 0.1, 0.1 * f, -0.1]))
    # stronger metaplasticity attenuates more, never changes the direction
    out2 = metaplastic_update(w, du, 2.0)
    assert (out2[[0, 2]].abs() < out[[0, 2]].abs()).all()
    assert (torch.sign(out2) == torch.sign(du)).all()


def test_m_zero_is_the_plain_binarised_update():
    g = torch.Generator().manual_seed(0)
    w, du = torch.randn(50, generator=g), torch.randn(50, generator=g)
    assert torch.equal(metaplastic_update(w, du, 0.0), du)
    assert torch.equal(binary(torch.tensor([-0.2, 0.0, 0.3])), torch.tensor([-1.0, 1.0, 1.0]))


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), "x"])
def test_bad_meta_is_refused(bad):
    with pytest.raises(MemlearnError, match="meta"):
        check_meta(bad)


def test_forgetting_counts_only_accuracy_after_a_task_was_learned():
    from memlearn.continual.summary import accuracy_figures

    acc = torch.tensor([[[0.9, 0.8, 0.1], [0.5, 0.7, 0.1], [0.4, 0.6, 0.9]]])
    out = accuracy_figures(acc)
    # task 1: best 0.9 -> 0.4; task 2: best after learning it 0.7 (not the 0.8 before) -> 0.6
    assert out["forgetting"] == pytest.approx(((0.9 - 0.4) + (0.7 - 0.6)) / 2)
    assert out["mean_final_accuracy"] == pytest.approx((0.4 + 0.6 + 0.9) / 3)
    assert out["learned_accuracy"] == pytest.approx((0.9 + 0.7 + 0.9) / 3)
