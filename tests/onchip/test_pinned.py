"""Seeded adaptations on simulated chips give exactly the figures the simulator gave before its
hot paths were rewritten (analog product, cached per-cell terms): a rewrite that keeps the
maths must keep every bit."""

from __future__ import annotations

import pytest
from test_loop import LRS, synthetic_tasks

from memlearn.chip.base import ArraySpec, ChipLayout
from memlearn.chip.simulated import SimulatedChip
from memlearn.meta.inner import HeadTasks
from memlearn.onchip.config import AdaptConfig
from memlearn.onchip.loop import adapt_on_chip

LAYOUT = ChipLayout((ArraySpec("fc1", 12, 8), ArraySpec("fc2", 8, 5)))


def fingerprint(policy: str, strategy: str, seed: int, chips: int, tasks: int) -> list[float]:
    """Sums of the per-task curves, counters and energies of one seeded run."""
    sx, sy, qx, qy, weights = synthetic_tasks(tasks, seed=seed)
    chip = SimulatedChip(chips, preset="hfo2-mlc", layout=LAYOUT, levels=8, seed=seed)
    config = AdaptConfig(steps=3, policy=policy, strategy=strategy, seed=seed)
    r = adapt_on_chip(chip, HeadTasks(sx, sy, qx, qy), weights, LRS, config)
    energy = sum(float(e.sum()) for e in r.energy_j.values())
    deploy = sum(float(e.sum()) for e in r.deploy_energy_j.values())
    return [
        float(r.accuracy.double().sum()),
        float(r.loss.double().sum()),
        float(r.pulses.sum()),
        float(r.verify_reads.sum()),
        energy,
        deploy,
    ]


# Recorded after the rewrite of the hot paths kept every bit, then re-recorded once when the
# device maths changed on purpose (per-cell adaptive controller, stability from how a state was
# made, read noise as its source defines it).
PINNED = {
    "accumulate/hybrid/0/4/4": [
        6.766666740179062,
        21.603664934635162,
        2727.0,
        3120.0,
        3.4103240449927935e-08,
        4.8610051632362594e-08,
    ],
    "manhattan/hybrid/3/2/2": [
        2.3333334028720856,
        12.259337425231934,
        316.0,
        0.0,
        8.633525824591412e-09,
        2.986032125772489e-08,
    ],
    "stochastic/hybrid/1/3/7": [
        8.733333475887775,
        55.135732889175415,
        4531.0,
        5167.0,
        6.159533854981861e-08,
        5.395590221748264e-08,
    ],
    "verify/iterative-set/2/2/2": [
        4.533333331346512,
        11.352843225002289,
        1410.0,
        1686.0,
        1.9449495325049582e-08,
        1.7971986390622266e-08,
    ],
}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_seeded_runs_keep_every_bit(case: str) -> None:
    policy, strategy, seed, chips, tasks = case.split("/")
    got = fingerprint(policy, strategy, int(seed), int(chips), int(tasks))
    assert got == PINNED[case]
