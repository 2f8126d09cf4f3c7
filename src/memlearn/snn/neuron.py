"""SPIRIT's analog integrate-and-fire neurons and rate-coded inputs, simulated in time steps.

Circuit (Valentian et al., IEDM 2019 [P] unless marked): each input spike is one read pulse
(``read_pulse_s`` at ``v_read`` <= 100 mV) on its row; the summed positive and negative cell
currents of each synapse are copied by a current injector (gain ``INJECTOR_GAIN``) onto the
neuron's ``C_MEM`` = 200 fF MOM capacitor, so one event moves the membrane by
``INJECTOR_GAIN * v_read * read_pulse_s * (G+ - G-) / C_MEM`` volts.  Two comparators at
``±threshold`` emit positive / negative output spikes; a spike removes ``threshold`` from the
membrane [E] (charge-removal reset) and starts a refractory period ``refractory_s`` during which
the neuron keeps integrating but cannot spike [P]: the R = ``refractory_steps`` steps after a
spike are blocked, so a neuron fires at most once every R + 1 steps.  The membrane clips at
the rails, ±``V_RAIL`` around its rest level [E] (``rail_v``; N2D2's neurons have none:
``rail_v=inf``).  No leak [E] (a MOM capacitor with the injector off holds its charge over a
classification, at most ``t_max_s``).  The threshold is a design choice: ``THRESHOLD_FRACTION``
of the nominal step of a ±4 synapse (4 LRS against 4 HRS cells).  N2D2's
spike test puts the threshold at the largest weight [S] (``Threshold=1.0`` in its spike-coding
examples, ``models/*_Spike.ini``, on weights that ``DeepNet::normalizeFreeParameters`` divides
by the layer's largest ``|w|`` before the spike test; ``FcCell_Transcode`` writes them to the
spiking cell too): fraction 1 for nominal cells.  SPIRIT requires that a ±4 stimulation produce
a spike [P], which on programmed cells (the spread of the 4 LRS cells) needs a margin below
that: 0.875 [E].  No source gives the threshold in volts or the injector gain.

Inputs (``coding``): rate coding of the intensity, event by event [P], as in N2D2 [S]
(``SpikeGenerator::nextEvent``; SPIRIT's abstract names no framework, only "an existing
framework was tailored for offline learning": N2D2 is CEA's, with a spiking RRAM layer and the
ΔS below [I]):
a pixel of intensity ``x`` fires at ``f = f_min + (f_max - f_min) x`` (``pixel_rate``; N2D2's
``SpikeGenerator`` is linear in frequency between ``1 / PeriodMeanMax`` and ``1 / PeriodMeanMin``,
and with ``DiscardedLateStimuli = 1`` no pixel is cut [S]).  ``periodic`` (default):
N2D2's ``JitteredPeriodic`` with ``PeriodRelStdDev = 0`` (its spike-coding examples,
``models/LeNet_Spike.ini``) [S]: strictly periodic spikes, period ``1 / f``, the first one at a
uniformly random phase; ``poisson``: Bernoulli spikes per time step with probability ``f dt``
(N2D2's ``Poissonian``; the count of an interval then has Poisson noise on top of the rate).
``f_max`` = ``rate_hz``; ``f_min`` = ``rate_floor * rate_hz`` with ``rate_floor`` = 0: a black
pixel sends nothing [E] (N2D2's examples put ``f_min = 1e-4 f_max``, ``PeriodMeanMax`` 100 µs
against ``PeriodMeanMin`` 10 ns [S]: 0.01 spike per black pixel over a whole presentation;
``rate_floor=1e-4`` runs that, ``experiments.spirit_spikes`` measures it).  The same spike
trains are replayed to every chip.  The event order inside one step does not matter for the
integration; only the comparators sample once per step (fine steps: event by event).

Presentation limit: N2D2's spike test (``exec/n2d2.cpp``) presents each test image for 1 µs
(``env->propagate(i TimeUs, (i + 1) TimeUs)``), in which a white pixel of mean period 10 ns fires
100 times [S]; nothing else ends a presentation (``TerminateMax``, a cap on the leader's count,
is 0 = off there).  Without leak only that ratio matters, so ``t_max_s`` =
``PRESENTATION_PERIODS / rate_hz``: at most 100 spikes of a white pixel per image.

Decision ``delta_s`` (ΔS): a classification stops as soon as the output neuron with the most
spikes (positive minus negative) leads the second by ``delta_s`` spikes, and that neuron is the
answer; otherwise the leader at ``t_max_s`` (ties by membrane potential [E]; N2D2 takes the
first of the tied neurons).  This is N2D2's ``TerminateDelta`` of a spiking output layer [S]
(``FcCell_Spike_RRAM::incomingSpike``: after every output spike, stop when the top two counts of
``+1`` per positive, ``-1`` per negative spike differ by ``>= TerminateDelta``); SPIRIT quotes
136 input spikes per image "for ΔS = 10" [P], and the paper's figures were not found in the
public record, so the name match with N2D2's parameter is the source [I].
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from memlearn.errors import MemlearnError
from memlearn.snn.model import INPUTS

C_MEM = 200e-15  # [P] SPIRIT neuron: 200 fF MOM capacitor
INJECTOR_GAIN = 1.0 / 64.0  # [E] current-mirror copy ratio: a ±4 event moves the membrane ~0.3 V
VDD = 1.2  # [E] 130 nm core supply
V_RAIL = VDD / 2  # [E] the membrane swings ±VDD/2 around its mid-rail rest level and clips there
THRESHOLD_FRACTION = 0.875  # [E] threshold / nominal ±4 step: below N2D2's 1 [S], ±4 spikes [P]
THRESHOLD_WEIGHT_UNITS = THRESHOLD_FRACTION * 4  # the threshold in integer-weight units
DELTA_S = 10  # [P] published operating point "ΔS = 10" (N2D2's TerminateDelta [S])
RATE_HZ = 100e3  # [E] input rate of a white pixel (SPI-fed event generator; sets the time scale)
PRESENTATION_PERIODS = 100  # [S] N2D2 spike test: 1 µs per image / 10 ns white-pixel period
CODINGS = ("periodic", "poisson")


@dataclass(frozen=True)
class NeuronConfig:
    """Timing of the simulation and the decision (s, Hz, spikes)."""

    dt_s: float = 1e-6  # [E] time step: 1 µs (at most ~0.1 input spike per pixel per step)
    rate_hz: float = RATE_HZ
    refractory_s: float = 2e-6  # [E] refractory period: two time steps
    delta_s: int = DELTA_S
    t_max_s: float = PRESENTATION_PERIODS / RATE_HZ  # [S] longest presentation: 100 periods
    coding: str = "periodic"  # [S] N2D2 JitteredPeriodic, no jitter (module docstring)
    rate_floor: float = 0.0  # [E] black pixel's rate / rate_hz (N2D2's examples: 1e-4 [S])
    rail_v: float = V_RAIL  # [E] membrane clip (V) around rest; N2D2: none (inf)

    def check(self) -> NeuronConfig:
        for name in ("dt_s", "rate_hz", "t_max_s"):
            if not getattr(self, name) > 0:
                raise MemlearnError(f"{name} must be > 0, got {getattr(self, name)}")
        if not 0 <= self.rate_floor < 1:
            raise MemlearnError(f"rate_floor must lie in [0, 1), got {self.rate_floor}")
        if not self.rail_v > 0:
            raise MemlearnError(f"rail_v must be > 0 V (inf: no rails), got {self.rail_v}")
        if self.refractory_s < 0:
            raise MemlearnError(f"refractory_s must be >= 0 s, got {self.refractory_s}")
        if self.rate_hz * self.dt_s > 1:
            raise MemlearnError(
                f"rate_hz * dt_s must be <= 1 (one spike per pixel per step), got "
                f"{self.rate_hz * self.dt_s:g}"
            )
        if isinstance(self.delta_s, bool) or not isinstance(self.delta_s, int) or self.delta_s < 1:
            raise MemlearnError(f"delta_s must be an integer >= 1, got {self.delta_s!r}")
        if self.coding not in CODINGS:
            raise MemlearnError(f"coding must be one of {', '.join(CODINGS)}, got {self.coding!r}")
        return self

    @property
    def steps(self) -> int:
        return max(1, round(self.t_max_s / self.dt_s))

    @property
    def refractory_steps(self) -> int:
        return round(self.refractory_s / self.dt_s)


def membrane_step(v_read: float, pulse_s: float) -> float:
    """Membrane volts per siemens of net synaptic conductance for one input spike."""
    return INJECTOR_GAIN * v_read * pulse_s / C_MEM


def threshold(v_read: float, pulse_s: float, g_min: float, g_max: float) -> float:
    """Comparator threshold (V): ``THRESHOLD_FRACTION`` of a nominal ±4 event's step."""
    return THRESHOLD_FRACTION * 4 * (g_max - g_min) * membrane_step(v_read, pulse_s)


