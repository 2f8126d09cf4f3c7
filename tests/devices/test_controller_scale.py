"""The pulse-level controller on a few thousand cells (every strategy: compaction, stuck cells,
trims, strong SETs, a second program over written cells) gives exactly the outcome it gave
before its hot path was rewritten for speed: per-chip pulse counts exactly, conductance and
energy sums to a relative 1e-13 (a changed last bit of one cell moves a sum by about 1e-11)."""

from __future__ import annotations

import pytest
import torch

from memlearn.crossbar import CrossbarArray, DifferentialMapping

STRATEGIES_ = ("hybrid", "iterative-set", "iterative-reset", "single-set")


def fingerprint(strategy: str) -> tuple[list[int], list[float]]:
    """Per-chip counts and sums of two seeded programs of 3 chips x 32 x 32 pairs."""
    arr = CrossbarArray("hfo2-mlc", 3, 32, 32, generator=torch.Generator().manual_seed(7))
    w = torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(8))
    mapping = DifferentialMapping.from_weights(w, arr.preset.levels(8))
    w2 = w + 0.3 * torch.randn(3, 32, 32, generator=torch.Generator().manual_seed(9))
    counts: list[int] = []
    sums: list[float] = []
    for weights in (w, w2):
        rep = arr.program(*mapping.to_conductance(weights), strategy)
        for c in (rep.set_pulses, rep.reset_pulses, rep.verify_reads, rep.failed_cells):
            counts += [int(x) for x in c.tolist()]
        sums.append(float(rep.energy_j.sum()))
    g = arr.cells.g.double()
    position = torch.arange(g.numel(), dtype=torch.float64).view(g.shape)
    sums += [float(g.sum()), float((g * position).sum())]
    sums += [float(arr.cells.set_icc.double().sum()), float(arr.cells.reset_depth.double().sum())]
    return counts, sums


# recorded with the controller before its rewrite for speed (same maths, fewer tensor ops)
PINNED: dict[str, tuple[list[int], list[float]]] = {
    "hybrid": (
        [
            5553,
            5423,
            5812,
            5996,
            6105,
            6192,
            13597,
            13576,
            14052,
            8,
            12,
            15,
            1176,
            1124,
            1180,
            2282,
            2064,
            2374,
            3969,
            3636,
            4050,
            1,
            4,
            3,
        ],
        [
            2.3401107241403409e-07,
            9.450839244529163e-08,
            0.1825669901091942,
            562.8027040965154,
            0.07995629054994424,
            3464.154721075465,
        ],
    ),
    "iterative-set": (
        [
            5916,
            5529,
            6101,
            265,
            328,
            411,
            8229,
            7905,
            8560,
            8,
            12,
            15,
            2190,
            1904,
            1990,
            357,
            330,
            416,
            3058,
            2682,
            2902,
            1,
            4,
            3,
        ],
        [
            1.3508866513064176e-07,
            7.040081330400572e-08,
            0.15813490874927538,
            487.72639332123083,
            0.05958244107705468,
            2399.8121032714844,
        ],
    ),
    "iterative-reset": (
        [
            2473,
            2521,
            2688,
            8157,
            7991,
            8295,
            12678,
            12560,
            13031,
            7,
            11,
            15,
            368,
            433,
            346,
            3277,
            2754,
            3195,
            4156,
            3635,
            4037,
            1,
            4,
            3,
        ],
        [
            4.7610610369040914e-07,
            1.1393242536732184e-07,
            0.1800064186389818,
            554.5600106488661,
            0.4915199875831604,
            14804.93597754836,
        ],
    ),
    "single-set": (
        [
            2048,
            2048,
            2048,
            0,
            4,
            3,
            0,
            0,
            0,
            676,
            669,
            709,
            511,
            448,
            496,
            213,
            187,
            223,
            0,
            0,
            0,
            254,
            203,
            245,
        ],
        [
            1.211534195796199e-08,
            1.5982001546612987e-08,
            0.16709617388306697,
            515.503761578698,
            0.06963612206618564,
            0.0,
        ],
    ),
}


@pytest.mark.parametrize("strategy", STRATEGIES_)
def test_large_program_keeps_every_bit(strategy: str) -> None:
    counts, sums = fingerprint(strategy)
    want_counts, want_sums = PINNED[strategy]
    assert counts == want_counts
    assert sums == pytest.approx(want_sums, rel=1e-13)


def test_large_masks_take_the_same_positions_by_nonzero(monkeypatch: pytest.MonkeyPatch) -> None:
    """Masks from PARALLEL_NONZERO cells on use ``nonzero`` (threaded), smaller ones
    ``masked_select``: both give the same positions, so the same programs."""
    from memlearn.devices import controller_state

    monkeypatch.setattr(controller_state, "PARALLEL_NONZERO", 1)
    every_mask_by_nonzero = fingerprint("hybrid")
    monkeypatch.setattr(controller_state, "PARALLEL_NONZERO", 1 << 62)
    every_mask_by_select = fingerprint("hybrid")
    assert every_mask_by_nonzero == every_mask_by_select
