"""Inner learning-rate schedules: shared rates, per-step rows, validation."""

from __future__ import annotations

import pytest
import torch

from memlearn.nn.rates import rate_table, rates_at, step_rates


def test_shared_rates_are_one_row_and_serve_every_step():
    assert rate_table([0.2, 0.9]) == [[0.2, 0.9]]
    assert rates_at([0.2, 0.9], 0) == rates_at([0.2, 0.9], 7) == [0.2, 0.9]


def test_schedule_rows_per_step_and_the_last_row_repeats():
    schedule = [[0.1, 2.0], [0.2, 1.0], [0.3, 0.5]]
    assert rate_table(schedule) == schedule
    assert [rates_at(schedule, k) for k in range(5)] == [
        [0.1, 2.0], [0.2, 1.0], [0.3, 0.5], [0.3, 0.5], [0.3, 0.5]
    ]  # fmt: skip
    tensor = torch.tensor(schedule)
    assert rates_at(tensor, 1) == pytest.approx([0.2, 1.0])
    assert torch.equal(step_rates(tensor, 9), tensor[-1])
    assert torch.equal(step_rates(tensor[0], 3), tensor[0])


@pytest.mark.parametrize(
    ("rates", "match"),
    [
        ([], "2 rates"),
        (0.5, "2 rates"),
        ([0.1, 0.2, 0.3], "row of inner_lrs must hold 2"),
        ([[0.1, 0.2], [0.3]], "row of inner_lrs must hold 2"),
        ([0.1, -0.2], "finite rates > 0"),
        ([[0.1, 0.2], [0.1, float("nan")]], "finite rates > 0"),
    ],
)
def test_bad_rates_are_refused_with_the_reason(rates, match):
    with pytest.raises(ValueError, match=match):
        rate_table(rates, 2)


def test_stored_rates_keep_the_form_given():
    from memlearn.nn.rates import stored_rates

    assert stored_rates([0.2, 1]) == [0.2, 1.0]
    assert stored_rates(torch.tensor([0.25, 0.5])) == [0.25, 0.5]
    assert stored_rates([[0.25, 0.5]]) == [[0.25, 0.5]]
    assert stored_rates(torch.tensor([[0.25, 0.5], [0.5, 1.0]])) == [[0.25, 0.5], [0.5, 1.0]]
    with pytest.raises(ValueError, match="finite rates > 0"):
        stored_rates([0.0, 1.0])
