"""``evaluate``: the SPIRIT layer on ``n_chips`` simulated chips, with its metrics and ledger.

Steps: program the integer weights into 11,520 SLC cells per chip (``synapses``), let
``hours`` pass (relaxation), apply ``reads`` read pulses per cell (disturb), run the spiking
layer on the test images (``simulate``) and count events and energy (``energy``).  Reference
lines on the same images: the tanh layer with the integer weights (``accuracy_ideal``), the
float layer (``accuracy_float``), and the spiking layer on ideal cells (nominal LRS/HRS, no
noise: ``accuracy_spiking_ideal_cells``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch

from memlearn.devices.preset import load_preset
from memlearn.devices.strategies import check_strategy
from memlearn.errors import MemlearnError
from memlearn.snn import energy
from memlearn.snn.model import CLASSES, accuracy, check_inputs, check_weights, tanh_decision
from memlearn.snn.neuron import NeuronConfig, membrane_step, threshold
from memlearn.snn.simulate import SpikeRun, Synapses, run
from memlearn.snn.synapses import CELLS_PER_SIGN, CELLS_PER_SYNAPSE, SynapseArray
from memlearn.stats import ci95


@dataclass(frozen=True)
class EvalConfig:
    chips: int = 100
    preset: str = "oxram-slc"
    strategy: str = "single-set"
    hours: float = 1.0
    reads: float = 0.0
    read_noise: bool = True
    seed: int = 0
    neuron: NeuronConfig = field(default_factory=NeuronConfig)

    def check(self) -> EvalConfig:
        if isinstance(self.chips, bool) or not isinstance(self.chips, int) or self.chips < 1:
            raise MemlearnError(f"chips must be an integer >= 1, got {self.chips!r}")
        if not self.hours >= 0:
            raise MemlearnError(f"hours must be >= 0, got {self.hours}")
        if not self.reads >= 0:
            raise MemlearnError(f"reads must be >= 0, got {self.reads}")
        check_strategy(self.strategy)
        load_preset(self.preset)
        self.neuron.check()
        return self


def chip_synapses(arr: SynapseArray, read_noise: bool) -> Synapses:
    """The simulation's view of programmed cells ``arr`` (true conductances), read with the
    read noise of each cell's age (``SynapseArray.ages``: relaxation ages the cells, so a read
    after ``advance`` is noisier by the 1/f law)."""
    v = arr.preset.values
    k = membrane_step(v["v_read"], v["read_pulse_s"])
    g = arr.cells()  # [n, 144, 10, 8]
    net = g[..., :CELLS_PER_SIGN].sum(-1) - g[..., CELLS_PER_SIGN:].sum(-1)
    var = None
    if read_noise:
        sigma = arr.preset.technology.read_sigma(arr.preset, g, arr.ages())
        var = (sigma * k).square().sum(-1)
    g_min, g_max = arr.preset.window
    theta = threshold(v["v_read"], v["read_pulse_s"], g_min, g_max)
    return Synapses(net * k, g.sum(dim=(2, 3)), var, theta)


def ideal_synapses(preset_name: str, w: torch.Tensor) -> Synapses:
    """Nominal cells (LRS exactly ``g_max``, HRS ``g_min``) of integer weights ``w [rows,
    neurons]``, one chip, no read noise."""
    preset = load_preset(preset_name)
    v = preset.values
    g_min, g_max = preset.window
    w = check_weights(w, None).float()
    k = membrane_step(v["v_read"], v["read_pulse_s"])
    lrs = w.abs()
    g_row = (lrs * g_max + (CELLS_PER_SYNAPSE - lrs) * g_min).sum(dim=1)
    theta = threshold(v["v_read"], v["read_pulse_s"], g_min, g_max)
    return Synapses((w * (g_max - g_min) * k)[None], g_row[None], None, theta)


def _percentile(t: torch.Tensor, q: float) -> float:
    """Nearest-rank ``q`` quantile of all of ``t`` (no size limit, unlike ``torch.quantile``)."""
    flat = t.reshape(-1).double()
    return float(flat.kthvalue(max(1, math.ceil(q * flat.numel()))).values)


def summarise(res: SpikeRun, labels: torch.Tensor, v_read: float, pulse_s: float) -> dict:
    """Accuracy, events and energy of a ``SpikeRun`` (means over chips and images)."""
    per_chip = (res.decision == labels).double().mean(dim=1)
    lines = energy.breakdown(res.input_spikes, res.output_spikes, res.g_read, v_read, pulse_s)
    core = energy.core_energy(lines)
    events = energy.synaptic_events(res.input_spikes.double())
    return {
        "accuracy": float(per_chip.mean()),
        "accuracy_ci95": ci95(per_chip) if per_chip.numel() > 1 else 0.0,
        "accuracy_per_chip": per_chip.tolist(),
        "stopped_fraction": float(res.stopped.double().mean()),
        "input_spikes_per_image": float(res.input_spikes.double().mean()),
        "input_spikes_per_image_median": float(res.input_spikes.double().median()),
        "input_spikes_per_image_p90": _percentile(res.input_spikes, 0.9),
        "synaptic_events_per_image": float(events.mean()),
        "cell_reads_per_image": float(energy.cell_reads(res.input_spikes.double()).mean()),
        "output_spikes_per_image": float(res.output_spikes.double().mean()),
        "time_per_image_s": None,
        "energy_per_event_j": float(core.sum() / events.sum().clamp(min=1)),
        "energy_per_image_j": float(core.mean()),
        "energy_per_image_with_logic_j": float((core + lines["logic_spi"]).mean()),
        "energy_breakdown_j": {k: float(v.mean()) for k, v in lines.items()},
    }


def evaluate(w, float_w, x, labels, cfg: EvalConfig, progress=None) -> dict:
    """Run the layer of integer weights ``w`` on chips; see the module docstring."""
    cfg.check()
    w, x = check_weights(w), check_inputs(x)
    if labels.shape != (x.shape[0],):
        raise MemlearnError(f"labels must have shape [{x.shape[0]}], got {list(labels.shape)}")
    gen = torch.Generator().manual_seed(cfg.seed)
    arr = SynapseArray(cfg.preset, cfg.chips, w, strategy=cfg.strategy, generator=gen)
    arr.advance(cfg.hours * 3600.0)
    flips = arr.disturb(cfg.reads, torch.Generator().manual_seed(cfg.seed + 1))
    v = arr.preset.values
    res = run(x, chip_synapses(arr, cfg.read_noise), cfg.neuron, gen, progress)
    out = summarise(res, labels, v["v_read"], v["read_pulse_s"])
    out["time_per_image_s"] = float(res.steps.double().mean()) * cfg.neuron.dt_s
    ideal_gen = torch.Generator().manual_seed(cfg.seed)
    ideal = run(x, ideal_synapses(cfg.preset, w), cfg.neuron, ideal_gen)
    out["accuracy_spiking_ideal_cells"] = accuracy(ideal.decision[0], labels)
    out["accuracy_ideal"] = accuracy(tanh_decision(x, w), labels)
    out["accuracy_float"] = accuracy((x @ float_w.float()).argmax(dim=1), labels)
    out["cells"] = CLASSES * CELLS_PER_SYNAPSE * x.shape[1]
    out["failed_cells"] = float(arr.wrong_cells().mean())
    out["stuck_cells"] = float(arr.stuck_cells().mean())
    verified = cfg.strategy != "single-set"
    out["verify_failed_cells"] = float(arr.summary.failed_cells.mean()) if verified else None
    out["disturbed_cells"] = float(flips.mean())
    out.update(energy.formal_comparison(out["energy_per_image_j"], out["energy_per_event_j"]))
    out["config"] = asdict(cfg)
    return out
