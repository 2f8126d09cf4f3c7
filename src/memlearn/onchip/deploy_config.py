"""The options of one deployment (:class:`DeployConfig`), each checked when the configuration is
made, before any data or model is loaded; :mod:`memlearn.onchip.deploy` carries it out."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memlearn.bounds import check_celsius, check_hours
from memlearn.data.augment import DEFAULT_SUPPORT_COPIES
from memlearn.data.layout import DRAWERS
from memlearn.data.splits import SPLITS
from memlearn.devices.programming import ENGINES, STRATEGIES
from memlearn.meta.state import pick_device
from memlearn.onchip.memory import parse_memory
from memlearn.onchip.policies import DEFAULT_POLICY, POLICIES
from memlearn.onchip.run import (
    MAX_SUPPORT_COPIES,
    QUERIES,
    WEIGHT_MAX_SOURCES,
)

DEFAULT_PRESET = "hfo2-mlc"  # the reference device (REFERENCE.md)
DEFAULT_CHIPS = 100  # [E] simulated chips at once: tasks beyond them run in rounds
MAX_LEVELS = 64  # [E] 6 bits per cell, beyond any multi-level RRAM reported
MAX_BAKE_CELSIUS = 400.0  # [E] above back-end-of-line processing temperatures
TASK_SPLITS = tuple(s for s in SPLITS if s != "runs")  # the splits that hold classes


@dataclass(frozen=True)
class DeployConfig:
    """Every option of a deployment, checked on creation: a ``ValueError`` naming the option
    (an unknown preset: the preset loader's ``MemlearnError``, naming the shipped ones).

    ``preset``/``chips``/``levels``: ``None`` takes the default (:data:`DEFAULT_PRESET`,
    :data:`DEFAULT_CHIPS`, the checkpoint's levels) or, with ``bench``, the bench's own; an
    explicit value that differs from the bench's is refused when the bench answers.
    ``ways``: ``None`` takes the model's.  ``weight_max``: a source of
    :data:`~memlearn.onchip.run.WEIGHT_MAX_SOURCES`.  ``spare_pairs``: spare column pairs
    beside the output array (``None``: the rest of its tile; 0: no repair).  ``bake_hours`` at
    ``bake_celsius``: an optional bake after adaptation.  ``max_memory``: the budget (bytes, or
    a size such as ``"4G"``: :func:`~memlearn.onchip.memory.parse_memory`) within which the
    chips are simulated in rounds (:mod:`memlearn.onchip.rounds`; ``None``: a fraction of the
    machine's memory).  ``torch_device``: where the simulated chips live (``"cpu"``, the
    default, or ``"cuda"``, ``"cuda:1"`` ...).  ``engine``: the program-and-verify engine of
    the simulated chips (:data:`~memlearn.devices.programming.ENGINES`; ``None``: ``"torch"``;
    ``"fused"`` runs on the CPU only).
    """

    checkpoint: Path | str | None = None
    preset: str | None = None
    strategy: str = "hybrid"
    policy: str = DEFAULT_POLICY
    chips: int | None = None
    tasks: int = 100
    ways: int | None = None
    shots: int = 1
    steps: int = 5
    split: str | None = None
    levels: int | None = None
    weight_max: str = "auto"
    support_copies: int = DEFAULT_SUPPORT_COPIES
    spare_pairs: int | None = None
    seed: int = 0
    root: Path | str | None = None
    bench: str | None = None
    bake_hours: float = 0.0
    bake_celsius: float = 150.0
    max_memory: int | str | None = None
    torch_device: str | None = None
    engine: str | None = None

    def __post_init__(self) -> None:
        if self.max_memory is not None:  # normalised to bytes
            object.__setattr__(self, "max_memory", parse_memory(self.max_memory))
        if self.torch_device is not None:
            object.__setattr__(self, "torch_device", str(pick_device(self.torch_device)))
        _check_counts(self)
        _check_names(self)
        check_hours(self.bake_hours, "bake_hours")
        if not -273.15 < self.bake_celsius <= MAX_BAKE_CELSIUS:
            raise ValueError(
                f"bake_celsius must be in (-273.15, {MAX_BAKE_CELSIUS:g}], got {self.bake_celsius}"
            )
        check_celsius(self.bake_celsius, "bake_celsius")  # the shared lower bound
        if self.bench is not None:
            bench_address(self.bench)
        elif self.bake_hours > 0 and self.n_chips < self.tasks:
            raise ValueError(
                f"a bake ages every cell of a chip, so each task needs its own chip: give chips "
                f">= tasks with a bake (got chips {self.n_chips}, tasks {self.tasks})"
            )
        _check_paths(self)

    @property
    def n_chips(self) -> int:
        """Simulated chips built: ``chips`` (default :data:`DEFAULT_CHIPS`), at most ``tasks``."""
        return min(DEFAULT_CHIPS if self.chips is None else self.chips, self.tasks)

    @property
    def preset_name(self) -> str:
        """The preset of the simulated chips (``preset`` or :data:`DEFAULT_PRESET`)."""
        return self.preset or DEFAULT_PRESET


def _check_counts(c: DeployConfig) -> None:
    for name, low in (("tasks", 1), ("shots", 1), ("steps", 0), ("seed", 0)):
        if getattr(c, name) < low:
            raise ValueError(f"{name} must be >= {low}, got {getattr(c, name)}")
    if c.chips is not None and c.chips < 1:
        raise ValueError(f"chips (chips simulated at once) must be >= 1, got {c.chips}")
    if c.ways is not None and c.ways < 2:
        raise ValueError(f"ways must be >= 2, got {c.ways}")
    if c.shots + QUERIES > DRAWERS:
        raise ValueError(
            f"shots {c.shots} is too many: a task takes shots + {QUERIES} query images of each "
            f"class and an Omniglot class has {DRAWERS}, so shots must be in "
            f"[1, {DRAWERS - QUERIES}]"
        )
    if c.levels is not None and not 2 <= c.levels <= MAX_LEVELS:
        raise ValueError(f"levels must be in [2, {MAX_LEVELS}], got {c.levels}")
    if not 0 <= c.support_copies <= MAX_SUPPORT_COPIES:
        raise ValueError(
            f"support_copies must be in [0, {MAX_SUPPORT_COPIES}], got {c.support_copies}"
        )
    if c.spare_pairs is not None and c.spare_pairs < 0:
        raise ValueError(f"spare_pairs must be >= 0, got {c.spare_pairs}")


def _check_names(c: DeployConfig) -> None:
    from memlearn.devices.preset import load_preset

    for name, value, allowed in (
        ("strategy", c.strategy, STRATEGIES),
        ("policy", c.policy, POLICIES),
        ("weight_max", c.weight_max, WEIGHT_MAX_SOURCES),
    ):
        if value not in allowed:
            raise ValueError(f"unknown {name} {value!r}; allowed: {', '.join(allowed)}")
    if c.engine is not None and c.engine not in ENGINES:
        raise ValueError(f"unknown engine {c.engine!r}; allowed: {', '.join(ENGINES)}")
    if c.engine == "fused" and c.torch_device not in (None, "cpu"):
        raise ValueError(f"engine fused runs on the CPU, not torch_device {c.torch_device}")
    if c.split is not None and c.split not in TASK_SPLITS:
        raise ValueError(f"unknown split {c.split!r}; allowed: {', '.join(TASK_SPLITS)}")
    if c.preset is not None or c.bench is None:
        load_preset(c.preset_name)  # an unknown preset fails here, naming the presets


def _check_paths(c: DeployConfig) -> None:
    if c.checkpoint is not None and not Path(c.checkpoint).is_file():
        raise ValueError(f"checkpoint {c.checkpoint} does not exist (or is not a file)")
    if c.root is not None and not Path(c.root).is_dir():
        raise ValueError(f"root {c.root} is not a folder (the data root)")


def bench_address(bench: str) -> tuple[str, int]:
    """``HOST:PORT`` → ``(host, port)``; ``ValueError`` when it is not one."""
    host, sep, port = bench.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"bench must be HOST:PORT (port 1-65535), got {bench!r}")
    return host, int(port)
