"""Input spikes per image against the threshold and the presentation limit (ideal cells)."""

from __future__ import annotations

import pytest
import torch

from memlearn.errors import MemlearnError
from memlearn.experiments.spirit_spikes import Variant, sensitivity
from memlearn.snn.evaluate import ideal_synapses
from memlearn.snn.neuron import PRESENTATION_PERIODS, NeuronConfig
from memlearn.snn.simulate import run
from memlearn.snn.train import load_checkpoint


@pytest.fixture(scope="module")
def images(shared_data):
    from memlearn.data.mnist import load_mnist
    from memlearn.snn.model import downscale

    test = load_mnist("test", shared_data)
    return downscale(test.images[:60]), test.labels[:60]


def test_default_presentation_is_n2d2s_100_white_pixel_periods() -> None:
    cfg = NeuronConfig()
    assert cfg.t_max_s * cfg.rate_hz == pytest.approx(PRESENTATION_PERIODS)
    assert PRESENTATION_PERIODS == 100 and cfg.t_max_s == 1e-3  # the former default, unchanged


def test_sensitivity_rows(images) -> None:
    x, y = images
    w, _ = load_checkpoint()
    variants = (Variant("base"), Variant("short", periods=10), Variant("n2d2", 1.0),
                Variant("low", 0.4))  # fmt: skip
    base, short, n2d2, low = sensitivity(x, w, y, variants)
    # the base variant is the simulation's default run, image for image
    ref = run(x, ideal_synapses("oxram-slc", w), NeuronConfig(), torch.Generator().manual_seed(0))
    assert base["per_image"] == ref.input_spikes[0].double().tolist()
    # a shorter presentation is a prefix of the longer one: never more spikes, fewer stop
    b, s = torch.tensor(base["per_image"]), torch.tensor(short["per_image"])
    assert bool((s <= b).all()) and bool((s < b).any())
    assert short["stopped_fraction"] < base["stopped_fraction"]
    # a higher threshold needs more input spikes for the same ΔS lead, a lower one fewer
    means = [r["input_spikes_per_image"] for r in (low, base, n2d2)]
    assert means == sorted(means) and means[0] < means[2]
    assert base["input_spikes_per_image_median"] <= base["input_spikes_per_image_p90"]


def test_sensitivity_refuses_bad_input(images) -> None:
    x, y = images
    w, _ = load_checkpoint()
    with pytest.raises(MemlearnError, match="labels"):
        sensitivity(x, w, y[:5])
    with pytest.raises(MemlearnError, match="periods must be > 0"):
        sensitivity(x, w, y, (Variant("none", periods=0),))


def test_variants_set_n2d2s_constants(images) -> None:
    from memlearn.experiments.spirit_spikes import N2D2_RATE_FLOOR, VARIANTS

    n2d2 = {v.name: v for v in VARIANTS}["N2D2 spike test"]
    cfg = n2d2.config(10)
    assert (cfg.rate_floor, cfg.refractory_s, cfg.rail_v) == (N2D2_RATE_FLOOR, 0.0, float("inf"))
    assert n2d2.threshold_fraction == 1.0 and cfg.t_max_s * cfg.rate_hz == pytest.approx(100)
    assert VARIANTS[0].config(10) == NeuronConfig()  # the simulation's own default
    x, y = images
    w, _ = load_checkpoint()
    with pytest.raises(MemlearnError, match="rate_floor"):
        sensitivity(x, w, y, (Variant("base"), Variant("bad", rate_floor=2.0)))


def test_main_runs_the_chosen_variants(shared_data, capsys) -> None:
    import json

    from memlearn.experiments.spirit_spikes import main

    main(["--images", "30", "--variant", "no rails (N2D2)", "--variant", "25 periods"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["name"] for r in rows] == ["25 periods", "no rails (N2D2)"]  # VARIANTS' order
    assert rows[1]["rail_v"] is None and rows[0]["images"] == 30  # inf printed as null
