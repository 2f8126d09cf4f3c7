"""Every study's verdict can fail: each verdict function is fed a planted result that must pass
it and planted results that must fail it (no data, no chips)."""

from __future__ import annotations

import math

import pytest

from memlearn.experiments.common import StudyInfo, conclude

TASKS = 40


def _per_task(mean: float, spread: float = 0.02, tasks: int = TASKS) -> list[float]:
    """Per-task final accuracies around ``mean`` (a fixed alternating pattern: no randomness)."""
    return [mean + (spread if i % 2 else -spread) * (1 + (i % 5) / 5) for i in range(tasks)]


def _result(final: float, start: float = 0.2, **extra) -> dict:
    finals = _per_task(final)
    return {
        "accuracy": [[start, f] for f in finals],
        "accuracy_by_step": [start, sum(finals) / len(finals)],
        "final_accuracy": sum(finals) / len(finals),
        "final_ci95": 0.01,
        **extra,
    }


def _reproduced(checks: dict[str, bool]) -> bool:
    return conclude(StudyInfo("k", "t", "p"), "o", checks, [], [], [], "n").reproduced


# -- overlap ----------------------------------------------------------------------------------


def _overlap(levels: int, low: float, high: float, reached: float) -> list[dict]:
    return [
        _result(low, levels=levels, sigma_over_spacing=0.05, level_error_rate=0.0),
        _result(high, levels=levels, sigma_over_spacing=reached, level_error_rate=0.5),
    ]


def test_overlap_verdict_passes_a_drop_in_the_regime():
    from memlearn.experiments.overlap import overlap_checks

    results = _overlap(4, 0.97, 0.60, 1.3) + _overlap(16, 0.97, 0.40, 4.0)
    checks, drops, _ = overlap_checks(results, (4, 16))
    assert _reproduced(checks) and len(checks) == 4 and len(drops) == 2


@pytest.mark.parametrize(
    ("high", "reached", "failing"),
    [
        (0.97, 1.3, "4 levels: least overlap beats most (95 % CI, paired)"),  # no drop
        (0.60, 0.5, "4 levels: the sweep reaches σ/Δ ≥ 1"),  # drop, but not in the regime
        (0.99, 1.3, "4 levels: least overlap beats most (95 % CI, paired)"),  # a rise
    ],
)
def test_overlap_verdict_fails_planted_counter_examples(high, reached, failing):
    from memlearn.experiments.overlap import overlap_checks

    checks, _, _ = overlap_checks(_overlap(4, 0.97, high, reached), (4,))
    assert checks[failing] is False and not _reproduced(checks)


def test_overlap_verdict_fails_a_level_count_without_two_points():
    from memlearn.experiments.overlap import overlap_checks

    checks, _, _ = overlap_checks(_overlap(4, 0.97, 0.5, 2.0), (4, 8))
    assert not _reproduced(checks)


# -- window -----------------------------------------------------------------------------------


def _window(levels: int, narrow: float, wide: float, collapse: float) -> list[dict]:
    return [
        _result(narrow, levels=levels, span_us=1.4, sigma_over_spacing=collapse),
        _result(wide, levels=levels, span_us=140.0),
    ]


def test_window_verdict_passes_a_gain_from_collapse():
    from memlearn.experiments.window import window_checks

    checks, observed, _, _ = window_checks(_window(8, 0.3, 0.97, 3.0), (8,))
    assert _reproduced(checks) and len(observed) == 1


@pytest.mark.parametrize(
    ("narrow", "collapse", "failing"),
    [
        (0.97, 3.0, "8 levels: widest window beats narrowest (95 % CI, paired)"),
        (0.30, 0.4, "8 levels: the narrowest window collapses the levels (σ/Δ ≥ 1)"),
        (0.30, math.nan, "8 levels: the narrowest window collapses the levels (σ/Δ ≥ 1)"),
    ],
)
def test_window_verdict_fails_planted_counter_examples(narrow, collapse, failing):
    from memlearn.experiments.window import window_checks

    checks, _, _, _ = window_checks(_window(8, narrow, 0.97, collapse), (8,))
    assert checks[failing] is False and not _reproduced(checks)


# -- retention --------------------------------------------------------------------------------


