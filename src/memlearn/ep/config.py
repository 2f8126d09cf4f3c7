"""Validated settings of an equilibrium-propagation (or backprop baseline) training run.

Defaults follow the prototypical MNIST multilayer-perceptron settings of Laborieux et al.,
"Scaling equilibrium propagation to deep ConvNets by drastically reducing its gradient
estimator bias", Front. Neurosci. 15, 633674 (2021), and their public code
(``--archi 784 512 10 --act hard_sigmoid --T1 30 --T2 10 --mbs 50 --lrs 0.08 0.04``,
symmetric nudging, cross-entropy output): [P] unless marked otherwise.  The hidden layer is
500 units as in the reference network of this project.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

from memlearn.devices.preset import load_preset
from memlearn.devices.programming import check_strategy
from memlearn.errors import MemlearnError

RULES = ("ep", "backprop")
UPDATES = ("accumulate", "manhattan", "counter")
SUBSTRATES = ("float", "array")
OUTPUTS = ("ce", "mse")
DEFAULT_NETWORK = "784-500-10"
DEFAULT_PRESET = "hfo2-mlc"
MNIST_TRAIN = 60000  # images in the MNIST training set


def parse_network(text: str) -> tuple[int, ...]:
    """Layer sizes of a network string such as ``"784-500-10"`` (input first, output last)."""
    parts = str(text).strip().split("-")
    try:
        sizes = tuple(int(p) for p in parts)
    except ValueError:
        sizes = ()
    if len(sizes) < 3 or any(s < 1 for s in sizes):
        raise MemlearnError(
            f"unknown network string {text!r}: expected sizes joined by '-', input first, at "
            "least one hidden layer, every size >= 1 (e.g. 784-500-10 or 784-256-256-10)"
        )
    return sizes


def default_lrs(n_layers: int) -> tuple[float, ...]:
    """Per weight layer learning rates: 0.2 for the first, halving towards the output, at least
    0.025.  [E] Laborieux et al. 2021 use 0.08, 0.04 with ``rho(x) = clip(x / 2, 0, 1)``; with
    ``clip(x, 0, 1)`` here, 0.2, 0.1 learned faster than 0.08, 0.04 in a 2-epoch comparison
    scored on a validation split held out of the MNIST training set (``--validation``; README,
    EP section), never on the test set; the halving pattern is theirs."""
    return tuple(max(0.2 / 2**i, 0.025) for i in range(n_layers))


def default_weight_max(n_layers: int) -> tuple[float, ...]:
    """Full-scale weight per layer in units of ``1/sqrt(fan_in)``: 3 for hidden layers, 8 for the
    output layer.  [E] from the trained float weights of 784-500-10 (software EP, 4 epochs,
    training data only): nearly all of them lie below these (README, EP section)."""
    return (3.0,) * (n_layers - 1) + (8.0,)


@dataclass
class EPConfig:
    """Everything a run depends on; :meth:`validate` raises before any work."""

    network: str = DEFAULT_NETWORK
    rule: str = "ep"
    substrate: str = "float"
    update: str = "accumulate"
    output: str = "ce"
    beta: float = 0.5  # [P] Laborieux et al. 2021, |beta| with symmetric nudging
    symmetric: bool = True  # [P] symmetric (+beta, -beta) nudging removes the O(beta) bias
    t_free: int = 30  # [P] T1
    t_nudge: int = 10  # [P] T2
    batch: int = 50  # [P] mini-batch size
    lrs: tuple[float, ...] | None = None
    epochs: int = 1
    train_images: int = 60000
    test_images: int = 10000
    validation: int = 0  # training images held out and evaluated instead of the test set
    preset: str = DEFAULT_PRESET
    levels: int = 8  # [E] the reference chip's 8 levels per cell
    strategy: str = "hybrid"
    spread: float = 1.0  # programming spread factor (devices.variants.scale_spread); 1 = preset
    chips: int = 1
    weight_max: tuple[float, ...] | None = None  # per layer, units of 1/sqrt(fan-in)
    counter_bits: int = 4  # [E] counter scheme: signed digital counter per weight
    adc_bits: int | None = 8
    dac_bits: int | None = 8
    read_noise: bool = True
    wire_ohms: float = 0.0
    seed: int = 0
    sizes: tuple[int, ...] = field(default=(), init=False)

    def validate(self) -> EPConfig:
        """Check every field; returns ``self`` with ``sizes`` and ``lrs`` filled in."""
        self.sizes = parse_network(self.network)
        for name, value, allowed in (
            ("rule", self.rule, RULES),
            ("update", self.update, UPDATES),
            ("substrate", self.substrate, SUBSTRATES),
            ("output", self.output, OUTPUTS),
        ):
            if value not in allowed:
                raise MemlearnError(f"unknown {name} {value!r}; allowed {list(allowed)}")
        if not math.isfinite(self.beta) or self.beta <= 0:
            raise MemlearnError(
                f"beta must be a finite number > 0 (the nudging strength), got {self.beta!r}; "
                "beta = 0 gives no learning signal"
            )
        if self.output == "mse" and self.symmetric and self.beta >= 1:
            raise MemlearnError(f"beta must be < 1 for the mse output with -beta, got {self.beta}")
        for name in ("t_free", "t_nudge", "batch", "epochs", "train_images", "test_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MemlearnError(f"{name} must be an integer >= 1, got {value!r}")
        if isinstance(self.validation, bool) or not isinstance(self.validation, int):
            raise MemlearnError(f"validation must be an integer >= 0, got {self.validation!r}")
        if self.validation < 0 or self.validation + self.train_images > MNIST_TRAIN:
            raise MemlearnError(
                f"validation ({self.validation}) + train_images ({self.train_images}) must be "
                f"<= {MNIST_TRAIN} (the held-out images come from the MNIST training set) and "
                "validation >= 0"
            )
        if isinstance(self.chips, bool) or not isinstance(self.chips, int) or self.chips < 1:
            raise MemlearnError(f"chips must be an integer >= 1, got {self.chips!r}")
        if isinstance(self.levels, bool) or not isinstance(self.levels, int):
            raise MemlearnError(f"levels must be an integer in [2, 64], got {self.levels!r}")
        if not 2 <= self.levels <= 64:
            raise MemlearnError(f"levels must be an integer in [2, 64], got {self.levels}")
        if not 2 <= self.counter_bits <= 16:
            raise MemlearnError(f"counter_bits must be in [2, 16], got {self.counter_bits}")
        if not (math.isfinite(self.spread) and self.spread > 0):
            raise MemlearnError(f"spread must be a factor > 0 (1 = the preset), got {self.spread}")
        check_strategy(self.strategy)
        load_preset(self.preset)
        n_layers = len(self.sizes) - 1
        lrs = default_lrs(n_layers) if self.lrs is None else tuple(float(x) for x in self.lrs)
        if len(lrs) != n_layers or not all(x > 0 and math.isfinite(x) for x in lrs):
            raise MemlearnError(
                f"lrs must hold {n_layers} finite learning rates > 0 (one per weight layer), "
                f"got {self.lrs}"
            )
        self.lrs = lrs
        fs = default_weight_max(n_layers) if self.weight_max is None else self.weight_max
        fs = tuple(float(x) for x in fs)
        if len(fs) != n_layers or not all(x > 0 and math.isfinite(x) for x in fs):
            raise MemlearnError(
                f"weight_max must hold {n_layers} values > 0 (one per weight layer, in units of "
                f"1/sqrt(fan-in)), got {self.weight_max}"
            )
        self.weight_max = fs
        return self

    def as_dict(self) -> dict:
        out = asdict(self)
        out["lrs"] = list(self.lrs or ())
        out["weight_max"] = list(self.weight_max or ())
        out["sizes"] = list(self.sizes)
        return out


def quick(config: EPConfig) -> EPConfig:
    """The ``--quick`` setting: 6,000 training and 2,000 test images, fewer relaxation steps
    for deep nets [E]."""
    config.train_images = min(config.train_images, 6000)
    config.test_images = min(config.test_images, 2000)
    config.t_free = min(config.t_free, 20)
    return config
