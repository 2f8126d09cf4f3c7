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


# Recorded with the simulator before the rewrite (same seeds, same code paths otherwise).
PINNED = {
    "accumulate/hybrid/0/4/4": [
        6.800000101327896,
        22.369692027568817,
        2828.0,
        3233.0,
        3.373613811528606e-08,
        4.859674561374927e-08,
    ],
    "stochastic/hybrid/1/3/7": [
        8.93333350121975,
        56.781172037124634,
        4701.0,
        5362.0,
        5.933165786887323e-08,
        5.4628213779807366e-08,
    ],
    "verify/iterative-set/2/2/2": [
        4.366666734218597,
        11.268799304962158,
        1680.0,
        1942.0,
        2.2203425056877002e-08,
        1.9044819527403584e-08,
    ],
    "manhattan/hybrid/3/2/2": [
        2.43333338201046,
        12.770569682121277,
        324.0,
        0.0,
        8.775233915816333e-09,
        2.9443386004041755e-08,
    ],
}


@pytest.mark.parametrize("case", sorted(PINNED))
def test_seeded_runs_keep_every_bit(case: str) -> None:
    policy, strategy, seed, chips, tasks = case.split("/")
    got = fingerprint(policy, strategy, int(seed), int(chips), int(tasks))
    assert got == PINNED[case]
