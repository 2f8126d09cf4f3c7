"""The 144-H-10 network spiking on simulated cells: hidden spikes drive the output layer.

Both layers are SPIRIT layers (``synapses``: 8 SLC cells per integer weight; ``neuron``: the
same integrate-and-fire circuit with positive and negative spikes).  In every time step the
input spikes reach the H hidden neurons (one read pulse on the input's row of the first array);
each hidden spike is a read pulse on its row of the second array whose current is copied onto
the 10 output neurons, with the injectors' sign swapped for a negative spike, in the same time
step (event by event).  The ΔS decision and the input coding are the single layer's.

Layer gains (the injectors' copy ratios, relative to ``INJECTOR_GAIN``; the comparators and
cells are unchanged): a hidden neuron fires at most ``r_max = 1 / (1 + refractory steps)``
spikes per step, at ``min(z p / theta_w, r_max)`` for a drive of ``z`` weight units per
white-pixel rate ``p`` spikes per step, a clipped line.  Its gain makes that line's slope, in
units of ``r_max``, the trained tanh's slope ``beta_1`` at the origin (the offline equivalence
of the neuron and the tanh [P], per layer), capped so that one ±4 event on a membrane just
below threshold stays inside the rails (``NeuronConfig.rail_v``) [E] (a larger event would be
clipped: the neuron would lose charge and become a binary unit).  The output layer's gain
follows the data-based normalisation of spiking networks (Diehl et al., IJCNN 2015; robust form
with a percentile: Rueckauer et al., Front. Neurosci. 2017 [P]): the ``GAIN_PERCENTILE``
quantile of the largest output drive over calibration (training) images maps to ``r_max``, so
outputs rarely saturate and the leader's rate still ranks the classes; the tanh's ``beta_2``
does not change the decision, like the single layer's.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from memlearn.errors import MemlearnError
from memlearn.snn.model import CLASSES, W_MAX, check_inputs
from memlearn.snn.neuron import (
    THRESHOLD_WEIGHT_UNITS,
    NeuronConfig,
    final_decision,
    input_phase,
    input_spikes,
    integrate_and_fire,
    leader_margin,
)
from memlearn.snn.pairs import Pairs, noisy_step
from memlearn.snn.simulate import Synapses, chips_flat

GAIN_PERCENTILE = 0.999  # [P] Rueckauer et al. 2017: 99.9th percentile of the activations


def rail_max_scale(rail_w: float) -> float:
    """Largest hidden-layer gain at which a ±4 event on a membrane at the threshold stays
    inside the rails ``rail_w`` (weight units)."""
    return (rail_w - THRESHOLD_WEIGHT_UNITS) / W_MAX


def layer_scales(
    beta: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    x_cal: torch.Tensor,
    cfg: NeuronConfig,
    theta: float,
) -> tuple[float, float]:
    """Injector gains of the hidden and output layers relative to ``INJECTOR_GAIN``; see the
    module docstring.  ``x_cal [M, 144]``: calibration intensities (training images);
    ``theta``: the comparator threshold (V) of the cells' preset (``neuron.threshold``); the
    rails are ``cfg.rail_v`` (V; ``inf``: no rails, so no cap on the hidden gain)."""
    if not cfg.rail_v > theta:
        raise MemlearnError(
            f"rail_v ({cfg.rail_v:g} V) must exceed the comparator threshold ({theta:g} V): "
            "a membrane clipped below it never spikes"
        )
    p = cfg.rate_hz * cfg.dt_s
    r_max = 1.0 / (1 + cfg.refractory_steps)
    rail_w = cfg.rail_v / theta * THRESHOLD_WEIGHT_UNITS  # the rail in weight units
    s1 = min(float(beta[0]) * THRESHOLD_WEIGHT_UNITS * r_max / p, rail_max_scale(rail_w))
    h = (float(beta[0]) * (check_inputs(x_cal) @ w1.float())).clamp(-1.0, 1.0)
    top = (h @ w2.float()).abs().amax(dim=1)
    m = float(top.kthvalue(max(1, round(GAIN_PERCENTILE * top.numel()))).values)
    if not m > 0:
        raise MemlearnError("the calibration images give no output drive (all-zero weights?)")
    return s1, THRESHOLD_WEIGHT_UNITS / m


@dataclass(frozen=True)
class LayerPair:
    """Both layers' synapses (``hidden``: ``dv [n, 144, H]``; ``output``: ``dv [n, H, 10]``),
    their ``dv`` already multiplied by ``scales`` (the injector gains of ``layer_scales``)."""

    hidden: Synapses
    output: Synapses
    scales: tuple[float, float]

    @classmethod
    def scaled(cls, hidden: Synapses, output: Synapses, scales: tuple[float, float]):
        def scale(syn: Synapses, k: float) -> Synapses:
            var = None if syn.dv_var is None else syn.dv_var * k**2
            return replace(syn, dv=syn.dv * k, dv_var=var)

        if hidden.dv.shape[2] != output.dv.shape[1] or hidden.dv.shape[0] != output.dv.shape[0]:
            raise MemlearnError(
                f"layer shapes do not chain: {list(hidden.dv.shape)} then {list(output.dv.shape)}"
            )
        return cls(scale(hidden, scales[0]), scale(output, scales[1]), scales)


@dataclass
class TwoLayerRun:
    """Per (chip, image) results, each ``[n_chips, N]``, as ``simulate.SpikeRun`` with the
    hidden layer's spikes (positive + negative) and the conductance (S) of both arrays' cells
    read (``g_read_hidden``: rows of the first array, one per input spike; ``g_read_output``:
    rows of the second, one per hidden spike)."""

    decision: torch.Tensor
    input_spikes: torch.Tensor
    hidden_spikes: torch.Tensor
    output_spikes: torch.Tensor
    g_read_hidden: torch.Tensor
    g_read_output: torch.Tensor
    stopped: torch.Tensor
    steps: torch.Tensor


RESULTS = ("input_spikes", "hidden_spikes", "output_spikes", "g_read_hidden", "g_read_output",
           "steps")  # fmt: skip
DOUBLE_SUMS = ("g_read_hidden", "g_read_output")


def _first_layer(
    s: torch.Tensor,
    pair: LayerPair,
    flat: tuple[torch.Tensor, torch.Tensor | None, torch.Tensor],
    work: Pairs,
    gen: torch.Generator,
) -> torch.Tensor:
    """Hidden membrane steps (V) ``[P, H]`` of input spikes ``s [A, 144]`` through ``flat``
    (``chips_flat`` steps and noise variances, row conductances ``[144, chips]``); adds the
    input spikes and the first array's conductance read (S) to ``work.sums``."""
    k1, v1, g1 = flat
    a, hid = s.shape[0], pair.hidden.dv.shape[2]
    rows = work.rows
    mean = (s @ k1).view(-1, hid)
    var = None if v1 is None else (s @ v1).view(-1, hid)
    dv = noisy_step(mean, var, (a, work.chips, hid), rows, gen)
    work.sums["input_spikes"] += s.sum(dim=1)[work.image_rows]
    work.sums["g_read_hidden"] += (s.double() @ g1).view(-1)[rows]
    return dv


