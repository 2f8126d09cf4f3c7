"""Single-pulse physics of a filamentary 1T1R cell, vectorised over any number of cells.

- SET: the access transistor's gate voltage sets the compliance current I_cc; the filament
  grows until it carries I_cc, leaving ``G = gain * I_cc / set_k_volts`` (R_LRS = V_C / I_C,
  Ielmini 2011) with a cycle-to-cycle spread sigma_G = set_c2c * sqrt(G * g_ref), i.e. a
  relative spread sigma_G / G = set_c2c sqrt(g_ref / G) that grows as the compliance falls
  (sigma_R / R ∝ R^0.5, Poisson statistics of the filament's defects: Ambrogio et al., IEEE TED
  2014, "Statistical fluctuations in HfOx resistive-switching memory", Part I).  A SET never
  thins an existing filament: G_new = max(G, G_set).  How stable the state then is depends on
  that compliance (``retention``).
- RESET: a pulse of amplitude V opens the gap until the cell reaches
  ``G_reset(V) = reset_g_ref * exp(-(V - V_ref - shift) / slope)``; a cell already below that
  is unchanged.  The result is lognormal, its spread growing with the size of the jump.
- Read: two independent noise terms, sigma^2 = sigma_1/f^2 + (read_noise_rel * g_max)^2, as
  IBM aihwkit's ``ReRamCMONoiseModel`` defines them.  The 1/f term is
  sigma_1/f = K * log10(G / 1 uS) * sqrt(ln((t + t_r) / (2 t_r))) uS with K = ``read_noise``,
  t the time since programming (s) and t_r = ``read_t_r`` (1 us in the fit); it is zero for
  t <= t_r and grows slowly with the state's age.  The second is the short-term read-to-read
  noise the model's documentation adds as *additive constant* weight noise of ~1 % of the
  maximum weight: ``read_noise_rel * g_max``, the same for every level.

Energies in joules: SET ``v_set * I_cc * t``; RESET ``V * (f V G) * t`` with f the fraction
of the amplitude across the cell; read ``v_read^2 G t`` plus the sense-amplifier overhead.
"""

from __future__ import annotations

import math

import torch

from memlearn.devices.cells import reset_conductance
from memlearn.devices.preset import DevicePreset

_US = 1e-6


def gate_voltage(preset: DevicePreset, icc: torch.Tensor) -> torch.Tensor:
    """Gate voltage (V) the controller applies for a compliance ``icc`` (A), on the DAC grid."""
    step = preset.values["gate_step"]
    return gate_code(preset, icc) * step if step > 0 else _gate_volts(preset, icc)


def _gate_volts(preset: DevicePreset, icc: torch.Tensor) -> torch.Tensor:
    """The gate voltage (V) for a compliance ``icc`` (A), before the DAC's rounding."""
    v = preset.values
    icc = icc.clamp(v["icc_min"], v["icc_max"])
    return v["gate_vth"] + torch.sqrt(2.0 * icc / v["gate_k"])


def gate_code(preset: DevicePreset, icc: torch.Tensor) -> torch.Tensor:
    """The gate DAC's code (float, whole numbers) for a compliance ``icc`` (A): the gate
    voltage is ``code * gate_step``; ``gate_step`` must be > 0."""
    return torch.round(_gate_volts(preset, icc) / preset.values["gate_step"])


def compliance(preset: DevicePreset, vg: torch.Tensor) -> torch.Tensor:
    """Compliance current (A) of the access transistor in saturation at gate voltage ``vg``."""
    v = preset.values
    over = (vg - v["gate_vth"]).clamp_min(0)
    return (0.5 * v["gate_k"] * over * over).clamp(v["icc_min"], v["icc_max"])


