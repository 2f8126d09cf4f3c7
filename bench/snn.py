"""Benchmark: the SPIRIT spiking layer on 100 chips x 10,000 MNIST test images.

Programs the shipped integer weights into 11,520 SLC cells per chip, runs the event-driven
simulation (``memlearn.snn.simulate.run``) and prints images x chips per second, and the same
images through the float layer (one matrix product, repeated over the chips) in the same run,
with the ratio of the two rates.  One more line, ``hidden_network``: the shipped 144-32-10
network (``memlearn snn hidden``) on its own cells, by default on 10 chips x the first 1,000
images (two layers of spikes cost ~10x the single layer's time per image; ``--hidden-chips 0``
skips it).  Needs MNIST (``MEMLEARN_DATA``).

    .venv/bin/python bench/snn.py [--chips 100] [--images 10000] [--threads 2] [--coding poisson]
        [--hidden-chips 10] [--hidden-images 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # must precede the OpenMP runtime's start

import torch  # noqa: E402

from memlearn.data.mnist import load_mnist  # noqa: E402
from memlearn.snn.evaluate import EvalConfig, chip_synapses  # noqa: E402
from memlearn.snn.hidden import load_hidden  # noqa: E402
from memlearn.snn.hidden_eval import CALIBRATION_IMAGES, evaluate_hidden  # noqa: E402
from memlearn.snn.model import downscale  # noqa: E402
from memlearn.snn.neuron import NeuronConfig  # noqa: E402
from memlearn.snn.simulate import run  # noqa: E402
from memlearn.snn.synapses import SynapseArray  # noqa: E402
from memlearn.snn.train import load_checkpoint  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chips", type=int, default=100)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--preset", default="oxram-slc")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--coding", default="periodic", choices=("periodic", "poisson"))
    parser.add_argument("--hidden-chips", type=int, default=10)
    parser.add_argument("--hidden-images", type=int, default=1000)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    w, float_w = load_checkpoint()
    test = load_mnist("test")
    x, y = downscale(test.images[: args.images]), test.labels[: args.images]
    gen = torch.Generator().manual_seed(args.seed)

    t0 = time.perf_counter()
    arr = SynapseArray(args.preset, args.chips, w, generator=gen)
    arr.advance(3600.0)
    t_program = time.perf_counter() - t0
    t0 = time.perf_counter()
    res = run(x, chip_synapses(arr, True), NeuronConfig(coding=args.coding), gen)
    t_spiking = time.perf_counter() - t0
    t0 = time.perf_counter()
    fw = float_w.expand(args.chips, -1, -1)
    float_pred = torch.einsum("ni,cij->cnj", x, fw).argmax(dim=-1)
    t_float = time.perf_counter() - t0
    pairs = args.chips * args.images
    hidden = _hidden_line(args, test) if args.hidden_chips > 0 else None
    print(json.dumps({
        "chips": args.chips,
        "images": args.images,
        "threads": args.threads,
        "coding": args.coding,
        "program_s": round(t_program, 3),
        "spiking_s": round(t_spiking, 3),
        "spiking_images_x_chips_per_s": pairs / t_spiking,
        "float_images_x_chips_per_s": pairs / t_float,
        "float_over_spiking": t_spiking / t_float,
        "accuracy_spiking": float((res.decision == y).double().mean()),
        "accuracy_float": float((float_pred == y).double().mean()),
        "input_spikes_per_image": float(res.input_spikes.double().mean()),
        "hidden_network": hidden,
    }, indent=2))  # fmt: skip


def _hidden_line(args: argparse.Namespace, test) -> dict:
    """The 144-32-10 network on ``--hidden-chips`` chips x the first ``--hidden-images``
    images: images x chips per second of the whole evaluation (programming, both spiking runs
    on chips and on ideal cells), accuracy and input spikes per image."""
    x = downscale(test.images[: args.hidden_images])
    x_cal = downscale(load_mnist("train").images[:CALIBRATION_IMAGES])
    cfg = EvalConfig(chips=args.hidden_chips, preset=args.preset, seed=args.seed,
                     neuron=NeuronConfig(coding=args.coding))  # fmt: skip
    t0 = time.perf_counter()
    out = evaluate_hidden(load_hidden(), x, test.labels[: args.hidden_images], x_cal, cfg)
    seconds = time.perf_counter() - t0
    return {
        "chips": args.hidden_chips, "images": args.hidden_images, "evaluate_s": round(seconds, 3),
        "images_x_chips_per_s": args.hidden_chips * args.hidden_images / seconds,
        "accuracy_spiking": out["accuracy"], "accuracy_ideal": out["accuracy_ideal"],
        "input_spikes_per_image": out["input_spikes_per_image"],
    }  # fmt: skip


if __name__ == "__main__":
    main()
