"""Study: the SPIRIT spiking chip (Valentian et al., IEDM 2019; REFERENCE.md s4) simulated.

The shipped SPIRIT layer (``memlearn snn train``) programmed into the ``oxram-slc`` cells of
simulated chips (SPIRIT's cells, whatever the run's preset), then: accuracy against the cells'
resistance ratio (HRS moved, LRS fixed) and spread (``DevicePreset.with_spread``), against the
time after programming (relaxation), against reads per cell (disturb, at SPIRIT's 100 mV and
at a stressed read voltage that only the disturb sees), the membrane potentials and output
raster of one image, input spikes per image against ΔS, and the event and energy figures
against the published ones (84 %, 88 %, 3.6 pJ, 136 input spikes at ΔS = 10, no disturb over
750 M spikes, relaxation settled within an hour) drawn on the panels.  The 144-32-10 network
of ``memlearn snn hidden`` on the same cells, 1 h after programming, is one more point on the
time, ΔS and energy panels (``hidden``).

Verdicts (``verdicts``, from the measured rows only): ideal quantised layer >= 88 %; chips
>= 84 % and within 4 points of the ideal layer; energy per synaptic event within 2x of 3.6 pJ;
mean input spikes per image at ΔS = 10 within ±25 % of 136; accuracy 1 day after programming
within 1 point of 1 s after (relaxation leaves accuracy intact); every point after 1 h within
1 point of 1 h (relaxation settled within the hour); 7.5e8 reads per cell at 100 mV flip no
cell and keep accuracy within 1 point of no reads (a conservative reading of "750 M spikes":
every one of them read every cell); accuracy falls from the widest to the narrowest window.
"""

from __future__ import annotations

from typing import Any

import torch

from memlearn.data.mnist import load_mnist
from memlearn.devices.preset import DevicePreset, load_preset
from memlearn.experiments.common import StudyInfo, StudyRun, conclude, pyplot, save_figure
from memlearn.experiments.provenance import write_json
from memlearn.experiments.report import StudyOutcome
from memlearn.snn.evaluate import EvalConfig, chip_synapses, summarise
from memlearn.snn.hidden import load_hidden
from memlearn.snn.hidden_eval import CALIBRATION_IMAGES, evaluate_hidden
from memlearn.snn.model import accuracy, downscale, tanh_decision
from memlearn.snn.neuron import PRESENTATION_PERIODS, THRESHOLD_FRACTION, NeuronConfig
from memlearn.snn.simulate import run as run_layer
from memlearn.snn.simulate import trace
from memlearn.snn.synapses import SynapseArray
from memlearn.snn.train import load_checkpoint
from memlearn.stats import ci95

KEY = "spirit"
TITLE = "SPIRIT: spiking inference on single-level RRAM"
PUBLISHED = "84 % on chip vs 88 % ideal; 3.6 pJ per synaptic event; 136 input spikes per image"
INFO = StudyInfo(KEY, TITLE, PUBLISHED)
PRESET = "oxram-slc"
ACC_CHIP, ACC_IDEAL, E_EVENT, SPIKES = 0.84, 0.88, 3.6e-12, 136.0  # [P] Valentian et al. 2019
DELTA_S_PUBLISHED = 10  # [P] "136 input spikes per image for ΔS = 10"
DISTURB_SPIKES = 7.5e8  # [P] no read disturb over at least 750 M spikes
SETTLED_H = 1.0  # [P] relaxation settles within an hour


def _point(
    preset: DevicePreset,
    w,
    x,
    y,
    chips: int,
    seed: int,
    hours: float = 1.0,
    reads: float = 0.0,
    volts: float | None = None,
    delta_s: int = DELTA_S_PUBLISHED,
) -> dict[str, Any]:
    gen = torch.Generator().manual_seed(seed)
    arr = SynapseArray(preset, chips, w, generator=gen)
    arr.advance(hours * 3600.0)
    flips = arr.disturb(reads, torch.Generator().manual_seed(seed + 1), volts)
    v = preset.values
    res = run_layer(x, chip_synapses(arr, True), NeuronConfig(delta_s=delta_s), gen)
    out = summarise(res, y, v["v_read"], v["read_pulse_s"])
    out["failed_cells"] = float(arr.wrong_cells().mean())
    out["disturbed_cells"] = float(flips.mean())
    return out