def dac_table(preset: DevicePreset) -> tuple[torch.Tensor, torch.Tensor] | None:
    """The compliance (A) and SET energy (J) at every gate DAC code from 0 up to the highest
    one ``gate_code`` gives (indexed by code: the same values as ``compliance`` and
    ``set_energy`` at ``code * gate_step``); ``None`` without a DAC grid (``gate_step`` 0) or
    when a code could be negative."""
    v = preset.values
    step = v["gate_step"]
    if not step > 0 or v["gate_vth"] + math.sqrt(2.0 * v["icc_min"] / v["gate_k"]) < step:
        return None
    top = math.ceil((v["gate_vth"] + math.sqrt(2.0 * v["icc_max"] / v["gate_k"])) / step) + 2
    icc = compliance(preset, torch.arange(top + 1, dtype=torch.float32) * step)
    return icc, set_energy(preset, icc)


def nominal_compliance(preset: DevicePreset, g_target: torch.Tensor) -> torch.Tensor:
    """The compliance (A) that nominally (gain 1) leaves ``g_target`` after a SET."""
    return g_target * preset.values["set_k_volts"]


def set_pulse(
    preset: DevicePreset,
    g: torch.Tensor,
    icc_request: torch.Tensor,
    gain: torch.Tensor,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One SET pulse at the compliance the gate DAC realises for ``icc_request`` (A).

    Returns ``(new G in S, energy in J)``.
    """
    return set_pulse_at(preset, g, compliance(preset, gate_voltage(preset, icc_request)), gain,
                        generator)  # fmt: skip


def set_pulse_at(
    preset: DevicePreset,
    g: torch.Tensor,
    icc: torch.Tensor,
    gain: torch.Tensor,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One SET pulse at the compliance ``icc`` (A) the gate DAC realises (``set_pulse`` once
    the compliance is known).  Returns ``(new G in S, energy in J)``."""
    return set_conductance(preset, g, icc, gain, generator), set_energy(preset, icc)


def set_conductance(
    preset: DevicePreset,
    g: torch.Tensor,
    icc: torch.Tensor,
    gain: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """The conductance (S) a SET pulse at the realised compliance ``icc`` (A) leaves."""
    v = preset.values
    g_set = gain * icc / v["set_k_volts"]
    sigma = v["set_c2c"] * torch.sqrt(g_set * v["g_ref"])
    g_set = (g_set + sigma * torch.randn(g.shape, generator=generator)).clamp_min(0.1 * _US)
    return torch.maximum(g, g_set)


def set_energy(preset: DevicePreset, icc: torch.Tensor) -> torch.Tensor:
    """Energy (J) of a SET pulse at the realised compliance ``icc`` (A)."""
    v = preset.values
    return v["v_set"] * icc * v["set_pulse_s"]


def reset_pulse(
    preset: DevicePreset,
    g: torch.Tensor,
    volts: torch.Tensor | float,
    shift: torch.Tensor,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One RESET pulse of amplitude ``volts`` (V).  Returns ``(new G in S, energy in J)``."""
    v = preset.values
    # in ln(G): ln G_reset(V) = ln g_ref - (V - V_ref - shift) / slope
    ln_eq = math.log(v["reset_g_ref"]) - (volts - v["reset_v_ref"] - shift) / v["reset_v_slope"]
    jump = (torch.log(g) - ln_eq).clamp_min(0)
    sigma = v["reset_c2c"] + v["reset_c2c_jump"] * jump
    g_new = torch.exp(ln_eq + sigma * torch.randn(g.shape, generator=generator))
    g_new = torch.where(jump > 0, torch.minimum(g_new, g), g)
    energy = (v["reset_cell_fraction"] * v["reset_pulse_s"]) * volts * volts * g
    return g_new, energy


def read_sigma(
    preset: DevicePreset, g: torch.Tensor, age: float | torch.Tensor | None = None
) -> torch.Tensor:
    """Read-noise standard deviation (S) of conductances ``g`` (S) programmed ``age`` seconds
    ago (float or a tensor like ``g``; default: the preset's ``settle_s``, a state's first
    use); see the module docstring."""
    v = preset.values
    t_r = v["read_t_r"]
    t = v["settle_s"] if age is None else age
    if isinstance(t, torch.Tensor):
        band = torch.log((t.double().clamp_min(0) + t_r) / (2.0 * t_r)).clamp_min(0).sqrt()
        band = band.to(g.dtype)
    else:
        band = flicker_band(preset, float(t))
    flicker = (v["read_noise"] * _US) * band * torch.log10((g / _US).clamp_min(1.0))
    additive = v.get("read_noise_rel", 0.0) * v["g_max"]
    if additive == 0:
        return flicker
    return torch.sqrt(flicker * flicker + additive * additive)


def flicker_band(preset: DevicePreset, age: float) -> float:
    """The 1/f read noise's time factor ``sqrt(ln((t + t_r) / (2 t_r)))`` (0 for t <= t_r) at
    the age ``age`` (s) of a state (see the module docstring)."""
    t_r = preset.values["read_t_r"]
    return math.sqrt(max(math.log((max(age, 0.0) + t_r) / (2.0 * t_r)), 0.0))


def read_age(preset: DevicePreset, age_s: torch.Tensor) -> torch.Tensor:
    """The age (s) at which a read sees cells whose effective time since programming is
    ``age_s`` (``cells.age_s``): that time, and at least the preset's ``settle_s``, the delay
    between programming and first use (a cell no write has touched yet, age 0, has held its
    state at least that long)."""
    return age_s.clamp_min(preset.values.get("settle_s", 0.0))


def read(
    preset: DevicePreset,
    g: torch.Tensor,
    generator: torch.Generator,
    age: float | torch.Tensor | None = None,
    sigma: torch.Tensor | None = None,
) -> torch.Tensor:
    """A noisy read of conductances ``g`` (S) programmed ``age`` s ago (see ``read_sigma``);
    ``sigma``: that read noise (S) when the caller already has it (``age`` is then unused)."""
    if sigma is None:
        sigma = read_sigma(preset, g, age)
    return g + sigma * torch.randn(g.shape, generator=generator)


def read_energy(preset: DevicePreset, g: torch.Tensor) -> torch.Tensor:
    """Energy (J) of one verify read per cell: ``v_read^2 G t`` plus the sense overhead."""
    v = preset.values
    return v["v_read"] ** 2 * g * v["read_pulse_s"] + v["read_overhead_j"]


def reset_amplitude(preset: DevicePreset, g: torch.Tensor) -> torch.Tensor:
    """The RESET amplitude (V) that nominally (no device shift) leaves conductance ``g``."""
    v = preset.values
    ratio = (g / v["reset_g_ref"]).clamp(max=1.0, min=1e-6)
    return (v["reset_v_ref"] - v["reset_v_slope"] * torch.log(ratio)).clamp(max=v["reset_v_max"])


def increment(
    preset: DevicePreset,
    g: torch.Tensor,
    direction: torch.Tensor,
    gain: torch.Tensor,
    shift: torch.Tensor,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One fixed incremental pulse per cell: SET (``direction`` +1) or RESET (-1), no verify.

    A weak SET moves G a fraction ``inc_alpha`` of the way up to the conductance its fixed
    compliance ``inc_icc`` allows; a weak RESET a fraction down to the level its fixed
    amplitude ``inc_v_reset`` allows (saturating, nonlinear updates), each step with a relative
    cycle-to-cycle spread ``inc_noise``.  Returns ``(new G in S, energy in J)``; cells with
    direction 0 are unchanged and cost nothing.
    """
    v = preset.values
    noise = (1.0 + v["inc_noise"] * torch.randn(g.shape, generator=generator)).clamp_min(0)
    g_top = gain * v["inc_icc"] / v["set_k_volts"]
    g_bot = reset_conductance(preset, v["inc_v_reset"], shift)
    up = v["inc_alpha"] * (g_top - g).clamp_min(0) * noise
    down = v["inc_alpha"] * (g - g_bot).clamp_min(0) * noise
    g_new = torch.where(direction > 0, g + up, torch.where(direction < 0, g - down, g))
    e_set = v["v_set"] * v["inc_icc"] * v["set_pulse_s"]
    e_reset = v["inc_v_reset"] ** 2 * v["reset_cell_fraction"] * g * v["reset_pulse_s"]
    energy = torch.where(direction > 0, e_set, torch.where(direction < 0, e_reset, 0.0))
    return g_new, energy
