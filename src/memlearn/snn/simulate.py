"""The spiking layer run in time steps, vectorised over images and chips.

``run`` takes intensities ``[N, 144]`` and per-chip synapses (net conductance ``[n_chips, 144,
10]``, the read conductance of every row's 80 cells ``[n_chips, 144]``, optionally the read-noise
variance of each synapse) and returns per (chip, image) the decision, the input spikes and the
output spikes until the decision, and the summed conductance of the cells read (S, for the
energy ledger).  Loops run over time steps only; finished images leave the working set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from memlearn.snn.twolayer import TwoLayerRun


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


def synaptic_drive(
    s: torch.Tensor,
    k_flat: torch.Tensor,
    var_flat: torch.Tensor | None,
    chips: int,
    gen: torch.Generator,
) -> torch.Tensor:
    """Membrane steps (V) ``[N, chips, neurons]`` of input spikes ``s [N, rows]`` through
    ``chips_flat`` synapses, with read noise of variance ``var_flat`` (``None``: none)."""
    dv = (s @ k_flat).view(s.shape[0], chips, -1)
    if var_flat is not None:
        sigma = (s @ var_flat).clamp(min=0).sqrt().view(s.shape[0], chips, -1)
        dv = dv + sigma * torch.randn(dv.shape, generator=gen)
    return dv


def select_state(st: NeuronState, keep: torch.Tensor) -> NeuronState:
    """The neurons of the images still being presented (``keep``: one flag per image)."""
    return NeuronState(st.v[keep], st.refractory[keep], st.pos[keep], st.neg[keep])


def decide(
    out: SpikeRun | TwoLayerRun,
    alive: torch.Tensor,
    active: torch.Tensor,
    st: NeuronState,
    delta_s: int,
) -> torch.Tensor:
    """Record the decision of every presentation whose leader is ``delta_s`` output spikes
    ahead (``out.decision``, ``out.stopped`` at rows ``alive``); the presentations still on."""
    leader, lead = leader_margin(st)
    done = active & (lead >= delta_s)
    out.decision[alive] = torch.where(done, leader, out.decision[alive])
    out.stopped[alive] |= done
    return active & ~done


def run(
    x: torch.Tensor, syn: Synapses, cfg: NeuronConfig, gen: torch.Generator, progress=None
) -> SpikeRun:
    """Classify ``x [N, 144]`` on every chip of ``syn``; see the module docstring."""
    x = check_inputs(x)
    cfg.check()
    n, chips = x.shape[0], syn.dv.shape[0]
    k_flat = chips_flat(syn.dv)
    var_flat = None if syn.dv_var is None else chips_flat(syn.dv_var)
    out = SpikeRun(
        decision=torch.zeros(n, chips, dtype=torch.long),
        input_spikes=torch.zeros(n, chips),
        output_spikes=torch.zeros(n, chips),
        g_read=torch.zeros(n, chips, dtype=torch.float64),
        stopped=torch.zeros(n, chips, dtype=torch.bool),
        steps=torch.zeros(n, chips),
    )
    alive = torch.arange(n)
    phase = input_phase(n, cfg, gen)
    st = NeuronState.zeros(n, chips, CLASSES)
    active = torch.ones(n, chips, dtype=torch.bool)
    for step in range(cfg.steps):
        s = input_spikes(x[alive], phase[alive], step, cfg, gen)
        dv = synaptic_drive(s, k_flat, var_flat, chips, gen)
        act = active.float()
        out.input_spikes[alive] += s.sum(dim=1, keepdim=True) * act
        out.g_read[alive] += (s.double() @ syn.g_row.double().T) * act.double()
        out.steps[alive] += act
        pos, neg = integrate_and_fire(st, dv, active, syn.theta, cfg.refractory_steps, cfg.rail_v)
        out.output_spikes[alive] += (pos | neg).sum(dim=-1).float()
        active = decide(out, alive, active, st, cfg.delta_s)
        if progress is not None:
            progress(step)
        if not bool(active.any()):
            break
        if step % 8 == 7:
            keep = active.any(dim=1)
            if not bool(keep.all()):
                alive, active = alive[keep], active[keep]
                st = select_state(st, keep)
    last = final_decision(st, syn.theta)
    out.decision[alive] = torch.where(active, last, out.decision[alive])
    return SpikeRun(*(t.T.contiguous() for t in vars(out).values()))


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
