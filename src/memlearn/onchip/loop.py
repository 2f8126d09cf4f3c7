"""The computer in the loop: deploy a meta-learned head into chips and adapt it, K steps.

Tasks are spread over the chips: within a *round*, chip ``c`` learns task ``c``; when there are
more tasks than chips, further rounds follow, each starting from a fresh deployment of the
meta-learned weights.  One round:

1. **Deploy** – quantise the meta-learned weights of each layer to the chip's levels (per-layer
   ``weight_max``, the weight on the top level, calibrated by :mod:`memlearn.onchip.calibration`;
   :mod:`memlearn.onchip.mapping`) and program them with the write strategy.  Its energy and
   writes are reported apart from the adaptation.
2. **Adapt**, for ``k = 1..K`` – read every array (``read_conductances`` → weights), run the
   support images (with the distorted copies the computer makes of them, when it does:
   :func:`memlearn.onchip.run.with_copies`) through the arrays (analog VMMs; features are
   scaled per image to row voltages within the read voltage, currents scaled back to weight
   units), compute the cross-entropy gradient digitally from the read-out weights and measured
   activations, take the SGD step with the meta-learned per-layer rates, and hand the new
   weights to the update policy (:mod:`memlearn.onchip.policies`; default: the nearest level of
   a float copy of the weights that the computer keeps and updates).  Cells read far from their
   target (stuck, never verified) are left alone and their partner compensates.  The energy of
   these K steps (reads, VMMs with their DAC/ADC, programming, verify reads) is the *energy per
   adaptation*.
3. **Evaluate** the query images through the arrays before the first step and after each step
   (that energy is not counted: it is measurement, not learning); optionally bake the chips and
   evaluate once more.

Only the :class:`~memlearn.chip.base.Chip` interface is used, so the same loop drives a
:class:`~memlearn.chip.simulated.SimulatedChip` or a bench behind
:class:`~memlearn.chip.remote.RemoteChip`.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from memlearn.chip.base import Chip
from memlearn.chip.simulated import on_device
from memlearn.crossbar.mapping import DifferentialMapping
from memlearn.meta.inner import Gradient, HeadTasks, Tasks, inner_loop
from memlearn.nn.rates import Rates, rate_table
from memlearn.onchip import head
from memlearn.onchip.config import AdaptConfig
from memlearn.onchip.mapping import uniform_levels
from memlearn.onchip.policies import (
    LayerState,
    UpdatePolicy,
    find_faults,
    make_policy,
    program_targets,
)
from memlearn.onchip.result import AdaptResult, merge_parts, merge_results
from memlearn.onchip.tally import Snapshot, StepTotals

__all__ = [
    "AdaptResult",
    "ChipHead",
    "adapt_on_chip",
    "analog_forward",
    "chip_levels",
    "merge_results",
    "row_volts",
]

INPUTS_KEPT = 4
"""[E] Inputs whose row voltages a :class:`ChipHead` keeps (the support and query sets)."""
COUNTERS = ("cells_written", "expected_cells", "set_pulses", "reset_pulses", "verify_reads")


def chip_levels(chip: Chip, levels: int | torch.Tensor | None) -> torch.Tensor:
    """The level conductances (S) the loop maps weights onto: ``levels`` when it is a tensor,
    ``levels`` evenly spaced over the chip's window when it is a count, the chip's own
    (:attr:`~memlearn.chip.base.Chip.levels`) when it is ``None``."""
    if levels is None:
        return chip.levels.detach().float().flatten()
    if isinstance(levels, torch.Tensor):
        return levels.detach().float().flatten()
    g_min, g_max = chip.conductance_window
    return uniform_levels(g_min, g_max, int(levels))


def _ledger(chip: Chip) -> Snapshot:
    return Snapshot.of(chip.energy_ledger())


def _latency(chip: Chip) -> Snapshot:
    get = getattr(chip, "latency_ledger", None)  # a bench may not report time
    return Snapshot.of({} if get is None else get())


def row_volts(
    a: torch.Tensor, v_read: float, signed: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(volts, peak)``: the inputs ``a [n, B, in]`` as row voltages (V), each vector scaled by
    its maximum ``peak`` (``[n, B, 1]``, 1 for an all-zero vector) to ``[-v_read, v_read]``;
    ``signed=False`` for inputs known to be >= 0 (a ReLU's output: no ``abs``)."""
    # max |a|; a layer's input after the first is a ReLU's output (>= 0), its own maximum
    peak = (a.abs() if signed else a).amax(dim=-1, keepdim=True)
    peak = torch.where(peak > 0, peak, 1.0)
    volts = (a / peak).mul_(v_read).clamp_(-v_read, v_read)  # one [n, B, in] temporary
    return volts.float(), peak