def input_phase(n: int, cfg: NeuronConfig, gen: torch.Generator) -> torch.Tensor:
    """Random phases ``[n, 144]`` in [0, 1) of the periodic spike trains, drawn once per image
    (zeros, drawing nothing, for ``poisson``)."""
    if cfg.coding == "poisson":
        return torch.zeros(n, INPUTS)
    return torch.rand(n, INPUTS, generator=gen)


def rate_fraction(x: torch.Tensor, cfg: NeuronConfig) -> torch.Tensor:
    """Spike rate of intensities ``x`` in [0, 1] as a fraction of ``rate_hz``: ``rate_floor +
    (1 - rate_floor) x``, linear from the black pixel's floor to 1 for white."""
    if cfg.rate_floor:
        return cfg.rate_floor + (1.0 - cfg.rate_floor) * x
    return x


def pixel_rate(x: torch.Tensor, cfg: NeuronConfig) -> torch.Tensor:
    """Spike rate (Hz) of intensities ``x`` (``rate_fraction * rate_hz``)."""
    return rate_fraction(x, cfg) * cfg.rate_hz


def input_spikes(
    x: torch.Tensor, phase: torch.Tensor, step: int, cfg: NeuronConfig, gen: torch.Generator
) -> torch.Tensor:
    """Input spikes ``[N, 144]`` (float 0/1) of intensities ``x`` in time step ``step``.

    ``periodic``: a pixel of rate ``f`` (``pixel_rate``) and phase ``u`` has emitted
    ``floor(f t + u)`` spikes by time ``t``, so the step holds the difference of that count at
    its two ends (0 or 1 since ``f dt <= 1``).  ``poisson``: Bernoulli(``f dt``), ``phase``
    unused."""
    p = rate_fraction(x, cfg) * (cfg.rate_hz * cfg.dt_s)
    if cfg.coding == "poisson":
        return (torch.rand(x.shape, generator=gen) < p).float()
    return torch.floor(p * (step + 1) + phase) - torch.floor(p * step + phase)