def _hidden_point(run: StudyRun, x, y, chips: int, seed: int) -> dict[str, Any]:
    """The shipped 144-32-10 network on ``chips`` chips of ``oxram-slc``, 1 h after
    programming, ΔS = 10 (``snn.hidden_eval``; its layer gains calibrated on training images)."""
    x_cal = downscale(load_mnist("train", run.root).images[:CALIBRATION_IMAGES])
    cfg = EvalConfig(chips=chips, preset=PRESET, hours=SETTLED_H, seed=seed)
    out = evaluate_hidden(load_hidden(), x, y, x_cal, cfg)
    keep = ("accuracy", "accuracy_ci95", "accuracy_ideal", "accuracy_float", "hidden",
            "input_spikes_per_image", "input_spikes_per_image_median", "energy_per_event_j",
            "synaptic_events_per_image", "stopped_fraction")  # fmt: skip
    return {k: out[k] for k in keep}


def spirit_study(
    run: StudyRun,
    *,
    chips: int = 8,
    images: int = 500,
    ratios: tuple[float, ...] = (2.0, 4.0, 10.0, 20.0, 100.0),
    spreads: tuple[float, ...] = (0.5, 1.0, 2.0, 3.0),
    hours: tuple[float, ...] = (1 / 3600, 1.0, 24.0, 24.0 * 365),
    reads: tuple[float, ...] = (0.0, 1e6, DISTURB_SPIKES, 1e12),
    stress_v: float = 0.5,
    delta_s: tuple[int, ...] = (4, 6, 8, DELTA_S_PUBLISHED, 12),
    hidden: bool = True,
) -> StudyOutcome:
    """The SPIRIT sweeps, figure and verdicts (see the module docstring)."""
    w, float_w = load_checkpoint()
    test = load_mnist("test", run.root)
    x, y = downscale(test.images[:images]), test.labels[:images]
    base = load_preset(PRESET)
    seed = run.study_seed(KEY)
    g_max = base.window[1]

    def pt(p, **kw):
        return _point(p, w, x, y, chips, seed, **kw)

    rows: dict[str, list[dict[str, Any]]] = {
        "ratio": [{"x": r, **pt(base.replace(g_min=g_max / r))} for r in ratios],
        "spread": [{"x": s, **pt(base.with_spread(s))} for s in spreads],
        "hours": [{"x": h, **pt(base, hours=h)} for h in hours],
        "reads": [{"x": r, **pt(base, reads=r)} for r in reads],
        "reads_stress": [{"x": r, **pt(base, reads=r, volts=stress_v)} for r in reads],
    }
    nominal = _at(rows["hours"], SETTLED_H)  # 1 h after programming, nominal preset, ΔS = 10
    rows["delta_s"] = [
        {**(pt(base, delta_s=d) if d != DELTA_S_PUBLISHED else nominal), "x": d} for d in delta_s
    ]
    if hidden:
        rows["hidden"] = [{"x": SETTLED_H, **_hidden_point(run, x, y, chips, seed)}]
    ideal = accuracy(tanh_decision(x, w), y)
    flt = accuracy((x @ float_w).argmax(dim=1), y)
    tr = trace(x[0], chip_synapses(SynapseArray(base, 1, w, generator=torch.Generator()
                                                .manual_seed(seed)), False),
               NeuronConfig(), torch.Generator().manual_seed(seed))  # fmt: skip
    fig = _plot(rows, nominal, ideal, tr, int(y[0]), stress_v)
    figure = save_figure(fig, run.path(f"{KEY}.png")).name
    data = write_json(run.path(f"{KEY}.json"), {"rows": rows, "ideal": ideal, "float": flt})
    acc = nominal["accuracy"]
    checks = verdicts(rows, ideal)
    observed = (
        f"chips {acc:.1%} ± {nominal['accuracy_ci95']:.1%} vs ideal {ideal:.1%} (float "
        f"{flt:.1%}); {nominal['energy_per_event_j'] * 1e12:.2f} pJ per synaptic event; "
        f"{nominal['input_spikes_per_image']:.0f} input spikes per image (median "
        f"{nominal['input_spikes_per_image_median']:.0f})"
    )
    numbers = [
        ("accuracy on chips (1 h)", f"{acc:.2%} ± {nominal['accuracy_ci95']:.2%}"),
        ("ideal quantised / float", f"{ideal:.2%} / {flt:.2%}"),
        ("energy per synaptic event", f"{nominal['energy_per_event_j'] * 1e12:.2f} pJ"),
        (
            "input spikes per image (mean / median)",
            f"{nominal['input_spikes_per_image']:.0f} / "
            f"{nominal['input_spikes_per_image_median']:.0f}",
        ),
        ("failed cells per chip", f"{nominal['failed_cells']:.0f} of 11520"),
    ]
    if hidden:
        h = rows["hidden"][0]
        numbers.append((
            "144-32-10 on chips (1 h): accuracy / ideal; input spikes (mean / median)",
            f"{h['accuracy']:.2%} ± {h['accuracy_ci95']:.2%} / {h['accuracy_ideal']:.2%}; "
            f"{h['input_spikes_per_image']:.0f} / {h['input_spikes_per_image_median']:.0f}",
        ))  # fmt: skip
    notes = (
        f"{chips} chips x the first {images} MNIST test images per point, ΔS = 10, at most "
        f"{PRESENTATION_PERIODS} white-pixel periods per image (N2D2's spike test), threshold "
        f"{THRESHOLD_FRACTION} of the ±4 step; "
        f"CI over chips {ci95(torch.tensor(nominal['accuracy_per_chip'])):.3f}."
    )
    return conclude(INFO, observed, checks, [figure], [data.name], numbers, notes)


