"""The spiking layer run in time steps, vectorised over images and chips.

``run`` takes intensities ``[N, 144]`` and per-chip synapses (net conductance ``[n_chips, 144,
10]``, the read conductance of every row's 80 cells ``[n_chips, 144]``, optionally the read-noise
variance of each synapse) and returns per (chip, image) the decision, the input spikes and the
output spikes until the decision, and the summed conductance of the cells read (S, for the
energy ledger).  Loops run over time steps only; finished (chip, image) pairs leave the
working set (``pairs``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memlearn.snn.model import CLASSES, check_inputs, check_weights
from memlearn.snn.neuron import (
    THRESHOLD_WEIGHT_UNITS,
    NeuronConfig,
    NeuronState,
    final_decision,
    input_phase,
    input_spikes,
    integrate_and_fire,
    leader_margin,
)
from memlearn.snn.pairs import Pairs, noisy_step


@dataclass
class SpikeRun:
    """Per (chip, image) results, each ``[n_chips, N]``: ``decision`` (class), ``input_spikes``,
    ``output_spikes`` (positive + negative), ``g_read`` (S summed over every cell read),
    ``stopped`` (the ΔS criterion was met before ``t_max_s``), ``steps`` (time steps used)."""

    decision: torch.Tensor
    input_spikes: torch.Tensor
    output_spikes: torch.Tensor
    g_read: torch.Tensor
    stopped: torch.Tensor
    steps: torch.Tensor


@dataclass(frozen=True)
class Synapses:
    """What the simulation needs of the cells: ``dv`` (V per input spike, ``[n, 144, 10]``),
    ``g_row`` (S, all 80 cells of a row, ``[n, 144]``), ``dv_var`` (V^2 read-noise variance of
    ``dv`` per event, ``[n, 144, 10]``, or ``None``), ``theta`` (comparator threshold, V)."""

    dv: torch.Tensor
    g_row: torch.Tensor
    dv_var: torch.Tensor | None
    theta: float


def chips_flat(t: torch.Tensor) -> torch.Tensor:
    """Per-chip ``[n_chips, rows, neurons]`` -> ``[rows, n_chips * neurons]`` (one matmul
    serves every chip)."""
    return t.permute(1, 0, 2).reshape(t.shape[1], -1)


SUMS = {"input_spikes": torch.float32, "output_spikes": torch.float32,
        "g_read": torch.float64, "steps": torch.float32}  # fmt: skip


def run(
    x: torch.Tensor, syn: Synapses, cfg: NeuronConfig, gen: torch.Generator, progress=None
) -> SpikeRun:
    """Classify ``x [N, 144]`` on every chip of ``syn``; see the module docstring.  Only the
    running (chip, image) pairs are simulated (``pairs``); the random draws are those of the
    whole working set of images, so a seeded run gives the same bits however pairs finish."""
    x = check_inputs(x)
    cfg.check()
    n, chips = x.shape[0], syn.dv.shape[0]
    k_flat = chips_flat(syn.dv)
    var_flat = None if syn.dv_var is None else chips_flat(syn.dv_var)
    g_row = syn.g_row.double().T
    out = {k: torch.zeros(n * chips, dtype=dt) for k, dt in SUMS.items()}
    out["decision"] = torch.zeros(n * chips, dtype=torch.long)
    out["stopped"] = torch.zeros(n * chips, dtype=torch.bool)
    work = Pairs.start(n, chips, (CLASSES,), SUMS)
    alive = torch.arange(n)
    phase = input_phase(n, cfg, gen)
    for step in range(cfg.steps):
        s = input_spikes(x[alive], phase[alive], step, cfg, gen)
        rows = work.rows
        var = None if var_flat is None else (s @ var_flat).view(-1, CLASSES)
        dv = noisy_step(
            (s @ k_flat).view(-1, CLASSES), var, (s.shape[0], chips, CLASSES), rows, gen
        )
        work.sums["input_spikes"] += s.sum(dim=1)[work.image_rows]
        work.sums["g_read"] += (s.double() @ g_row).view(-1)[rows]
        work.sums["steps"] += 1.0
        st = work.states[0]
        pos, neg = integrate_and_fire(st, dv, None, syn.theta, cfg.refractory_steps, cfg.rail_v)
        work.sums["output_spikes"] += (pos | neg).sum(dim=-1).float()
        leader, lead = leader_margin(st)
        done = lead >= cfg.delta_s
        if bool(done.any()):
            work.record(done, out, leader, True)
        if progress is not None:
            progress(step)
        if work.pid.numel() == 0:
            break
        if step % 8 == 7:
            keep = work.shrink_images(alive.numel())
            if keep is not None:
                alive = alive[keep]
    work.record(
        torch.ones_like(work.pid, dtype=torch.bool),
        out,
        final_decision(work.states[0], syn.theta),
        False,
    )
    fields = ("decision", "input_spikes", "output_spikes", "g_read", "stopped", "steps")
    return SpikeRun(*(out[k].view(n, chips).T.contiguous() for k in fields))


def trace(
    x: torch.Tensor, syn: Synapses, cfg: NeuronConfig, gen: torch.Generator
) -> dict[str, torch.Tensor]:
    """One image ``x [144]`` on chip 0 of ``syn``, recorded step by step until the decision:
    ``v`` (V, ``[T, 10]``), ``pos`` / ``neg`` output spikes and ``inputs`` (``[T, 144]``)."""
    x = check_inputs(x.view(1, -1))
    cfg.check()
    st = NeuronState.zeros(1, 1, CLASSES)
    on = torch.ones(1, 1, dtype=torch.bool)
    rec: dict[str, list[torch.Tensor]] = {"v": [], "pos": [], "neg": [], "inputs": []}
    phase = input_phase(1, cfg, gen)
    for step in range(cfg.steps):
        s = input_spikes(x, phase, step, cfg, gen)
        dv = (s @ syn.dv[0]).view(1, 1, CLASSES)
        pos, neg = integrate_and_fire(st, dv, on, syn.theta, cfg.refractory_steps, cfg.rail_v)
        for key, value in (("v", st.v), ("pos", pos), ("neg", neg), ("inputs", s)):
            rec[key].append(value.reshape(-1).clone())
        if float(leader_margin(st)[1]) >= cfg.delta_s:
            break
    return {k: torch.stack(v) for k, v in rec.items()}


def input_spikes_estimate(
    x: torch.Tensor, w: torch.Tensor, delta_s: int, theta_w: float = THRESHOLD_WEIGHT_UNITS
) -> torch.Tensor:
    """Input spikes ``[N]`` each image needs to reach the ΔS decision, without simulation.

    An input spike of pixel ``i`` adds ``w_ij`` weight units to neuron ``j``; pixels fire in
    proportion to their intensity, so per input spike the leader gains ``(z_1 - z_2) / sum(x)``
    weight units on the second (``z = x @ w``, ideal cells, no rails or refractory limit), and
    a lead of ΔS output spikes takes ``ΔS theta_w`` weight units (``theta_w``: the comparator
    threshold in weight units).  Hence ``N = ΔS theta_w sum(x) / (z_1 - z_2)``: the count is
    set by ΔS, the threshold and the trained layer's margin; near-ties need very many."""
    x, w = check_inputs(x), check_weights(w).float()
    top = (x @ w).topk(2, dim=1).values
    margin = (top[:, 0] - top[:, 1]).clamp(min=1e-9)
    return delta_s * theta_w * x.sum(dim=1) / margin