def _baked(strategy: str, before: float, after: float, errors: float, k: float = 1.0) -> dict:
    r = _result(before, strategy=strategy, level_error_rate_after_bake=errors, drift_factor=k)
    finals = [row[-1] for row in r["accuracy"]]
    r["accuracy_after_bake"] = [f - (before - after) for f in finals]
    r["final_accuracy_after_bake"] = after
    r["retained"] = after / r["final_accuracy"]
    return r


def _bake_sweep(*points: tuple[float, tuple, tuple]) -> list[dict]:
    """(k, iterative SET's (before, after, errors), hybrid's) per point of the drift sweep."""
    return [
        _baked(s, *values, k=k)
        for k, iset, hybrid in points
        for s, values in (("iterative-set", iset), ("hybrid", hybrid))
    ]


PUBLISHED_BAKE = (1.0, (0.96, 0.95, 0.05), (0.96, 0.958, 0.03))
STRONG_BAKE = (16.0, (0.96, 0.60, 0.60), (0.96, 0.85, 0.40))


def test_retention_verdict_passes_hybrid_drifting_less():
    from memlearn.experiments.retention import retention_checks

    checks = retention_checks(_bake_sweep(PUBLISHED_BAKE, STRONG_BAKE))
    assert _reproduced(checks) and len(checks) == 4


@pytest.mark.parametrize(
    ("points", "failing"),
    [
        # hybrid loses as much where the bake matters
        ((PUBLISHED_BAKE, (16.0, (0.96, 0.60, 0.6), (0.96, 0.60, 0.4))), "wherever"),
        # hybrid loses more at one point of the sweep that matters (the published one)
        (((1.0, (0.96, 0.95, 0.05), (0.96, 0.93, 0.03)), STRONG_BAKE), "wherever"),
        # the sweep never reaches a bake that costs 5 points: the regime is not reached
        ((PUBLISHED_BAKE, (16.0, (0.96, 0.93, 0.2), (0.96, 0.95, 0.1))), "strongest"),
        # the published bake alone: nothing reaches the regime
        ((PUBLISHED_BAKE,), "strongest"),
        # hybrid keeps < 90 % at the published bake
        (((1.0, (0.96, 0.50, 0.3), (0.96, 0.80, 0.01)), STRONG_BAKE), "keeps"),
        # more level errors for hybrid after the published bake
        (((1.0, (0.96, 0.95, 0.01), (0.96, 0.958, 0.03)), STRONG_BAKE), "level errors"),
        # no drift at all: nothing to tell apart
        (
            (
                (1.0, (0.96, 0.96, 0.0), (0.96, 0.96, 0.0)),
                (16.0, (0.96, 0.96, 0.0), (0.96, 0.96, 0.0)),
            ),
            "strongest",
        ),
    ],
)
def test_retention_verdict_fails_planted_counter_examples(points, failing):
    from memlearn.experiments.retention import retention_checks

    checks = retention_checks(_bake_sweep(*points))
    assert not _reproduced(checks)
    assert [ok for name, ok in checks.items() if failing in name] == [False]


def test_retention_verdict_without_hybrid_does_not_reproduce():
    from memlearn.experiments.retention import retention_checks

    assert not _reproduced(retention_checks([_baked("iterative-set", 0.96, 0.95, 0.0)]))


# -- curves -----------------------------------------------------------------------------------


def test_curves_verdict_passes_a_rise_from_chance():
    from memlearn.experiments.curves import curves_checks

    checks = curves_checks([_result(0.96, strategy="hybrid")], 0.97, ways=5)
    assert _reproduced(checks) and len(checks) == 2


@pytest.mark.parametrize(("start", "final"), [(0.5, 0.96), (0.2, 0.5), (0.05, 0.96)])
def test_curves_verdict_fails_planted_counter_examples(start, final):
    from memlearn.experiments.curves import curves_checks

    checks = curves_checks([_result(final, start=start, strategy="hybrid")], 0.97, ways=5)
    assert not _reproduced(checks)


# -- energy -----------------------------------------------------------------------------------


def _energy(array_j: float, system_j: float | None) -> dict:
    system = None if system_j is None else {"array": array_j, "total": system_j}
    return {
        "strategy": "hybrid",
        "levels": 8,
        "energy_per_adaptation_j": array_j,
        "system_energy_j": system,
    }