def analog_forward(
    chip: Chip,
    arrays: list[str],
    x: torch.Tensor,
    scales: list[torch.Tensor],
    first: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> list[torch.Tensor]:
    """Pre-activations of each layer measured on the chip's arrays.

    ``x``: ``[n_chips, B, in]`` non-negative features.  Each input vector is scaled by its own
    maximum to row voltages in ``[0, read_voltage]`` (:func:`row_volts`); the column currents
    (A) are scaled back to weight units: ``h = I · s · x_max / V_read`` with ``s`` the layer's
    weight per siemens.  ``first``: ``row_volts(x, read_voltage)`` when the caller has it.
    """
    v_read = float(chip.read_voltage)
    pre: list[torch.Tensor] = []
    for i, (name, scale) in enumerate(zip(arrays, scales, strict=True)):
        if i == 0:
            volts, peak = row_volts(x, v_read) if first is None else first
        else:
            volts, peak = row_volts(torch.relu(pre[-1]), v_read, signed=False)
        amperes = chip.multiply(name, volts)
        pre.append((amperes * scale).mul_(peak).div_(v_read))  # (I · s) · x_max / V_read
    return pre


def _read_weights(
    chip: Chip, states: list[LayerState], fault_threshold: float | None
) -> list[torch.Tensor]:
    """Read every array; weights ``[n_chips, rows, cols]`` per layer.  With a
    ``fault_threshold`` (S) the reads also update each layer's faulty cells."""
    out = []
    for state in states:
        g_plus, g_minus = chip.read_conductances(state.array)
        g_plus, g_minus = g_plus.float(), g_minus.float()
        if fault_threshold is not None:
            find_faults(state, g_plus, g_minus, fault_threshold)
        out.append(state.mapping.to_weight(g_plus, g_minus))
    return out


def _pad(t: torch.Tensor, n: int) -> torch.Tensor:
    if t.shape[0] == n:
        return t
    reps = torch.zeros(n - t.shape[0], dtype=torch.long)
    return torch.cat([t, t[reps]], dim=0)


def _check_inputs(
    chip: Chip, tasks: Tasks, weights: list[torch.Tensor], inner_lrs: Rates
) -> list[str]:
    arrays = [a.name for a in chip.layout.arrays]
    if len(weights) != len(arrays):
        raise ValueError(f"{len(weights)} weight matrices for a chip with arrays {arrays}")
    rate_table(inner_lrs, len(weights))  # raises naming the problem
    for w, spec in zip(weights, chip.layout.arrays, strict=True):
        if tuple(w.shape) != (spec.rows, spec.cols):
            raise ValueError(
                f"weights for array {spec.name!r} have shape {list(w.shape)}, expected "
                f"[{spec.rows}, {spec.cols}] (inputs x outputs)"
            )
    rows = chip.layout.arrays[0].rows
    support_x, query_x = tasks.support_x, tasks.query_x
    for name, x, y in (("support", support_x, tasks.support_y), ("query", query_x, tasks.query_y)):
        if x.dim() != 3 or x.shape[-1] != rows:
            raise ValueError(f"{name} features must be [tasks, batch, {rows}], got {list(x.shape)}")
        if y.shape != x.shape[:2]:
            raise ValueError(f"{name} labels must be {list(x.shape[:2])}, got {list(y.shape)}")
        low, high = (float(t) for t in x.aminmax()) if x.numel() else (0.0, 0.0)  # one pass
        if not (math.isfinite(low) and math.isfinite(high)):  # NaN propagates to both
            raise ValueError(f"{name} features hold NaN or infinite values")
        if low < 0:
            raise ValueError(f"{name} features must be >= 0 (unipolar row voltages)")
    if support_x.shape[0] != query_x.shape[0]:
        raise ValueError("support and query sets must have the same number of tasks")
    return arrays


def adapt_on_chip(
    chip: Chip,
    tasks: Tasks,
    weights: list[torch.Tensor],
    inner_lrs: Rates,
    config: AdaptConfig | None = None,
    progress: Callable[[int], object] | None = None,
    gradient_for: Callable[[ChipHead], Gradient] | None = None,
) -> AdaptResult:
    """Deploy ``weights`` (array orientation ``[in, out]`` per layer) and adapt every task.

    ``tasks`` (e.g. :class:`~memlearn.meta.inner.HeadTasks`): ``support_x``/``query_x``, head
    inputs (the digital extractor's features, ≥ 0), ``[T, B, in]``; labels ``support_y`` /
    ``query_y``, ``[T, B]``.  Returns per-task curves, writes and energy; ``progress(1)`` after
    each of the ``steps + 1`` evaluations of each round (a progress bar's update).
    ``gradient_for(holder)``: the update's gradient for a round's :class:`ChipHead` (default
    the computer's backprop, :func:`memlearn.onchip.head.gradients`).
    """
    config = config or AdaptConfig()
    arrays = _check_inputs(chip, tasks, weights, inner_lrs)
    device = chip.levels.device
    if device.type == "cpu":  # the default path: no device context
        return _adapt_all(chip, arrays, tasks, weights, inner_lrs, config, progress, gradient_for)
    tasks = HeadTasks(*(t.to(device) for t in (tasks.support_x, tasks.support_y,
                                                tasks.query_x, tasks.query_y)))  # fmt: skip
    weights = [w.to(device) for w in weights]
    with on_device(device):
        result = _adapt_all(chip, arrays, tasks, weights, inner_lrs, config, progress, gradient_for)
    return result.to("cpu")


def _adapt_all(
    chip: Chip,
    arrays: list[str],
    tasks: Tasks,
    weights: list[torch.Tensor],
    inner_lrs: Rates,
    config: AdaptConfig,
    progress: Callable[[int], object] | None,
    gradient_for: Callable[[ChipHead], Gradient] | None = None,
) -> AdaptResult:
    """:func:`adapt_on_chip` on the chip's device, inputs checked and on it."""
    policy = make_policy(config.policy, config.seed)
    device = chip.levels.device
    if device.type != "cpu":  # the policy's rounding draws on the chip's device
        policy.generator = torch.Generator(device=device).manual_seed(int(config.seed))
    levels = chip_levels(chip, config.levels).to(device)
    sx, sy, qx, qy = tasks.support_x, tasks.support_y, tasks.query_x, tasks.query_y
    n_chips, n_tasks = chip.n_chips, sx.shape[0]
    if config.bake_seconds > 0 and n_tasks > n_chips:
        raise ValueError(
            f"a bake ages every cell, and a later round re-programs only the cells whose target "
            f"changed: with a bake give at least as many chips as tasks (got {n_tasks} tasks on "
            f"{n_chips} chips)"
        )
    rounds = []
    for start in range(0, n_tasks, n_chips):
        stop = min(start + n_chips, n_tasks)
        part = HeadTasks(*(_pad(t[start:stop], n_chips) for t in (sx, sy, qx, qy)))
        result = _round(
            chip, arrays, part, weights, inner_lrs, config, policy, levels, progress, gradient_for
        )
        rounds.append((stop - start, result))
    return merge_parts(rounds)


def _deploy(
    chip: Chip,
    arrays: list[str],
    weights: list[torch.Tensor],
    config: AdaptConfig,
    policy: UpdatePolicy,
    levels: torch.Tensor,
) -> tuple[list[LayerState], torch.Tensor]:
    """Quantise and program the weights of every layer; returns the layers' states and the
    cells written per chip."""
    n = chip.n_chips
    states: list[LayerState] = []
    written = torch.zeros(n, dtype=torch.long)
    if config.weight_max is not None and len(config.weight_max) != len(arrays):
        raise ValueError(f"weight_max has {len(config.weight_max)} values for arrays {arrays}")
    for i, (name, w) in enumerate(zip(arrays, weights, strict=True)):
        w_chips = w.float().unsqueeze(0).expand(n, *w.shape)
        if config.weight_max is None:
            if not bool(w.abs().max() > 0):
                raise ValueError(
                    f"the weights of array {name!r} are all zero, so they cannot set the full "
                    f"scale: give AdaptConfig.weight_max (e.g. from "
                    f"memlearn.onchip.run.calibrate_weight_max)"
                )
            mapping = DifferentialMapping.from_weights(w_chips, levels, headroom=config.headroom)
        else:
            scale = torch.full((n, 1, 1), config.weight_max[i] / float(levels[-1] - levels[0]))
            mapping = DifferentialMapping(levels, scale)
        state = LayerState(name, mapping, mapping.index(w_chips))
        if policy.keeps_copy:
            state.copy = mapping.clip(w_chips)
        report, _ = program_targets(chip, state, state.index, config.strategy)
        written += report.cells_written.long()
        states.append(state)
    if config.settle_seconds > 0:
        chip.advance(config.settle_seconds, config.ambient_kelvin)
    return states, written


class ChipHead:
    """A :class:`~memlearn.meta.inner.WeightHolder` of conductances on chips: reads every array
    back, runs inputs through the arrays (:func:`analog_forward`) and hands each update to the
    policy; counts the writes and the energy of every update step."""

    def __init__(
        self,
        chip: Chip,
        states: list[LayerState],
        config: AdaptConfig,
        policy: UpdatePolicy,
    ) -> None:
        self.chip, self.states, self.config, self.policy = chip, states, config, policy
        self.arrays = [s.array for s in states]
        self.scales = [s.mapping.scale for s in states]
        self.fault_threshold = None  # S; cells read further than this from their target: faulty
        if config.fault_fraction is not None and policy.targets_levels:
            g_min, g_max = chip.conductance_window
            self.fault_threshold = config.fault_fraction * (g_max - g_min)
        n, steps = chip.n_chips, config.steps
        self._counts = torch.zeros(len(COUNTERS), n, steps, dtype=torch.long)
        self.counters = dict(zip(COUNTERS, self._counts.unbind(0), strict=True))
        self._energy, self._latency = StepTotals(n, steps), StepTotals(n, steps)
        self._before = self._before_s = Snapshot((), None)
        self._inputs: dict[int, tuple[torch.Tensor, int, tuple[torch.Tensor, torch.Tensor]]] = {}

    @property
    def energy(self) -> dict[str, torch.Tensor]:
        """Energy (J) of each update step by category, ``[n_chips, steps]`` each."""
        return self._energy.totals

    @property
    def latency(self) -> dict[str, torch.Tensor]:
        """Time (s) of each update step by category, ``[n_chips, steps]`` each."""
        return self._latency.totals

    def read(self) -> list[torch.Tensor]:
        """Read every array (an update step's energy counts from here)."""
        self._before, self._before_s = _ledger(self.chip), _latency(self.chip)
        return _read_weights(self.chip, self.states, self.fault_threshold)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        return analog_forward(self.chip, self.arrays, x, self.scales, self._first(x))

    def _first(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """:func:`row_volts` of ``x``, kept for the inputs that come back every step (the
        support and query sets: the same tensors, unchanged since)."""
        hit = self._inputs.get(id(x))
        if hit is not None and hit[0] is x and hit[1] == x._version:
            return hit[2]
        if len(self._inputs) >= INPUTS_KEPT:
            self._inputs.clear()
        first = row_volts(x, float(self.chip.read_voltage))
        self._inputs[id(x)] = (x, x._version, first)
        return first

    def write(self, step: int, read: list[torch.Tensor], new: list[torch.Tensor]) -> None:
        chip, config, k = self.chip, self.config, step
        for state, w, w_new in zip(self.states, read, new, strict=True):
            report, expected = self.policy.apply(chip, state, w, w_new, config.strategy)
            counts = [expected if name == "expected_cells" else getattr(report, name)
                      for name in COUNTERS]  # fmt: skip
            self._counts[:, :, k] += torch.stack(counts).long()
        if config.settle_seconds > 0:
            chip.advance(config.settle_seconds, config.ambient_kelvin)
        self._energy.record(k, _ledger(chip), self._before)
        self._latency.record(k, _latency(chip), self._before_s)


def _round(
    chip: Chip,
    arrays: list[str],
    tasks: HeadTasks,
    weights: list[torch.Tensor],
    inner_lrs: Rates,
    config: AdaptConfig,
    policy: UpdatePolicy,
    levels: torch.Tensor,
    progress: Callable[[int], object] | None = None,
    gradient_for: Callable[[ChipHead], Gradient] | None = None,
) -> dict[str, object]:
    before = _ledger(chip)
    states, deploy_written = _deploy(chip, arrays, weights, config, policy, levels)
    deploy_energy = _ledger(chip).delta(before)
    holder = ChipHead(chip, states, config, policy)
    curves = head.QueryCurves(tasks, config.steps)

    def observe(k: int, held: ChipHead) -> None:
        curves(k, held)
        if progress is not None:
            progress(1)

    gradient = head.gradients if gradient_for is None else gradient_for(holder)
    inner_loop(holder, tasks, inner_lrs, config.steps, gradient, observe=observe)
    after_bake = None
    if config.bake_seconds > 0:
        chip.advance(config.bake_seconds, config.bake_kelvin)
        after_bake = head.loss_and_accuracy(holder.forward(tasks.query_x)[-1], tasks.query_y)[1]
    return {
        "accuracy": curves.accuracy,
        "loss": curves.loss,
        **holder.counters,
        "energy_j": holder.energy,
        "latency_s": holder.latency,
        "deploy_energy_j": deploy_energy,
        "deploy_cells_written": deploy_written,
        "accuracy_after_bake": after_bake,
    }
