"""The simulations keep only the running (chip, image) pairs; their results must be the bits of
the dense loop they replace (every image on every chip until all chips decided it), pinned here
against a copy of that loop on seeded cases where pairs finish at very different times."""

from __future__ import annotations

import pytest
import torch

from memlearn.snn.model import CLASSES
from memlearn.snn.neuron import (
    NeuronConfig,
    NeuronState,
    final_decision,
    input_phase,
    input_spikes,
    integrate_and_fire,
    leader_margin,
)
from memlearn.snn.simulate import Synapses, chips_flat, run
from memlearn.snn.twolayer import LayerPair, run_two_layers

CFG = dict(t_max_s=120e-6, delta_s=3)


def _synapses(chips: int, rows: int, neurons: int, gen: torch.Generator) -> Synapses:
    dv = 0.05 * torch.randn(chips, rows, neurons, generator=gen)
    var = (0.01 * torch.rand(chips, rows, neurons, generator=gen)).square()
    g_row = 1e-4 * torch.rand(chips, rows, generator=gen)
    return Synapses(dv, g_row, var, 0.2)


def _drive(s, k_flat, var_flat, chips, gen):
    dv = (s @ k_flat).view(s.shape[0], chips, -1)
    if var_flat is not None:
        sigma = (s @ var_flat).clamp(min=0).sqrt().view(s.shape[0], chips, -1)
        dv = dv + sigma * torch.randn(dv.shape, generator=gen)
    return dv


def _dense(x, layers, cfg, gen):
    """The dense loop: a presentation stays in the working set until every chip decided it."""
    n, chips = x.shape[0], layers[0].dv.shape[0]
    flat = [(chips_flat(syn.dv), chips_flat(syn.dv_var)) for syn in layers[:1]]
    sizes = [syn.dv.shape[2] for syn in layers]
    keys = ("decision", "input", "spikes", "g_read", "stopped", "steps")
    out = {k: torch.zeros(n, chips, dtype=torch.float64) for k in keys}
    alive, phase = torch.arange(n), input_phase(n, cfg, gen)
    states = [NeuronState.zeros(n, chips, k) for k in sizes]
    active = torch.ones(n, chips, dtype=torch.bool)
    for step in range(cfg.steps):
        s = input_spikes(x[alive], phase[alive], step, cfg, gen)
        dv = _drive(s, *flat[0], chips, gen)
        act = active.float()
        out["input"][alive] += s.sum(dim=1, keepdim=True) * act
        out["g_read"][alive] += (s.double() @ layers[0].g_row.double().T) * act.double()
        out["steps"][alive] += act
        for i, syn in enumerate(layers):
            if i:
                h = pos.float() - neg.float()  # noqa: F821 - the previous layer's spikes
                hc = h.transpose(0, 1)
                dv = torch.bmm(hc, syn.dv).transpose(0, 1)
                sigma = torch.bmm(hc.abs(), syn.dv_var).clamp(min=0).sqrt().transpose(0, 1)
                dv = dv + sigma * torch.randn(dv.shape, generator=gen)
                out["spikes"][alive] += h.abs().sum(dim=-1)
            pos, neg = integrate_and_fire(states[i], dv, active, syn.theta, 2, cfg.rail_v)
        leader, lead = leader_margin(states[-1])
        done = active & (lead >= cfg.delta_s)
        out["decision"][alive] = torch.where(done, leader.double(), out["decision"][alive])
        out["stopped"][alive] += done.double()
        active = active & ~done
        if not bool(active.any()):
            break
        if step % 8 == 7:
            keep = active.any(dim=1)
            alive, active = alive[keep], active[keep]
            states = [NeuronState(t.v[keep], t.refractory[keep], t.pos[keep], t.neg[keep])
                      for t in states]  # fmt: skip
    last = final_decision(states[-1], layers[-1].theta).double()
    out["decision"][alive] = torch.where(active, last, out["decision"][alive])
    return {k: v.T for k, v in out.items()}


@pytest.mark.parametrize("coding", ["periodic", "poisson"])
def test_single_layer_is_the_dense_loop_bit_for_bit(coding: str) -> None:
    gen = torch.Generator().manual_seed(0)
    syn = _synapses(3, 144, CLASSES, gen)
    x = torch.rand(60, 144, generator=gen) * (torch.rand(60, 1, generator=gen) < 0.9)
    cfg = NeuronConfig(coding=coding, **CFG)
    res = run(x, syn, cfg, torch.Generator().manual_seed(1))
    ref = _dense(x, [syn], cfg, torch.Generator().manual_seed(1))
    assert 0 < float(res.stopped.double().mean()) < 1  # some pairs decide, some run out
    assert len(set(res.steps.flatten().tolist())) > 10  # at many different steps
    assert torch.equal(res.decision, ref["decision"].long())
    assert torch.equal(res.stopped, ref["stopped"].bool())
    assert torch.equal(res.input_spikes.double(), ref["input"])
    assert torch.equal(res.steps.double(), ref["steps"])
    assert torch.equal(res.g_read, ref["g_read"])


@pytest.mark.parametrize("coding", ["periodic", "poisson"])
def test_two_layers_are_the_dense_loop_bit_for_bit(coding: str) -> None:
    gen = torch.Generator().manual_seed(2)
    pair = LayerPair.scaled(_synapses(3, 144, 12, gen), _synapses(3, 12, CLASSES, gen), (1, 1))
    x = torch.rand(50, 144, generator=gen)
    cfg = NeuronConfig(coding=coding, **CFG)
    res = run_two_layers(x, pair, cfg, torch.Generator().manual_seed(3))
    ref = _dense(x, [pair.hidden, pair.output], cfg, torch.Generator().manual_seed(3))
    assert 0 < float(res.stopped.double().mean()) < 1
    assert len(set(res.steps.flatten().tolist())) > 10
    assert torch.equal(res.decision, ref["decision"].long())
    assert torch.equal(res.stopped, ref["stopped"].bool())
    assert torch.equal(res.input_spikes.double(), ref["input"])
    assert torch.equal(res.hidden_spikes.double(), ref["spikes"])
    assert torch.equal(res.steps.double(), ref["steps"])
    assert torch.equal(res.g_read_hidden, ref["g_read"])
