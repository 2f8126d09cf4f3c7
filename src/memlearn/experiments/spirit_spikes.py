"""SPIRIT's input spikes per image against the constants no SPIRIT source gives.

The count at ΔS = 10 (published: 136) depends on the neuron threshold and on the presentation
limit (``memlearn.snn.neuron``).  Their sources are N2D2's, the framework SPIRIT's offline
learning most likely used [I]: a threshold equal to the largest weight (fraction 1 of the ±4
step) and 100 white-pixel periods per image [S].  The simulation keeps 0.875 of the ±4 step
(a margin for the cells' spread, [E]) and N2D2's 100 periods.  The other constants where the
simulation and N2D2's spike test differ have a variant each: the black pixel's rate floor
(N2D2's examples: 1e-4 of white [S], the simulation 0 [E]), the refractory period (N2D2's
examples: none [S]; SPIRIT has one [P] of unknown length, the simulation 2 µs [E]), the rails
(N2D2: none; the simulation ±0.6 V [E]) and the time step (N2D2 is event-driven; the
simulation's comparators sample every 1 µs [E]); ``N2D2 spike test`` takes all of N2D2's at
once.  ``sensitivity`` measures the count on ideal cells (nominal LRS / HRS, one chip, no read
noise) for each ``Variant``, with the same seed, so a shorter presentation is a prefix of a
longer one image by image.

    python -m memlearn.experiments.spirit_spikes --images 10000   # one JSON line per variant
    python -m memlearn.experiments.spirit_spikes --checkpoint runs/seed2/spirit-snn.pt
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from typing import Any, NamedTuple

import torch

from memlearn.errors import MemlearnError
from memlearn.snn.evaluate import ideal_synapses
from memlearn.snn.model import check_inputs, check_weights
from memlearn.snn.neuron import (
    DELTA_S,
    PRESENTATION_PERIODS,
    THRESHOLD_FRACTION,
    NeuronConfig,
)
from memlearn.snn.simulate import run

PRESET = "oxram-slc"
_DEFAULT = NeuronConfig()


class Variant(NamedTuple):
    """``threshold_fraction``: threshold / nominal ±4 step; ``periods``: presentation limit in
    white-pixel periods (``t_max_s * rate_hz``); the rest replace ``NeuronConfig``'s fields
    (``rate_floor``, ``refractory_s`` in s, ``rail_v`` in V, ``dt_s`` in s)."""

    name: str
    threshold_fraction: float = THRESHOLD_FRACTION
    periods: float = PRESENTATION_PERIODS
    rate_floor: float = _DEFAULT.rate_floor
    refractory_s: float = _DEFAULT.refractory_s
    rail_v: float = _DEFAULT.rail_v
    dt_s: float = _DEFAULT.dt_s

    def config(self, delta_s: int) -> NeuronConfig:
        """The simulation's timing and coding for this variant."""
        return NeuronConfig(
            dt_s=self.dt_s, refractory_s=self.refractory_s, delta_s=delta_s,
            t_max_s=self.periods / _DEFAULT.rate_hz, rate_floor=self.rate_floor,
            rail_v=self.rail_v,
        )  # fmt: skip


N2D2_RATE_FLOOR = 1e-4  # [S] N2D2 spike examples: PeriodMeanMin 10 ns / PeriodMeanMax 100 µs
FINE_STEP_S = 0.1e-6  # [E] converged: 0.2 µs steps give the same count (README)

VARIANTS = (
    Variant("simulation (0.875, 100 periods)"),
    Variant("N2D2 threshold (1.0)", threshold_fraction=1.0),
    Variant("25 periods", periods=25),
    Variant("50 periods", periods=50),
    Variant("200 periods", periods=200),
    Variant("0.5 x threshold", threshold_fraction=0.5 * THRESHOLD_FRACTION),
    Variant("N2D2 rate floor (1e-4)", rate_floor=N2D2_RATE_FLOOR),
    Variant("no refractory period (N2D2)", refractory_s=0.0),
    Variant("no rails (N2D2)", rail_v=math.inf),
    Variant("0.1 us steps", dt_s=FINE_STEP_S),
    Variant(
        "N2D2 spike test",
        threshold_fraction=1.0,
        rate_floor=N2D2_RATE_FLOOR,
        refractory_s=0.0,
        rail_v=math.inf,
        dt_s=FINE_STEP_S,
    ),  # fmt: skip
)


def sensitivity(
    x: torch.Tensor,
    w: torch.Tensor,
    labels: torch.Tensor,
    variants: tuple[Variant, ...] = VARIANTS,
    delta_s: int = DELTA_S,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """One row per variant: input spikes per image (mean, median, 90th percentile), the
    fraction of images that reached ΔS, and the spiking layer's accuracy on ``labels``."""
    x, w = check_inputs(x), check_weights(w)
    if labels.shape != (x.shape[0],):
        raise MemlearnError(f"labels must have shape [{x.shape[0]}], got {list(labels.shape)}")
    for v in variants:
        if not (v.threshold_fraction > 0 and v.periods > 0):
            raise MemlearnError(f"variant {v.name!r}: threshold_fraction and periods must be > 0")
        v.config(delta_s).check()
    base = ideal_synapses(PRESET, w)
    rows = []
    for v in variants:
        cfg = v.config(delta_s)
        syn = dataclasses.replace(
            base, theta=base.theta * v.threshold_fraction / THRESHOLD_FRACTION
        )
        res = run(x, syn, cfg, torch.Generator().manual_seed(seed))
        s = res.input_spikes[0].double()
        rows.append({
            **v._asdict(), "delta_s": delta_s, "images": x.shape[0],
            "input_spikes_per_image": float(s.mean()),
            "input_spikes_per_image_median": float(s.median()),
            "input_spikes_per_image_p90": float(s.kthvalue(max(1, math.ceil(0.9 * len(s)))).values),
            "stopped_fraction": float(res.stopped.double().mean()),
            "accuracy": float((res.decision[0] == labels).double().mean()),
            "per_image": s.tolist(),
        })  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> None:
    """Print one JSON line per variant (without the per-image counts)."""
    from memlearn.data.mnist import load_mnist
    from memlearn.snn.model import downscale
    from memlearn.snn.train import load_checkpoint

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--images", type=int, default=10000, help="first M MNIST test images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--checkpoint", default=None, help="a `memlearn snn train` checkpoint")
    p.add_argument("--variant", action="append", choices=[v.name for v in VARIANTS],
                   help="run only this variant (repeatable; default: all)")  # fmt: skip
    args = p.parse_args(argv)
    variants = tuple(v for v in VARIANTS if args.variant is None or v.name in args.variant)
    w, _ = load_checkpoint(args.checkpoint)
    test = load_mnist("test")
    x, y = downscale(test.images[: args.images]), test.labels[: args.images]
    for row in sensitivity(x, w, y, variants, seed=args.seed):
        row.pop("per_image")
        row["rail_v"] = None if math.isinf(row["rail_v"]) else row["rail_v"]  # None: no rails
        print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
