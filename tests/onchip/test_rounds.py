"""Chips simulated in rounds within a memory budget (memlearn.onchip.rounds, .memory)."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import pytest
import torch

from memlearn.onchip import features, rounds
from memlearn.onchip.deploy import DeployConfig, prepare, sample_features, sample_tasks
from memlearn.onchip.memory import format_bytes, parse_memory, peak_rss

MiB = 1024**2


def test_sizes_parse_and_bad_sizes_are_named():
    assert parse_memory("4G") == 4 * 1024**3
    assert parse_memory("512MiB") == parse_memory("512m") == 512 * MiB
    assert parse_memory("1.5G") == 3 * 512 * MiB
    assert parse_memory(100 * MiB) == 100 * MiB
    for bad, words in (("4X", "suffix K, M, G or T"), ("", "suffix"), ("1K", "at least 64M")):
        with pytest.raises(ValueError, match=words):
            parse_memory(bad)
    assert format_bytes(3 * 1024**3) == "3.0G" and peak_rss() > 0


def test_group_seeds_keep_the_run_seed_first_and_differ():
    seeds = [rounds.group_seed(7, g) for g in range(200)]
    assert seeds[0] == 7 and len(set(seeds)) == 200 and all(0 <= s < 2**62 for s in seeds)
    assert rounds.group_seed(8, 1) != rounds.group_seed(7, 1)


def test_plan_splits_chips_and_tasks_within_the_budget(monkeypatch):
    config = DeployConfig(tasks=25, chips=10, max_memory="1G")
    held = 100 * MiB
    per_chip = rounds.chip_bytes(config, 5)
    one = rounds.plan(config, 5, held=held)
    assert one.groups == ((10, 25),)  # everything fits: one group, as without rounds
    budget = held + rounds.FIXED_BYTES + 4 * per_chip + 1
    tight = rounds.plan(dataclasses.replace(config, max_memory=budget), 5, held=held)
    assert [c for c, _ in tight.groups] == [4, 4, 2]
    assert sum(t for _, t in tight.groups) == 25 and all(t >= c for c, t in tight.groups)
    monkeypatch.setattr(rounds, "ROUND_CHIPS", 3)
    assert [c for c, _ in rounds.plan(config, 5, held=held).groups] == [3, 3, 3, 1]
    small = dataclasses.replace(config, max_memory=held + rounds.FIXED_BYTES)
    with pytest.raises(ValueError, match="cannot hold a round of one chip.*give at least"):
        rounds.plan(small, 5, held=held)


@pytest.mark.parametrize("copies", [0, 2])
def test_features_sampled_in_parts_are_those_of_the_whole_batch(shared_data, monkeypatch, copies):
    """Tasks sampled as features (each distinct query image through the extractor once, the
    query images of all tasks never held) are bit for bit the features of the same tasks
    sampled as one batch of images."""
    monkeypatch.setattr(features, "FEATURE_CHUNK", 16)  # the whole batch and the gathered
    # queries run in chunks of different images
    config = DeployConfig(tasks=40, support_copies=copies, seed=5, root=shared_data)
    net = prepare(dataclasses.replace(config, tasks=1)).net
    split, whole = sample_tasks(config, 5)
    want = features.head_tasks(net, whole)
    got_split, got = sample_features(config, net)
    assert got_split == split and got.support_x.shape == (40, 5 * (1 + copies), 32)
    for name in ("support_x", "support_y", "query_x", "query_y"):
        assert getattr(got, name).dtype == getattr(want, name).dtype, name
        assert torch.equal(getattr(got, name), getattr(want, name)), name


def _run(config: DeployConfig):
    return rounds.adapt_in_rounds(config)


FIELDS = ("accuracy", "loss", "cells_written", "set_pulses", "verify_reads", "software_accuracy")


def test_rounds_are_transparent_and_the_budget_does_not_change_results(shared_data, monkeypatch):
    """A run cut into groups gives each task the results of its group run alone with the
    group's seed; any budget that holds a group gives the same per-task results."""
    base = DeployConfig(tasks=6, chips=6, steps=1, weight_max="checkpoint", root=shared_data)
    monkeypatch.setattr(rounds, "ROUND_CHIPS", 3)
    roomy = _run(dataclasses.replace(base, max_memory="16G"))
    held = peak_rss()
    per_chip = rounds.chip_bytes(base, 5)
    tight = held + rounds.FIXED_BYTES + 3 * per_chip + per_chip // 2  # holds 3 chips, not 4
    chunked = _run(dataclasses.replace(base, max_memory=tight))
    assert roomy.accuracy.shape == (6, 2)
    for name in FIELDS:
        assert torch.equal(getattr(roomy, name), getattr(chunked, name)), name
    for c in roomy.energy_j:
        assert torch.equal(roomy.energy_j[c], chunked.energy_j[c])
    # group 1 is a run of its own, seeded by group_seed
    alone = _run(dataclasses.replace(base, chips=3, tasks=3, seed=rounds.group_seed(0, 1)))
    first = _run(dataclasses.replace(base, chips=3, tasks=3))
    for name in FIELDS:
        assert torch.equal(getattr(roomy, name)[3:], getattr(alone, name)), name
        assert torch.equal(getattr(roomy, name)[:3], getattr(first, name)), name


_MEASURE = """
import json, sys
from memlearn.onchip import rounds
from memlearn.onchip import run as onchip_run
from memlearn.onchip.deploy import DeployConfig, prepare, sample_features, sample_tasks
from memlearn.onchip.memory import peak_rss
config = DeployConfig(tasks=150, chips=150, steps=1, weight_max="checkpoint", root=sys.argv[1],
                      max_memory=sys.argv[2])
plan = rounds.plan_run(config)
rounds.adapt_in_rounds(config, plan)
print(json.dumps({"peak": peak_rss(), "groups": len(plan.groups)}))
"""


def test_a_small_budget_is_respected(shared_data):
    """In a fresh process, 150 chips under a budget that holds a few dozen run in several
    rounds and the measured peak stays within the budget."""
    budget = 560 * MiB
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(shared_data), str(budget)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["groups"] > 1
    assert 0 < got["peak"] <= budget
