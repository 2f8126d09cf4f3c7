"""Where the on-chip accuracy goes: the gap to ideal software, non-ideality by non-ideality.

The same tasks (features computed once) are adapted

- in ideal float (the software reference, :func:`memlearn.onchip.head.software_adapt`);
- in float on the chip's levels with the loop's policy and full scale
  (:func:`memlearn.onchip.calibration.quantised_adapt`: the loss of the loop's design, no
  device);
- on simulated chips with every non-ideality (the chip as configured), with each one switched
  off in turn (*remove one*: the accuracy it costs on the real chip), and on an ideal chip with
  each one switched on alone (*add one*: what it costs by itself);
- on the real chip with the loop's former design choices (full scale from the adaptation peak,
  nearest rounding), so their effect is measured on the same tasks.

Every row uses the same tasks, the same chip seed (the same device-to-device samples) and the
same loop seed.  The switches (:data:`NON_IDEALITIES`):

``programming``
    programming spread (switching cycle-to-cycle and device-to-device spread, the verify band,
    verify-read noise, the relaxation within the settle time): *off* = oracle programming, each
    written cell left exactly on its target.  A what-if bound, not a device model: the written
    cells still get the pulses, verify reads and energy of the real program-and-verify.
``read noise``
    noise of the conductance reads before each gradient and of every VMM (``read_noise=False``).
``converters``
    DAC and ADC resolution and ranges (``dac_bits = adc_bits = None``: no rounding, no clipping).
``relaxation``
    relaxation and drift after programming (the preset's ``relax_*`` parameters set to 0).
``stuck cells``
    stuck-low / stuck-high cells (their rates set to 0).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from memlearn.chip.base import Chip, ChipLayout, ProgramReport
from memlearn.chip.simulated import SimulatedChip
from memlearn.devices.preset import PARAMETERS, DevicePreset, load_preset
from memlearn.meta.inner import HeadTasks
from memlearn.nn.rates import Rates
from memlearn.onchip.calibration import quantised_adapt
from memlearn.onchip.config import AdaptConfig
from memlearn.onchip.deploy import DeployConfig, repaired_chip
from memlearn.onchip.head import software_adapt
from memlearn.onchip.loop import adapt_on_chip
from memlearn.onchip.policies import DEFAULT_POLICY
from memlearn.stats import ci95

NON_IDEALITIES = ("programming", "read noise", "converters", "relaxation", "stuck cells")

# the relaxation amplitudes (siemens) of the preset's drift table; time constants stay
_RELAX = tuple(k for k, (table, unit, _) in PARAMETERS.items() if table == "drift" and unit == "S")


class OracleProgrammingChip(SimulatedChip):
    """A :class:`SimulatedChip` whose written cells land exactly on their targets (what-if).

    ``program`` runs the real program-and-verify (pulses, verify reads, energy, failures are
    reported as simulated), then puts every healthy cell it was asked to change exactly on its
    target and lets it relax for the preset's ``settle_s`` from there, as a programmed cell
    does.  Stuck cells stay stuck.  For attribution studies only.
    """

    def program(
        self,
        array: str,
        g_plus: torch.Tensor,
        g_minus: torch.Tensor,
        strategy: str = "hybrid",
        mask: torch.Tensor | None = None,
    ) -> ProgramReport:
        target = torch.stack((g_plus, g_minus), dim=-1).float()
        changed = target != torch.stack(self.last_targets(array), dim=-1)
        if mask is not None:
            changed &= mask[..., None]
        report = super().program(array, g_plus, g_minus, strategy, mask)
        self.place(array, g_plus, g_minus, changed)
        return report


def _preset_without(preset: DevicePreset, parts: set[str]) -> DevicePreset:
    changes: dict[str, float] = {}
    if "relaxation" in parts:
        changes.update({k: 0.0 for k in _RELAX if k in preset.values})
    if "stuck cells" in parts:
        changes.update(stuck_low_rate=0.0, stuck_high_rate=0.0)
    return preset.replace(**changes) if changes else preset


def make_chip(
    n_chips: int,
    preset: DevicePreset,
    layout: ChipLayout,
    levels: int,
    seed: int,
    ideal: set[str] | frozenset[str] = frozenset(),
) -> SimulatedChip:
    """``n_chips`` simulated chips with the non-idealities named in ``ideal`` switched off."""
    unknown = set(ideal) - set(NON_IDEALITIES)
    if unknown:
        raise ValueError(f"unknown non-ideality {sorted(unknown)}; allowed: {list(NON_IDEALITIES)}")
    cls = OracleProgrammingChip if "programming" in ideal else SimulatedChip
    converters = {"adc_bits": None, "dac_bits": None} if "converters" in ideal else {}
    return cls(
        n_chips,
        preset=_preset_without(preset, set(ideal)),
        layout=layout,
        levels=levels,
        seed=seed,
        read_noise="read noise" not in ideal,
        **converters,
    )


def gap_chip(
    n_chips: int,
    preset: DevicePreset,
    layout: ChipLayout,
    levels: int,
    seed: int,
    spare_pairs: int,
    strategy: str,
    ideal: set[str] | frozenset[str] = frozenset(),
) -> Chip:
    """A row's chip: :func:`make_chip` on the model's ``layout`` with ``spare_pairs`` beside its
    output array, repaired as every deployment is (:func:`memlearn.onchip.deploy.repaired_chip`)."""

    def make(physical: ChipLayout) -> Chip:
        return make_chip(n_chips, preset, physical, levels, seed, ideal)

    return repaired_chip(make, layout, spare_pairs, strategy)


@dataclass
class GapRow:
    """One configuration: ``accuracy`` per task and step ``[T, K+1]``; ``delta`` = final
    accuracy minus the reference row's, mean over tasks, with the 95 % half-width of the paired
    per-task difference (fractions)."""

    group: str
    name: str
    accuracy: torch.Tensor
    delta: float = float("nan")
    delta_ci95: float = float("nan")
    energy_j: float = float("nan")
    writes: float = float("nan")

    @property
    def final(self) -> float:
        return float(self.accuracy[:, -1].mean())

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group,
            "name": self.name,
            "accuracy_by_step": [float(a) for a in self.accuracy.mean(dim=0)],
            "final": self.final,
            "delta": self.delta,
            "delta_ci95": self.delta_ci95,
            "energy_per_adaptation_j": self.energy_j,
            "writes_per_adaptation": self.writes,
        }


@dataclass
class GapStudy:
    rows: list[GapRow] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    def row(self, name: str) -> GapRow:
        for r in self.rows:
            if r.name == name:
                return r
        raise KeyError(f"no row {name!r}; rows: {[r.name for r in self.rows]}")

    def as_dict(self) -> dict[str, Any]:
        return {"info": self.info, "rows": [r.as_dict() for r in self.rows]}


def _paired(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    diff = (a[:, -1] - b[:, -1]).double()
    return float(diff.mean()), ci95(diff)


def attribute_gap(
    support_x: torch.Tensor,
    support_y: torch.Tensor,
    query_x: torch.Tensor,
    query_y: torch.Tensor,
    weights: list[torch.Tensor],
    inner_lrs: Rates,
    layout: ChipLayout,
    *,
    weight_max: list[float],
    peak_weight_max: list[float] | None = None,
    preset: str | DevicePreset = "hfo2-mlc",
    strategy: str = "hybrid",
    policy: str = DEFAULT_POLICY,
    levels: int = 8,
    steps: int = 5,
    seed: int = 0,
    max_chips: int | None = None,
    spare_pairs: int = 0,
    progress: Callable[[int, int], object] | None = None,
) -> GapStudy:
    """Run every row of the study (see the module docstring) on the same ``T`` tasks.

    ``weight_max``: the loop's full scale per layer; ``peak_weight_max``: the former peak rule's
    (adds the *design* rows).  ``max_chips`` bounds the chips simulated at once (tasks then run
    in rounds; default: one chip per task).  ``spare_pairs``: spare column pairs of the output
    array, each chip repaired as ``memlearn adapt`` does (:func:`gap_chip`).
    ``progress(done, total)`` is called after each configuration run on chips.
    """
    p = load_preset(preset)
    tasks = support_x.shape[0]
    n_chips = min(tasks, max_chips or tasks)
    study = GapStudy(
        info={
            "tasks": tasks,
            "chips": n_chips,
            "preset": p.name,
            "strategy": strategy,
            "policy": policy,
            "levels": levels,
            "steps": steps,
            "seed": seed,
            "weight_max": list(weight_max),
            "peak_weight_max": None if peak_weight_max is None else list(peak_weight_max),
            "spare_pairs": spare_pairs,
        }
    )
    feats = HeadTasks(support_x, support_y, query_x, query_y)
    soft, _ = software_adapt(feats, weights, inner_lrs, steps)
    level_g = p.levels(levels)
    quant, _ = quantised_adapt(feats, weights, inner_lrs, steps, weight_max, level_g, policy, seed)
    design = _design(policy, weight_max, peak_weight_max)
    on_chip = _GapChips(
        feats, weights, inner_lrs, layout, p, strategy, levels, level_g, steps, seed, n_chips,
        spare_pairs, progress, 2 + 2 * len(NON_IDEALITIES) + len(design),
    )  # fmt: skip
    everything = frozenset(NON_IDEALITIES)
    real = on_chip("chip", "the chip", frozenset(), policy, weight_max)
    ideal = on_chip("chip", "ideal chip", everything, policy, weight_max)
    rows = [
        GapRow("reference", "ideal software (float)", soft),
        GapRow("loop design", "float on the levels (no device)", quant),
        ideal,
        real,
    ]
    for part in NON_IDEALITIES:
        row = on_chip("remove one", f"without {part}", frozenset({part}), policy, weight_max)
        row.delta, row.delta_ci95 = _paired(row.accuracy, real.accuracy)
        rows.append(row)
    for part in NON_IDEALITIES:
        row = on_chip("add one", f"only {part}", everything - {part}, policy, weight_max)
        row.delta, row.delta_ci95 = _paired(row.accuracy, ideal.accuracy)
        rows.append(row)
    rows += _design_rows(on_chip, real, design)
    for row in rows[1:4]:
        row.delta, row.delta_ci95 = _paired(row.accuracy, soft)
    study.rows = rows
    return study


@dataclass
class _GapChips:
    """The chips of the study's rows: every row adapts the same tasks on fresh chips."""

    feats: HeadTasks
    weights: list[torch.Tensor]
    inner_lrs: Rates
    layout: ChipLayout
    preset: DevicePreset
    strategy: str
    levels: int
    level_g: torch.Tensor
    steps: int
    seed: int
    n_chips: int
    spare_pairs: int
    progress: Callable[[int, int], object] | None = None
    total: int = 0
    done: int = 0

    def __call__(
        self, group: str, name: str, ideal: frozenset[str], policy: str, wmax: list[float]
    ) -> GapRow:
        """One row: the loop with ``policy`` and full scale ``wmax`` on chips whose
        non-idealities ``ideal`` are removed."""
        chip = gap_chip(
            self.n_chips, self.preset, self.layout, self.levels, self.seed, self.spare_pairs,
            self.strategy, ideal,
        )  # fmt: skip
        config = AdaptConfig(
            steps=self.steps, strategy=self.strategy, policy=policy, levels=self.level_g,
            weight_max=wmax, seed=self.seed,
        )  # fmt: skip
        res = adapt_on_chip(chip, self.feats, self.weights, self.inner_lrs, config)
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)
        return GapRow(
            group,
            name,
            res.accuracy,
            energy_j=float(res.energy_per_adaptation().mean()),
            writes=float(res.cells_written.sum(dim=1).double().mean()),
        )