def _at(rows: list[dict[str, Any]], x: float) -> dict[str, Any]:
    """The row whose ``x`` is nearest ``x`` (relative distance)."""
    return min(rows, key=lambda r: abs(r["x"] - x) / max(abs(x), 1e-12))


def verdicts(rows: dict[str, list[dict[str, Any]]], ideal: float) -> dict[str, bool]:
    """The study's checks from its measured rows (see the module docstring); ``ideal`` is the
    ideal quantised layer's accuracy on the same images."""
    hours, reads = rows["hours"], rows["reads"]
    nominal = _at(hours, SETTLED_H)
    acc = nominal["accuracy"]
    spikes = _at(rows["delta_s"], DELTA_S_PUBLISHED)["input_spikes_per_image"]
    disturbed = _at(reads, DISTURB_SPIKES)
    later = [r["accuracy"] for r in hours if r["x"] > SETTLED_H]
    return {
        "ideal quantised layer >= 88 %": ideal >= ACC_IDEAL,
        "chips >= 84 %": acc >= ACC_CHIP,
        "chips within 4 points of ideal": ideal - acc <= 0.04,
        "energy per event within 2x of 3.6 pJ":
            0.5 <= nominal["energy_per_event_j"] / E_EVENT <= 2.0,
        "input spikes within ±25 % of 136 at ΔS = 10": abs(spikes / SPIKES - 1) <= 0.25,
        "1 day after programming within 1 point of 1 s":
            abs(_at(hours, 24.0)["accuracy"] - hours[0]["accuracy"]) <= 0.01,
        "relaxation settled by 1 h (later points within 1 point)":
            bool(later) and all(abs(a - acc) <= 0.01 for a in later),
        "7.5e8 reads at 100 mV: no flipped cell, within 1 point of none":
            disturbed["disturbed_cells"] == 0
            and abs(disturbed["accuracy"] - reads[0]["accuracy"]) <= 0.01,
        "narrowest window below widest":
            rows["ratio"][0]["accuracy"] < rows["ratio"][-1]["accuracy"],
    }  # fmt: skip