@dataclass
class NeuronState:
    """Membranes (V), refractory steps left and spike counts, each ``[N, n_chips, 10]``."""

    v: torch.Tensor
    refractory: torch.Tensor
    pos: torch.Tensor
    neg: torch.Tensor

    @classmethod
    def zeros(cls, n: int, chips: int, neurons: int) -> NeuronState:
        z = torch.zeros(n, chips, neurons)
        return cls(z.clone(), torch.zeros_like(z, dtype=torch.int32), z.clone(), z.clone())


def integrate_and_fire(
    st: NeuronState,
    dv: torch.Tensor,
    active: torch.Tensor | None,
    theta: float,
    refr: int,
    rail: float = V_RAIL,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Add ``dv`` (V) to active neurons (``active``: one flag per neuron group, ``None``: all,
    updated in place), clip at ``±rail`` (V), fire where allowed; returns ``(pos, neg)``."""
    if active is None:
        return _fire_all(st, dv, theta, refr, rail)
    act = active[..., None]
    st.v = (st.v + torch.where(act, dv, 0.0)).clamp(-rail, rail)
    free = (st.refractory == 0) & act
    pos = (st.v >= theta) & free
    neg = (st.v <= -theta) & free
    st.v -= theta * (pos.float() - neg.float())
    fired = pos | neg
    st.refractory = torch.where(fired, refr, (st.refractory - act.int()).clamp(min=0))
    st.pos += pos.float()
    st.neg += neg.float()
    return pos, neg


def _fire_all(
    st: NeuronState, dv: torch.Tensor, theta: float, refr: int, rail: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``integrate_and_fire`` of every neuron, in place (the same arithmetic, fewer passes)."""
    v = st.v.add_(dv).clamp_(-rail, rail)
    free = st.refractory == 0
    pos = (v >= theta).logical_and_(free)
    neg = (v <= -theta).logical_and_(free)
    up, down = pos.float(), neg.float()
    v.sub_((up - down).mul_(theta))
    st.refractory.sub_(1).clamp_(min=0).masked_fill_(pos | neg, refr)
    st.pos.add_(up)
    st.neg.add_(down)
    return pos, neg


def leader_margin(st: NeuronState) -> tuple[torch.Tensor, torch.Tensor]:
    """``(leading neuron, its lead in spikes over the second)``, each ``[N, n_chips]``."""
    score = st.pos - st.neg
    top = score.topk(2, dim=-1)
    return top.indices[..., 0], top.values[..., 0] - top.values[..., 1]


def final_decision(st: NeuronState, theta: float) -> torch.Tensor:
    """Leader by spike count, ties broken by the membrane potential, ``[N, n_chips]``."""
    return (st.pos - st.neg + 0.5 * (st.v / theta).clamp(-0.999, 0.999)).argmax(dim=-1)
