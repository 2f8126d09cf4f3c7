"""The ep study's verdicts come from measured numbers: each fails on a planted counter-example."""

from __future__ import annotations

from memlearn.experiments.ep import ep_verdicts

GOOD = {("ep", "float"): 0.97, ("backprop", "float"): 0.98, ("ep", "array"): 0.96,
        ("backprop", "array"): 0.965}  # fmt: skip
LEVELS = [{"levels": 4, "final_accuracy": 0.90}, {"levels": 16, "final_accuracy": 0.96}]
SPREADS = [{"spread": 0.5, "final_accuracy": 0.96}, {"spread": 2.0, "final_accuracy": 0.93}]


def _failed(final=GOOD, levels=LEVELS, spreads=SPREADS):
    return [name for name, ok in ep_verdicts(final, levels, spreads).items() if not ok]


def test_verdicts_pass_on_a_good_case():
    assert _failed() == []


def test_each_verdict_fails_on_its_planted_counter_example():
    assert _failed(final={**GOOD, ("backprop", "float"): 0.995}) == [
        "software EP within 2 points of software backprop"
    ]
    assert _failed(final={**GOOD, ("ep", "array"): 0.94}) == [
        "EP on the array within 2 points of software EP"
    ]
    flat = [dict(LEVELS[0]), {**LEVELS[1], "final_accuracy": 0.90}]
    assert _failed(levels=flat) == ["16 levels beat 4 levels"]
    worse = [dict(SPREADS[0]), {**SPREADS[1], "final_accuracy": 0.97}]
    assert _failed(spreads=worse) == ["spread x0.5 at least as accurate as x2"]