def _plot(rows, nominal, ideal, tr, label, stress_v):
    plt = pyplot()
    fig, ax = plt.subplots(2, 4, figsize=(17, 8))
    panels = [
        ("ratio", "LRS/HRS conductance ratio", "log"),
        ("spread", "spread factor (x preset)", "linear"),
        ("hours", "time after programming (h)", "log"),
        ("reads", "1 + reads per cell", "log"),
    ]
    for a, (key, xlabel, scale) in zip(ax[0], panels, strict=True):
        series = [(key, "100 mV" if key == "reads" else "chips")]
        if key == "reads":
            series.append(("reads_stress", f"reads at {stress_v:g} V (disturb only)"))
        for k, name in series:
            xs = [r["x"] + (key == "reads") for r in rows[k]]
            accs = [r["accuracy"] for r in rows[k]]
            errs = [r["accuracy_ci95"] for r in rows[k]]
            a.errorbar(xs, accs, yerr=errs, marker="o", label=name)
        a.axhline(ACC_CHIP, color="r", ls="--", label="84 % measured [P]")
        a.axhline(ACC_IDEAL, color="g", ls=":", label="88 % ideal [P]")
        a.axhline(ideal, color="k", ls="-.", lw=0.8, label="ideal (this layer)")
        if key == "reads":
            a.axvline(DISTURB_SPIKES, color="m", ls=":", label="no disturb to 750 M [P]")
        if key == "hours":
            a.axvline(SETTLED_H, color="m", ls=":", label="settled within 1 h [P]")
            for h in rows.get("hidden", []):
                a.errorbar([h["x"]], [h["accuracy"]], yerr=[h["accuracy_ci95"]], fmt="D",
                           color="C2", label="144-32-10 chips")  # fmt: skip
        a.set_xscale(scale)
        a.set_xlabel(xlabel)
        a.set_ylabel("accuracy")
        a.legend(fontsize=7)
    t = torch.arange(tr["v"].shape[0])
    for j in range(10):
        ax[1, 0].plot(t, tr["v"][:, j], lw=1.5 if j == label else 0.6, label=str(j))
    ax[1, 0].set(xlabel="time step (µs)", ylabel="membrane (V)", title=f"one image (label {label})")
    ax[1, 0].legend(fontsize=6, ncol=2)
    pos, neg = tr["pos"].nonzero(), tr["neg"].nonzero()
    ax[1, 1].scatter(pos[:, 0], pos[:, 1], marker="|", c="b", label="positive spikes")
    ax[1, 1].scatter(neg[:, 0], neg[:, 1], marker="|", c="r", label="negative spikes")
    ax[1, 1].set(xlabel="time step (µs)", ylabel="output neuron", title="output raster")
    ax[1, 1].legend(fontsize=7)
    bars = [("this run", nominal["energy_per_event_j"] * 1e12, "C0"), ("SPIRIT [P]", 3.6, "r")]
    bars += [("144-32-10", h["energy_per_event_j"] * 1e12, "C2") for h in rows.get("hidden", [])]
    ax[1, 2].bar(*zip(*[(n, e) for n, e, _ in bars], strict=True), color=[c for *_, c in bars])
    ax[1, 2].set(ylabel="pJ per synaptic event", title="synapse + neuron energy")
    ds = rows["delta_s"]
    xs = [r["x"] for r in ds]
    ax[1, 3].plot(xs, [r["input_spikes_per_image"] for r in ds], "o-", label="mean")
    ax[1, 3].plot(xs, [r["input_spikes_per_image_median"] for r in ds], "s--", label="median")
    ax[1, 3].errorbar([DELTA_S_PUBLISHED], [SPIKES], yerr=[[0.25 * SPIKES], [0.25 * SPIKES]],
                      fmt="r*", ms=12, capsize=4, label="SPIRIT 136 ± 25 % [P]")  # fmt: skip
    for h in rows.get("hidden", []):
        ax[1, 3].plot([DELTA_S_PUBLISHED], [h["input_spikes_per_image"]], "D", color="C2",
                      label="144-32-10 mean")  # fmt: skip
    ax[1, 3].set(xlabel="ΔS (N2D2 TerminateDelta)", ylabel="input spikes per image")
    ax[1, 3].legend(fontsize=7)
    fig.tight_layout()
    return fig