def test_energy_verdict_passes_a_system_figure_below_the_bound():
    from memlearn.experiments.energy import energy_checks

    checks, observed = energy_checks([_energy(70e-9, 0.6e-6), _energy(90e-9, 2e-6)])
    assert _reproduced(checks) and "2 µJ" in observed


@pytest.mark.parametrize(
    "points",
    [
        [_energy(70e-9, 0.6e-6), _energy(90e-9, 20e-6)],  # one point above the bound
        [_energy(70e-9, 12e-6)],  # the arrays far below, the system above: like with like
        [_energy(70e-9, None)],  # no system estimate: nothing to compare with
        [],
    ],
)
def test_energy_verdict_fails_planted_counter_examples(points):
    from memlearn.experiments.energy import energy_checks

    checks, _ = energy_checks(points)
    assert not _reproduced(checks)


# -- strategies -------------------------------------------------------------------------------


def _strategy(errors: float, pulses: float, low_sigma: float, final: float) -> dict:
    return _result(
        final,
        level_error_rate=errors,
        healthy_error_rate=errors,
        sigma_over_spacing=0.1 + errors,  # overlap grows with the level errors
        pulses_per_cell=pulses,
        low_half_sigma_us=low_sigma,
    )


def _strategies(**changes: tuple[float, float, float, float]) -> dict[str, dict]:
    rows = {
        "single-set": (0.25, 1.0, 6.0, 0.95),
        "iterative-set": (0.02, 8.0, 3.0, 0.96),
        "iterative-reset": (0.015, 9.0, 2.0, 0.96),
        "hybrid": (0.01, 7.0, 2.5, 0.965),
        **changes,
    }
    return {s: _strategy(*v) for s, v in rows.items()}


def test_strategies_verdict_passes_the_published_ordering():
    from memlearn.experiments.strategies import _checks

    checks, _ = _checks(_strategies())
    assert _reproduced(checks)


@pytest.mark.parametrize(
    "changes",
    [
        {"hybrid": (0.03, 7.0, 2.5, 0.965)},  # hybrid not the most precise
        {"single-set": (0.01, 1.0, 6.0, 0.95)},  # single-shot precise
        {"iterative-reset": (0.015, 9.0, 4.0, 0.96)},  # RESET not tighter at low G
        {"hybrid": (0.01, 7.0, 2.5, 0.80)},  # hybrid learns clearly worse
    ],
)
def test_strategies_verdict_fails_planted_counter_examples(changes):
    from memlearn.experiments.strategies import _checks

    checks, _ = _checks(_strategies(**changes))
    assert not _reproduced(checks)


def test_retention_attribution_names_each_strategy_s_weight_noise():
    from memlearn.experiments.retention import bake_attribution

    rows = []
    for s, e in (("iterative-set", 0.3), ("hybrid", 0.04)):
        r = _baked(s, 0.96, 0.955, e, k=4.0)
        r.update(level_error_rate=0.02, error_over_window=0.02, error_over_window_after_bake=e / 5)
        r.update(
            lowest_sigma_after_bake=e * 1e-4,
            lowest_offset_after_bake=1e-6,
            stability_factor_rms=1.6,
        )
        rows.append(r)
    text = bake_attribution(rows)
    assert "iterative-set (k = 4): level errors 2.0 % → 30.0 %, rms error 2.0 % → 6.0 %" in text
    assert "lowest level 30.0 µS σ, 1.0 µS off after the bake" in text
    assert "rms h iterative-set 1.60, hybrid 1.60" in text
    assert "hybrid" in text and text.startswith("Attribution")


def test_strategies_attribution_names_the_mechanism_that_lets_hybrid_lead():
    from memlearn.experiments.strategies import stability_summary

    def row(mechanism: str, strategy: str, errors: float) -> dict:
        return {"mechanism": mechanism, "strategy": strategy, "level_error_rate": errors,
                "healthy_error_rate": errors, "sigma_over_spacing": 0.1 + errors}  # fmt: skip

    rows = [row("law A", "iterative-reset", 0.014), row("law A", "hybrid", 0.006)]
    rows += [row("law B", "iterative-reset", 0.006), row("law B", "hybrid", 0.012)]
    text = stability_summary(rows)
    assert "least σ/Δ with the law A switched off;" in text
    assert "without the law B: fewest level errors iterative-reset (0.6 %, hybrid 1.2 %)" in text
    text = stability_summary(rows[2:])
    assert "with no single one switched off" in text