def _design(
    policy: str, weight_max: list[float], peak_weight_max: list[float] | None
) -> list[tuple[str, str, list[float]]]:
    """The *design* rows (name, policy, full scale) that differ from the chip's own design."""
    design = [("nearest rounding (verify)", "verify", list(weight_max))]
    if peak_weight_max is not None:
        design.append(("peak full scale", policy, list(peak_weight_max)))
        design.append(("former loop: peak + nearest", "verify", list(peak_weight_max)))
    done = {(policy, tuple(weight_max))}  # the chip's own design: no row of its own
    rows = []
    for name, pol, wmax in design:
        if (pol, tuple(wmax)) not in done:
            done.add((pol, tuple(wmax)))
            rows.append((name, pol, wmax))
    return rows


def _design_rows(
    on_chip: _GapChips, real: GapRow, design: list[tuple[str, str, list[float]]]
) -> list[GapRow]:
    """The *design* rows: the loop's former choices on the real chip, against ``real``."""
    rows = []
    for name, pol, wmax in design:
        row = on_chip("design (on the real chip)", name, frozenset(), pol, wmax)
        row.delta, row.delta_ci95 = _paired(row.accuracy, real.accuracy)
        rows.append(row)
    return rows


def gap_study(
    config: DeployConfig, progress: Callable[[int, int], object] | None = None
) -> GapStudy:
    """:func:`attribute_gap` of a deployment (:func:`memlearn.onchip.deploy.prepare`): its
    tasks, levels, full scale (and the peak rule's) and spare pairs; ``config.chips`` bounds the
    chips simulated at once (``progress``: as :func:`attribute_gap`'s)."""
    import time

    from memlearn.onchip.deploy import deployment_weight_max, prepare
    from memlearn.onchip.run import head_weights, task_features

    d = prepare(config)
    level_g = load_preset(config.preset_name).levels(d.levels)
    wmax, wmax_from = deployment_weight_max(d, level_g)
    peak, _ = deployment_weight_max(d, level_g, "peak")
    started = time.perf_counter()
    study = attribute_gap(
        task_features(d.net, d.tasks.support_x), d.tasks.support_y.long(),
        task_features(d.net, d.tasks.query_x), d.tasks.query_y.long(),
        head_weights(d.net), d.inner_lrs, d.layout,
        weight_max=wmax, peak_weight_max=peak, preset=config.preset_name,
        strategy=config.strategy, policy=config.policy, levels=d.levels, steps=config.steps,
        seed=config.seed, max_chips=config.chips, spare_pairs=d.spare_pairs, progress=progress,
    )  # fmt: skip
    ways = int(d.net.fc2.weight.shape[0])
    study.info.update(split=d.split, weight_max_source=wmax_from, ways=ways, shots=config.shots)
    study.info["seconds"] = time.perf_counter() - started
    return study