def _second_layer(
    h: torch.Tensor, a: int, pair: LayerPair, work: Pairs, gen: torch.Generator
) -> torch.Tensor:
    """Output membrane steps (V) ``[P, 10]`` of signed hidden spikes ``h [P, H]`` (+1 / -1 /
    0), each pair through its own chip's synapses, with read noise; adds the hidden spikes and
    the second array's conductance read to ``work.sums``."""
    syn, chips, hid = pair.output, work.chips, h.shape[1]
    dense = torch.zeros(a * chips, hid)
    dense[work.rows] = h
    hc = dense.view(a, chips, hid).transpose(0, 1)
    img, chip = work.image_rows, work.chip
    mean = torch.bmm(hc, syn.dv)[chip, img]
    dv = mean
    if syn.dv_var is not None:
        noise = torch.bmm(hc.abs(), syn.dv_var)[chip, img].clamp_(min=0).sqrt_()
        z = torch.randn((a, chips, CLASSES), generator=gen).view(-1, CLASSES)[work.rows]
        dv = noise.mul_(z).add_(mean)
    spikes = h.abs()
    work.sums["hidden_spikes"] += spikes.sum(dim=-1)
    work.sums["g_read_output"] += (spikes.double() * pair.output.g_row.double()[chip]).sum(dim=-1)
    return dv


def run_two_layers(
    x: torch.Tensor, pair: LayerPair, cfg: NeuronConfig, gen: torch.Generator, progress=None
) -> TwoLayerRun:
    """Classify ``x [N, 144]`` on every chip of ``pair``; see the module docstring.  Only the
    running (chip, image) pairs are simulated (``pairs``); the random draws are those of the
    whole working set of images, so a seeded run gives the same bits however pairs finish."""
    x = check_inputs(x)
    cfg.check()
    n, chips, hid = x.shape[0], pair.hidden.dv.shape[0], pair.hidden.dv.shape[2]
    var = None if pair.hidden.dv_var is None else chips_flat(pair.hidden.dv_var)
    flat = (chips_flat(pair.hidden.dv), var, pair.hidden.g_row.double().T)
    sums = {k: torch.float64 if k in DOUBLE_SUMS else torch.float32 for k in RESULTS}
    out = {k: torch.zeros(n * chips, dtype=dt) for k, dt in sums.items()}
    out["decision"] = torch.zeros(n * chips, dtype=torch.long)
    out["stopped"] = torch.zeros(n * chips, dtype=torch.bool)
    work = Pairs.start(n, chips, (hid, CLASSES), sums)
    alive, refr = torch.arange(n), cfg.refractory_steps
    phase = input_phase(n, cfg, gen)
    for step in range(cfg.steps):
        s = input_spikes(x[alive], phase[alive], step, cfg, gen)
        hs, os = work.states
        dv1 = _first_layer(s, pair, flat, work, gen)
        hp, hn = integrate_and_fire(hs, dv1, None, pair.hidden.theta, refr, cfg.rail_v)
        dv2 = _second_layer(hp.float() - hn.float(), s.shape[0], pair, work, gen)
        pos, neg = integrate_and_fire(os, dv2, None, pair.output.theta, refr, cfg.rail_v)
        work.sums["output_spikes"] += (pos | neg).sum(dim=-1).float()
        work.sums["steps"] += 1.0
        leader, lead = leader_margin(os)
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
    last = final_decision(work.states[1], pair.output.theta)
    work.record(torch.ones_like(work.pid, dtype=torch.bool), out, last, False)
    fields = ("decision", "input_spikes", "hidden_spikes", "output_spikes", "g_read_hidden",
              "g_read_output", "stopped", "steps")  # fmt: skip
    return TwoLayerRun(*(out[k].view(n, chips).T.contiguous() for k in fields))
