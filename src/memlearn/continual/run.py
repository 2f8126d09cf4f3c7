"""One continual-learning run: a validated ``ContinualConfig`` -> ``ContinualResult``.

Tasks are learned one after another (``epochs`` passes over each task's training images in
minibatches of ``batch``); after each task every task's test accuracy is measured
(``accuracy[i, j]``: on task j after learning task i), and ``curve_points`` times per task
every task is measured on its first ``curve_images`` test images (the figure).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from memlearn.continual.benchmarks import check_benchmark, check_split, make_tasks
from memlearn.continual.checkpoint import CHECKPOINT_FILE, RunState, load_state, save_state
from memlearn.continual.learners import FLOAT_LR, BinaryLearner, FloatLearner, bnn_lr
from memlearn.continual.metaplastic import check_meta
from memlearn.continual.network import check_fits_chip, network_spec
from memlearn.continual.store import DEFAULT_W_MAX, ROUNDINGS
from memlearn.devices.preset import load_preset
from memlearn.errors import MemlearnError

METHODS = ("bnn", "float", "ewc")
EWC_LAMBDA = 10.0
"""[V] EWC penalty strength chosen on the validation split (chip-sized float network, 6
permuted-MNIST tasks, 200 steps per task): 10 among 1, 10, 100 and 1000 (README)."""
MEMORIES = ("chip", "software")


@dataclass
class ContinualConfig:
    """Everything a run depends on (validated by ``check``)."""

    benchmark: str = "permuted-mnist"
    tasks: int = 6
    meta: float = 1.35
    network: str = "chip"
    hidden: tuple[int, ...] | None = None
    lr: float | None = None
    method: str = "bnn"
    memory: str = "chip"
    chips: int = 1
    epochs: int = 1
    batch: int = 100
    train_size: int | None = None
    test_size: int | None = None
    split: str = "test"
    task_norms: bool = True
    batch_stats: bool = True
    rounding: str = "stochastic"
    weight_max: float = DEFAULT_W_MAX
    ewc_lambda: float = EWC_LAMBDA
    feram_preset: str = "feram-1t1c"
    oxram_preset: str = "oxram-slc"
    curve_points: int = 4
    curve_images: int = 1000
    seed: int = 0
    root: str | None = None

    def check(self) -> ContinualConfig:
        """Raise ``MemlearnError`` naming the first bad field and what is allowed."""
        self.outputs = check_benchmark(self.benchmark, self.tasks)
        self.meta = check_meta(self.meta)
        check_split(self.split)
        if self.method not in METHODS:
            raise MemlearnError(f"unknown method {self.method!r}; allowed {list(METHODS)}")
        if self.memory not in MEMORIES:
            raise MemlearnError(f"unknown memory {self.memory!r}; allowed {list(MEMORIES)}")
        if self.rounding not in ROUNDINGS:
            raise MemlearnError(f"unknown rounding {self.rounding!r}; allowed {list(ROUNDINGS)}")
        for name in ("chips", "epochs", "batch", "curve_points", "curve_images"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MemlearnError(f"{name} must be an integer >= 1, got {value!r}")
        for name in ("train_size", "test_size"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < 1):
                raise MemlearnError(f"{name} must be an integer >= 1 or None, got {value!r}")
        if not self.weight_max > 0 or not self.ewc_lambda >= 0:
            raise MemlearnError("weight_max must be > 0 and ewc_lambda >= 0")
        if self.lr is not None and not self.lr > 0:
            raise MemlearnError(f"lr must be > 0, got {self.lr}")
        self.spec = network_spec(self.network, self.hidden)
        if self.network == "chip":
            check_fits_chip(self.spec.sizes(self.outputs))
        if self.on_memories:
            for name in (self.feram_preset, self.oxram_preset):
                load_preset(name)
        return self

    @property
    def on_memories(self) -> bool:
        return self.method == "bnn" and self.memory == "chip"

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class ContinualResult:
    """``accuracy [n_chips, tasks, tasks]``, ``curves [points, n_chips, tasks]`` with their
    step numbers, the learner (its stores hold the memories) and the step count."""

    accuracy: torch.Tensor
    curves: torch.Tensor
    curve_steps: list[int]
    steps: int
    steps_per_task: int
    learner: BinaryLearner | FloatLearner
    config: ContinualConfig


def make_learner(config: ContinualConfig, generator: torch.Generator, steps_per_task: int):
    """The learner ``config`` asks for (``steps_per_task`` sets the default BNN rate)."""
    sizes = config.spec.sizes(config.outputs)
    if config.method == "bnn":
        chip = None
        if config.on_memories:
            chip = {
                "feram_preset": config.feram_preset,
                "oxram_preset": config.oxram_preset,
                "rounding": config.rounding,
                "weight_max": config.weight_max,
            }
        lr = bnn_lr(steps_per_task) if config.lr is None else config.lr
        return BinaryLearner(
            sizes, config.chips, config.meta, generator, chip=chip, lr=lr,
            task_norms=config.task_norms, batch_stats=config.batch_stats,
        )  # fmt: skip
    ewc = config.ewc_lambda if config.method == "ewc" else 0.0
    lr = FLOAT_LR if config.lr is None else config.lr
    return FloatLearner(
        sizes, config.chips, generator, ewc_lambda=ewc, lr=lr, task_norms=config.task_norms,
        batch_stats=config.batch_stats,
    )  # fmt: skip


def _accuracies(learner, tasks: list, images: int | None) -> torch.Tensor:
    """Test accuracy ``[n_chips, tasks]`` of every task (its first ``images`` test images)."""
    return torch.stack(
        [learner.accuracy(t.test_x[:images], t.test_y[:images], j) for j, t in enumerate(tasks)], 1
    )


def _fresh_state(config: ContinualConfig, gen: torch.Generator, steps_per_task: int) -> RunState:
    learner = make_learner(config, gen, steps_per_task)
    accuracy = torch.zeros(config.chips, config.tasks, config.tasks)
    return RunState(config.to_dict(), learner, gen, accuracy)


def run_continual(
    config: ContinualConfig,
    progress: Callable[[int, int], None] | None = None,
    run_dir: str | Path | None = None,
    resume: bool = False,
) -> ContinualResult:
    """Learn ``config.tasks`` tasks in sequence; ``progress(steps_done, steps_total)`` after
    each step.  With ``run_dir``, the state is saved there after every task and ``resume``
    continues from it (``checkpoint`` module)."""
    config.check()
    path = None if run_dir is None else Path(run_dir) / CHECKPOINT_FILE
    if resume and path is None:
        raise MemlearnError("resume needs run_dir (the folder holding the checkpoint)")
    saved = load_state(path, config.to_dict()) if resume else None  # refused before any work
    torch.manual_seed(config.seed)  # batch-norm/autograd paths draw nothing; belt and braces
    gen = torch.Generator().manual_seed(config.seed)
    tasks = make_tasks(
        config.benchmark, config.tasks, config.spec.side, gen,
        config.train_size, config.test_size, config.root, config.split,
    )  # fmt: skip
    per_task = [-(-len(t.train_x) // config.batch) * config.epochs for t in tasks]
    steps_per_task, total = per_task[0], sum(per_task)
    state = saved if saved is not None else _fresh_state(config, gen, steps_per_task)

    def tick(step: int) -> None:
        if progress is not None:
            progress(step, total)

    for i in range(state.next_task, config.tasks):
        _learn_task(config, state, tasks, i, per_task[i], tick)
        if path is not None:
            save_state(path, state)
    return ContinualResult(
        accuracy=state.accuracy,
        curves=torch.stack(state.curves),
        curve_steps=state.curve_steps,
        steps=state.step,
        steps_per_task=steps_per_task,
        learner=state.learner,
        config=config,
    )


def _learn_task(
    config: ContinualConfig,
    state: RunState,
    tasks: list,
    i: int,
    steps: int,
    progress: Callable[[int], None],
) -> None:
    """Learn task ``i`` (``steps`` minibatches), then measure every task; updates ``state``."""
    learner, gen, task = state.learner, state.generator, tasks[i]
    marks = {round(steps * (k + 1) / config.curve_points) for k in range(config.curve_points)}
    done = 0
    for _ in range(config.epochs):
        order = torch.randperm(len(task.train_x), generator=gen)
        for b in order.split(config.batch):
            learner.step(task.train_x[b], task.train_y[b])
            state.step, done = state.step + 1, done + 1
            if done in marks:
                state.curves.append(_accuracies(learner, tasks, config.curve_images))
                state.curve_steps.append(state.step)
            progress(state.step)
    learner.end_task(task)
    state.accuracy[:, i, :] = _accuracies(learner, tasks, None)
    state.next_task = i + 1
