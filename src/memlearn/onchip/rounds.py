"""Runs larger than memory: a deployment's chips simulated in rounds within a memory budget.

The chips of a run are cut into *groups* of at most :data:`ROUND_CHIPS` chips (fewer when the
budget, :attr:`~memlearn.onchip.deploy.DeployConfig.max_memory`, holds fewer), simulated one
group after another.  Each group is a deployment of its own, seeded by :func:`group_seed`
(group 0 by the run's seed, so a run of at most one group is exactly the run without
groups): its tasks (a share of the run's, in proportion to its chips), its chips and its
update draws are drawn from that seed alone, so a group's results do not depend on how many
groups there are or on the budget, as long as the budget holds a group of
:data:`ROUND_CHIPS` chips.  The model, the full-scale weight and the level conductances are
resolved once, by group 0.  Per-task results are concatenated in group order.  A group's
tasks are sampled as features (:func:`~memlearn.onchip.deploy.sample_features`: the same
features, bit for bit, each distinct query image of the split through the extractor once), so
a round holds its tasks' features through the loop, not their images.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from memlearn.onchip.deploy import (
    DeployConfig,
    Deployment,
    build_chip,
    deploy,
    sample_features,
)
from memlearn.onchip.loop import AdaptResult, merge_results
from memlearn.onchip.memory import default_budget, format_bytes, peak_rss, return_freed_memory
from memlearn.onchip.run import QUERIES, run_adaptation

ROUND_CHIPS = 1000  # [E] chips per group: large enough that per-op overhead is amortised
# [E] bytes a chip adds to a round at its peak: the support images of its tasks (with their
# distorted copies, 28x28 float, each held about three times while sampled and distorted; the
# query images are never gathered per task: their features are gathered from those of the
# split's distinct images), the features of all their images (up to 64 float per image, with
# room for the index of each query image), and its cells and the loop's temporaries.
BYTES_PER_IMAGE = 3 * 4 * 28 * 28
BYTES_PER_FEATURES = 4 * 64
BYTES_PER_CHIP = 400 * 1024
# [E] bytes a round takes whatever its size: the split's images while tasks are sampled, the
# features of its distinct images, one chunk of images (features.FEATURE_CHUNK) and the
# extractor's activations on it, the model.
FIXED_BYTES = 256 * 1024**2
_SEED_MIX = 0x9E3779B97F4A7C15  # odd 64-bit constant (golden ratio) spreading group seeds


def group_seed(seed: int, group: int) -> int:
    """Seed of group ``group`` of a run seeded ``seed``: ``seed`` itself for group 0, else a
    well-mixed non-negative 62-bit number determined by both."""
    if group == 0:
        return seed
    x = (seed * _SEED_MIX + group * 0xBF58476D1CE4E5B9) % 2**64
    x ^= x >> 31
    x = (x * 0x94D049BB133111EB) % 2**64
    return (x ^ (x >> 29)) % 2**62


@dataclass(frozen=True)
class Plan:
    """How a run is split: ``groups`` as ``(chips, tasks)`` each; ``budget`` (bytes) and the
    estimated ``per_chip`` bytes it was sized with."""

    groups: tuple[tuple[int, int], ...]
    budget: int
    per_chip: int

    @property
    def chips_per_round(self) -> int:
        return self.groups[0][0]

    def evaluations(self, steps: int) -> int:
        """Query evaluations of the whole run (a progress bar's total)."""
        return sum(-(-tasks // chips) * (steps + 1) for chips, tasks in self.groups)


def chip_bytes(config: DeployConfig, ways: int) -> int:
    """Estimated peak bytes one chip of ``config`` adds to a round: the support images of its
    tasks (``tasks / chips`` of them) with their copies, as sampled, the features of all their
    images, and its cells and loop temporaries."""
    support = ways * config.shots * (1 + config.support_copies)
    images = support + ways * QUERIES
    tasks_per_chip = -(-config.tasks // config.n_chips)
    per_task = support * BYTES_PER_IMAGE + images * BYTES_PER_FEATURES
    return tasks_per_chip * per_task + BYTES_PER_CHIP


def plan(config: DeployConfig, ways: int, held: int | None = None) -> Plan:
    """Groups of a run within ``config.max_memory`` (default :func:`~memlearn.onchip.memory.
    default_budget`), the process holding ``held`` bytes already (default: its peak so far).
    ``ValueError`` when the budget cannot hold even one chip's round."""
    budget = config.max_memory if config.max_memory is not None else default_budget()
    held = (peak_rss() or 0) if held is None else held
    per_chip = chip_bytes(config, ways)
    if config.bench is not None:  # a bench is its own chips: one group, its size
        return Plan(((config.n_chips, config.tasks),), budget, per_chip)
    fits = (budget - held - FIXED_BYTES) // per_chip
    if fits < 1:
        need = held + FIXED_BYTES + per_chip
        raise ValueError(
            f"max_memory {format_bytes(budget)} cannot hold a round of one chip: the process "
            f"holds {format_bytes(held)}, a round needs about {format_bytes(FIXED_BYTES)} and a "
            f"chip about {format_bytes(per_chip)}; give at least {format_bytes(need)}"
        )
    n, tasks = config.n_chips, config.tasks
    size = min(n, ROUND_CHIPS, int(fits))
    bounds = list(range(0, n, size)) + [n]
    groups = tuple(
        (stop - start, tasks * stop // n - tasks * start // n)
        for start, stop in zip(bounds[:-1], bounds[1:], strict=True)
    )
    return Plan(groups, budget, per_chip)


def group_deployments(first: Deployment, plan_: Plan) -> Iterator[Deployment]:
    """The deployments of groups 1.. of a run whose group 0 is ``first``: each samples its
    tasks and builds its chip from its own seed; model and full scale are ``first``'s."""
    for g, (chips, tasks) in enumerate(plan_.groups[1:], start=1):
        config = dataclasses.replace(
            first.config, chips=chips, tasks=tasks, seed=group_seed(first.config.seed, g)
        )
        split, feats = sample_features(config, first.net)
        d = dataclasses.replace(first, config=config, split=split, tasks=feats, chip=None)
        d.chip = build_chip(config, first.layout, first.levels, first.spare_pairs)
        yield d
        del d, feats  # free this group's tasks before the next group samples its own
        return_freed_memory()


def plan_run(config: DeployConfig) -> Plan:
    """:func:`plan` for ``config``, with its ``ways`` or, when ``None``, the model's."""
    ways = config.ways
    if ways is None:
        from memlearn.meta.checkpoint import load_checkpoint

        ways = int(load_checkpoint(config.checkpoint)[0].fc2.weight.shape[0])
    return plan(config, ways)


def adapt_in_rounds(
    config: DeployConfig,
    plan_: Plan | None = None,
    progress: Callable[[int], object] | None = None,
    on_first: Callable[[Deployment], None] | None = None,
) -> AdaptResult:
    """Adapt ``config``'s tasks on its chips, group after group as ``plan_`` (default
    :func:`plan_run`) says; ``on_first(deployment)`` sees group 0's deployment before its chip
    is closed; ``progress(1)`` after every query evaluation.  Returns the merged result.  Freed
    memory goes back to the system from the start (:func:`~memlearn.onchip.memory.
    return_freed_memory`)."""
    plan_ = plan_ or plan_run(config)
    return_freed_memory()  # each round's temporaries go back to the system, not to the heap
    chips, tasks = plan_.groups[0]
    if len(plan_.groups) > 1:
        config = dataclasses.replace(config, chips=chips, tasks=tasks)
    results: list[AdaptResult] = []
    with deploy(config, features=True) as first:
        results.append(_adapt(first, progress))
        if on_first is not None:
            on_first(first)
    first.tasks = None  # type: ignore[assignment]  # the next groups sample their own
    for d in group_deployments(first, plan_):
        with d:
            results.append(_adapt(d, progress))
        del d
    return merge_results(results)


def _adapt(d: Deployment, progress: Callable[[int], object] | None) -> AdaptResult:
    assert d.chip is not None
    with torch.no_grad():
        return run_adaptation(d.chip, d.net, d.inner_lrs, d.tasks, d.adapt_config(), progress)
