"""``evaluate_hidden``: the 144-H-10 network on ``n_chips`` simulated chips, with its ledger.

The single layer's ``evaluate`` for two layers: both integer-weight matrices programmed into
SLC cells of the same preset and strategy (``synapses``; two arrays per chip), relaxed for
``hours`` and disturbed by ``reads``; the two layers spike together (``twolayer``) with the
layer gains of ``twolayer.layer_scales`` (calibrated on training images).  The event and energy
ledger adds both layers' lines (``energy.breakdown`` per layer: input spikes on the first
array, hidden spikes on the second).  Reference lines on the same images: the tanh network
with the integer weights (``accuracy_ideal``), its float twin (``accuracy_float``), and the
spiking network on ideal cells (``accuracy_spiking_ideal_cells``, with its agreement with the
tanh network's decisions).
"""

from __future__ import annotations

from dataclasses import asdict

import torch

from memlearn.devices.preset import DevicePreset
from memlearn.errors import MemlearnError
from memlearn.snn import energy
from memlearn.snn.evaluate import EvalConfig, chip_synapses, ideal_synapses, summarise
from memlearn.snn.hidden import HiddenWeights
from memlearn.snn.model import CLASSES, INPUTS, accuracy, check_inputs
from memlearn.snn.neuron import INJECTOR_GAIN
from memlearn.snn.simulate import SpikeRun
from memlearn.snn.synapses import CELLS_PER_SYNAPSE, SynapseArray
from memlearn.snn.twolayer import LayerPair, TwoLayerRun, layer_scales, run_two_layers

CALIBRATION_IMAGES = 10_000  # [E] training images that calibrate the layer gains


def two_layer_ledger(
    res: TwoLayerRun, hidden: int, v_read: float, pulse_s: float, scales: tuple[float, float]
) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """Energy lines (J) per (chip, image) of the hidden layer (input spikes on the first array,
    ``hidden`` neurons each) and of the output layer (hidden spikes on the second)."""
    first = energy.breakdown(
        res.input_spikes, res.hidden_spikes, res.g_read_hidden, v_read, pulse_s,
        fanout=hidden, injector_gain=INJECTOR_GAIN * scales[0],
    )  # fmt: skip
    second = energy.breakdown(
        res.hidden_spikes, res.output_spikes, res.g_read_output, v_read, pulse_s,
        fanout=CLASSES, injector_gain=INJECTOR_GAIN * scales[1],
    )  # fmt: skip
    return first, second


def summarise_hidden(
    res: TwoLayerRun,
    labels: torch.Tensor,
    hidden: int,
    preset: DevicePreset,
    scales: tuple[float, float],
) -> dict:
    """Accuracy, events and energy of a ``TwoLayerRun`` (means over chips and images)."""
    v = preset.values
    single = SpikeRun(
        res.decision, res.input_spikes, res.output_spikes, res.g_read_hidden, res.stopped,
        res.steps,
    )  # fmt: skip
    out = summarise(single, labels, v["v_read"], v["read_pulse_s"])  # accuracy, input spikes
    first, second = two_layer_ledger(res, hidden, v["v_read"], v["read_pulse_s"], scales)
    lines = {k: first[k] + second[k] for k in first}
    core = energy.core_energy(lines)
    inputs, hid = res.input_spikes.double(), res.hidden_spikes.double()
    events = energy.synaptic_events(inputs, hidden) + energy.synaptic_events(hid)
    reads = energy.cell_reads(inputs, hidden) + energy.cell_reads(hid)
    out.update({
        "hidden_spikes_per_image": float(hid.mean()),
        "synaptic_events_per_image": float(events.mean()),
        "synaptic_events_per_image_by_layer": {
            "hidden": float((inputs * hidden).mean()), "output": float((hid * CLASSES).mean()),
        },
        "cell_reads_per_image": float(reads.mean()),
        "energy_per_event_j": float(core.sum() / events.sum().clamp(min=1)),
        "energy_per_image_j": float(core.mean()),
        "energy_per_image_with_logic_j": float((core + lines["logic_spi"]).mean()),
        "energy_breakdown_j": {k: float(t.mean()) for k, t in lines.items()},
        "energy_per_image_by_layer_j": {
            "hidden": float(energy.core_energy(first).mean()),
            "output": float(energy.core_energy(second).mean()),
        },
    })  # fmt: skip
    return out


def evaluate_hidden(
    weights: HiddenWeights,
    x: torch.Tensor,
    labels: torch.Tensor,
    x_cal: torch.Tensor,
    cfg: EvalConfig,
    progress=None,
) -> dict:
    """Run the network ``weights`` on chips; ``x_cal``: calibration (training) intensities for
    the layer gains.  See the module docstring."""
    cfg.check()
    weights.check()
    x, x_cal = check_inputs(x), check_inputs(x_cal)
    if labels.shape != (x.shape[0],):
        raise MemlearnError(f"labels must have shape [{x.shape[0]}], got {list(labels.shape)}")
    gen = torch.Generator().manual_seed(cfg.seed)
    arrays = [
        SynapseArray(cfg.preset, cfg.chips, w, strategy=cfg.strategy, generator=gen)
        for w in (weights.w1, weights.w2)
    ]
    disturb_gen = torch.Generator().manual_seed(cfg.seed + 1)
    flips = 0.0
    for arr in arrays:
        arr.advance(cfg.hours * 3600.0)
        flips = flips + arr.disturb(cfg.reads, disturb_gen)
    ideal = [ideal_synapses(cfg.preset, w) for w in (weights.w1, weights.w2)]
    scales = layer_scales(weights.beta, weights.w1, weights.w2, x_cal, cfg.neuron, ideal[0].theta)
    chips = LayerPair.scaled(*(chip_synapses(a, cfg.read_noise) for a in arrays), scales)
    res = run_two_layers(x, chips, cfg.neuron, gen, progress)
    out = summarise_hidden(res, labels, weights.hidden, arrays[0].preset, scales)
    out["time_per_image_s"] = float(res.steps.double().mean()) * cfg.neuron.dt_s
    ref = run_two_layers(
        x, LayerPair.scaled(*ideal, scales), cfg.neuron, torch.Generator().manual_seed(cfg.seed)
    )
    tanh = weights.decision(x)
    out["accuracy_spiking_ideal_cells"] = accuracy(ref.decision[0], labels)
    out["agreement_spiking_ideal_cells_tanh"] = accuracy(ref.decision[0], tanh)
    out["accuracy_ideal"] = accuracy(tanh, labels)
    out["accuracy_float"] = accuracy(weights.decision(x, quantised=False), labels)
    out["hidden"] = weights.hidden
    out["layer_gains"] = {"hidden": scales[0], "output": scales[1]}
    out["cells"] = CELLS_PER_SYNAPSE * weights.hidden * (INPUTS + CLASSES)
    out["failed_cells"] = float(sum(a.wrong_cells() for a in arrays).mean())
    out["stuck_cells"] = float(sum(a.stuck_cells() for a in arrays).mean())
    verified = cfg.strategy != "single-set"
    failed = sum(a.summary.failed_cells for a in arrays) if verified else None
    out["verify_failed_cells"] = float(failed.mean()) if verified else None
    out["disturbed_cells"] = float(torch.as_tensor(flips).mean())
    macs = weights.hidden * (INPUTS + CLASSES)
    out.update(
        energy.formal_comparison(
            out["energy_per_image_j"], out["energy_per_event_j"], macs, INPUTS + weights.hidden
        )
    )
    out["config"] = asdict(cfg)
    return out
