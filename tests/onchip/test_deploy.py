"""DeployConfig checks every option on creation; build_chip builds, repairs and closes chips."""

from __future__ import annotations

import pytest
import torch

from memlearn.chip.base import reference_layout
from memlearn.chip.layout import output_layout
from memlearn.chip.repair import RepairedChip
from memlearn.chip.server import ChipServer
from memlearn.chip.simulated import SimulatedChip
from memlearn.errors import MemlearnError
from memlearn.onchip.deploy import DeployConfig, build_chip, repaired_chip
from memlearn.onchip.deploy_config import DEFAULT_CHIPS

LAYOUT = reference_layout()


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"tasks": 0}, "tasks must be >= 1, got 0"),
        ({"chips": 0}, "chips (chips simulated at once) must be >= 1"),
        ({"steps": -1}, "steps must be >= 0"),
        ({"ways": 1}, "ways must be >= 2"),
        ({"shots": 6}, "shots must be in [1, 5]"),
        ({"levels": 1}, "levels must be in [2, 64], got 1"),
        ({"support_copies": 65}, "support_copies must be in [0, 64]"),
        ({"spare_pairs": -2}, "spare_pairs must be >= 0"),
        ({"strategy": "magic"}, "unknown strategy 'magic'; allowed: single-set"),
        ({"policy": "sgd"}, "unknown policy 'sgd'"),
        ({"weight_max": "largest"}, "unknown weight_max 'largest'"),
        ({"preset": "no-such-preset"}, "no-such-preset"),
        ({"bake_hours": -1.0}, "bake_hours must be >= 0"),
        ({"bake_celsius": 500.0}, "bake_celsius must be in (-273.15, 400]"),
        ({"bake_hours": 1.0, "tasks": 8, "chips": 4}, "each task needs its own chip"),
        ({"bench": "localhost"}, "bench must be HOST:PORT"),
        ({"bench": "h:99999"}, "bench must be HOST:PORT"),
    ],
)
def test_bad_options_fail_on_creation(options, words):
    with pytest.raises((ValueError, MemlearnError)) as info:
        DeployConfig(**options)
    assert words in str(info.value)


def test_chips_default_and_bound():
    assert DeployConfig(tasks=500).n_chips == DEFAULT_CHIPS
    assert DeployConfig(tasks=7, chips=50).n_chips == 7
    assert DeployConfig(bench="h:1", tasks=8, bake_hours=1.0).bench == "h:1"  # the bench decides
    assert (
        DeployConfig().preset_name == "hfo2-mlc"
        and DeployConfig(preset="oxram-slc").preset_name == "oxram-slc"
    )


def test_build_chip_repairs_a_simulated_chip_with_the_tile_spares():
    chip = build_chip(DeployConfig(tasks=3, seed=2), LAYOUT, 8, spare_pairs=11)
    assert isinstance(chip, RepairedChip) and chip.n_chips == 3
    assert chip.layout == LAYOUT and chip.chip.layout == output_layout(LAYOUT, 11)
    same = SimulatedChip(3, layout=output_layout(LAYOUT, 11), levels=8, seed=2)
    assert torch.equal(chip.chip.true_conductances("fc1")[0], same.true_conductances("fc1")[0])
    plain = build_chip(DeployConfig(tasks=3, seed=2), LAYOUT, 8, spare_pairs=0)
    assert isinstance(plain, SimulatedChip) and plain.layout == LAYOUT


class _Closable(SimulatedChip):
    closed = 0

    def close(self) -> None:
        self.closed += 1


def test_a_failed_repair_closes_the_chip():
    made = []

    def make(physical):
        made.append(_Closable(1, layout=physical))
        return made[-1]

    with pytest.raises(Exception, match="hybird"):
        repaired_chip(make, LAYOUT, 2, strategy="hybird")
    assert made[0].closed == 1


def test_a_bench_that_contradicts_an_option_is_refused_and_closed():
    served = SimulatedChip(2, layout=output_layout(LAYOUT, None), seed=1)
    with ChipServer(served) as server:
        address = f"{server.address[0]}:{server.address[1]}"
        chip = build_chip(DeployConfig(bench=address, chips=2), LAYOUT, 8, spare_pairs=11)
        with chip:
            assert isinstance(chip, RepairedChip) and chip.n_chips == 2
            assert torch.equal(chip.levels, served.levels)
        for options, words in (
            ({"chips": 3}, "chips 3 differs from the bench's 2"),
            ({"levels": 4}, "levels 4 differs from the bench's 8"),
        ):
            with pytest.raises(ValueError, match=words):
                build_chip(DeployConfig(bench=address, **options), LAYOUT, 8, spare_pairs=11)
        with pytest.raises(ValueError, match="do not fit the model's"):
            build_chip(DeployConfig(bench=address), LAYOUT, 8, spare_pairs=0)
