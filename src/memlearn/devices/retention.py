"""Relaxation and temperature-accelerated drift after programming.

Right after a write a cell's conductance relaxes: fast in the first seconds, then with a
spread growing ~ ln(t) and a small mean decrease (Esmanhotto et al., IEDM 2020; IBM CMO model).
For a cell of conductance G, programmed ``t`` effective seconds ago (at ``t_ref_k``):

    sigma^2(t) = h(G)^2 [ fast^2 (1 - exp(-t / tau)) + slog^2 L(t)^2 ],  L(t) = ln(1 + t / t0)
    mu(t)      = -m h(G) L(t),                                h(G) = (G / g_ref)^relax_g_exp

Why these two dependences (the physics the parameters stand for):

- **Strategy.** ``(fast, slog, m)`` are the ``*_set`` or ``*_reset`` parameters depending on
  whether the cell's last pulse was a SET or a RESET.  A SET at low compliance leaves a thin,
  defect-poor filament whose vacancies re-arrange (intrinsic program instability of low-current
  SET states: Fantini et al., IEDM 2015); a RESET that trims a filament leaves a cleaner gap
  and is more stable (RESET-and-verify against low-conductance drift: Baroni et al., IIRW
  2021).  Hybrid and iterative-RESET states end with a RESET, single-shot and iterative-SET
  states with a SET, so hybrid drifts less than iterative SET (reference work, VLSI 2025).
- **Level.** Relaxation is the random motion of the defects that carry the current: with
  ``N ∝ G`` defects, Poisson statistics give ``sigma_G ∝ sqrt(G)`` (``relax_g_exp = 0.5``;
  sigma_R / R ∝ R^0.5: Ambrogio et al., IEEE TED, "Statistical fluctuations in HfOx RRAM",
  Part I), so low-conductance states relax least in siemens but most relative to their value.
  Some technologies relax level-independently in siemens (IBM CMO/HfOx, aihwkit
  ReRamCMONoiseModel: exponent 0); the exponent is a preset parameter, and ``memlearn device
  fit`` estimates it from measured levels.

Advancing from t1 to t2 adds an independent Gaussian increment with the variance difference,
so successive ``relax`` calls compose exactly.  Temperature enters through Arrhenius:
``t_eff = t * exp(Ea / k_B (1 / T_ref - 1 / T))`` with ``Ea = ea_ev`` (1.5 eV by default,
REFERENCE.md s1), so 12 h at 150 °C and 10 years at 75 °C age cells alike.
"""

from __future__ import annotations

import math

import torch

from memlearn.bounds import check_celsius, check_hours, check_years
from memlearn.devices.cells import STUCK_NONE, CellState
from memlearn.devices.preset import DevicePreset
from memlearn.errors import MemlearnError

BOLTZMANN_EV = 8.617333262e-5  # eV/K, CODATA 2018
SECONDS_PER_YEAR = 365.25 * 86400.0
DEFAULT_EA_EV = 1.5  # [I] REFERENCE.md s1: 12 h at 150 °C ≈ 10 years at 75 °C implies Ea ≈ 1.5 eV


def celsius(t_celsius: float) -> float:
    """Kelvin from degrees Celsius (must be above -273.15 °C)."""
    return _kelvin(t_celsius, "temperature")


def acceleration_factor(
    kelvin: float, ea_ev: float = DEFAULT_EA_EV, t_ref_k: float = 300.0
) -> float:
    """Arrhenius acceleration ``exp(Ea / k_B (1 / t_ref_k - 1 / kelvin))`` of time spent at
    ``kelvin`` relative to ``t_ref_k`` (both K), for an activation energy ``ea_ev`` (eV)."""
    if not (kelvin > 0 and t_ref_k > 0):
        raise MemlearnError(f"temperature must be > 0 K, got {kelvin} K (reference {t_ref_k} K)")
    if not ea_ev >= 0:
        raise MemlearnError(f"activation energy ea_ev must be >= 0 eV, got {ea_ev}")
    return math.exp(ea_ev / BOLTZMANN_EV * (1.0 / t_ref_k - 1.0 / kelvin))


def equivalent_seconds(preset: DevicePreset, seconds: float, kelvin: float) -> float:
    """Effective seconds at the preset's reference temperature for ``seconds`` at ``kelvin``."""
    if not seconds >= 0:
        raise MemlearnError(f"seconds must be >= 0 s, got {seconds}")
    v = preset.values
    if "ea_ev" not in v:
        return float(seconds)
    return float(seconds) * acceleration_factor(kelvin, v["ea_ev"], v["t_ref_k"])


def level_factor(preset: DevicePreset, g: torch.Tensor) -> torch.Tensor:
    """``h(G) = (G / g_ref)^relax_g_exp``, the level dependence of relaxation (dimensionless)."""
    v = preset.values
    ratio = g.clamp_min(0) / v["g_ref"]
    p = v.get("relax_g_exp", 0.5)
    return torch.sqrt(ratio) if p == 0.5 else ratio**p


def _profile(
    preset: DevicePreset, reset_final: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Per-cell (fast sigma, log-growth sigma, mean drift) by how the last write ended."""
    v = preset.values
    fast = torch.where(reset_final, v["relax_fast_reset"], v["relax_fast_set"])
    slog = torch.where(reset_final, v["relax_log_reset"], v["relax_log_set"])
    mean = torch.where(reset_final, v["relax_mean_reset"], v["relax_mean_set"])
    return fast, slog, mean


def relax(
    preset: DevicePreset, cells: CellState, seconds: float, generator: torch.Generator
) -> None:
    """Age ``cells`` (in place) by ``seconds`` effective seconds at the reference temperature
    (the technology's ``relax``: resistive cells relax as described above, others only age)."""
    if not seconds >= 0:
        raise MemlearnError(f"seconds must be >= 0 s, got {seconds}")
    if seconds == 0:
        cells.age_s += seconds
        return
    preset.technology.relax(preset, cells, seconds, generator)


def relax_filaments(
    preset: DevicePreset, cells: CellState, seconds: float, generator: torch.Generator
) -> None:
    """The relaxation of resistive cells (the module docstring's model), ``seconds`` > 0."""
    v = preset.values
    t1 = cells.age_s.double()
    t2 = t1 + seconds
    fast, slog, mean = _profile(preset, cells.reset_final)
    tau, t0 = v["relax_tau_s"], v["relax_t0_s"]
    l1 = torch.log1p(t1 / t0)
    l2 = torch.log1p(t2 / t0)
    dfast = (torch.exp(-t1 / tau) - torch.exp(-t2 / tau)).float()
    dlog2 = (l2 * l2 - l1 * l1).float()
    dl = (l2 - l1).float()
    h = level_factor(preset, cells.g)
    var = h * h * (fast * fast * dfast + slog * slog * dlog2)
    step = -mean * h * dl + torch.sqrt(var) * torch.randn(cells.g.shape, generator=generator)
    healthy = cells.stuck == STUCK_NONE
    cells.g.copy_(torch.where(healthy, (cells.g + step).clamp_min(0.0), cells.g))
    cells.age_s.copy_(t2.float())


def _kelvin(t_celsius: float, name: str) -> float:
    """Kelvin from a Celsius temperature, checked to lie above absolute zero."""
    t = float(t_celsius)
    if not t > -273.15:
        raise MemlearnError(f"{name} must be above -273.15 °C, got {t_celsius}")
    return t + 273.15


def bake(
    preset: DevicePreset,
    cells: CellState,
    hours: float,
    celsius: float,
    generator: torch.Generator,
) -> float:
    """Bake ``cells`` (in place) for ``hours`` at ``celsius`` °C; returns the effective seconds
    at the reference temperature (12 h at 150 °C ≈ 10 years at 75 °C for Ea = 1.5 eV)."""
    if not float(hours) >= 0:
        raise MemlearnError(f"hours must be >= 0, got {hours}")
    kelvin = _kelvin(celsius, "celsius")
    check_hours(hours)
    check_celsius(celsius)
    seconds = equivalent_seconds(preset, float(hours) * 3600.0, kelvin)
    relax(preset, cells, seconds, generator)
    return seconds


def age(
    preset: DevicePreset,
    cells: CellState,
    years: float,
    celsius: float,
    generator: torch.Generator,
) -> float:
    """Age ``cells`` (in place) for ``years`` at ``celsius`` °C; returns effective seconds."""
    if not float(years) >= 0:
        raise MemlearnError(f"years must be >= 0, got {years}")
    kelvin = _kelvin(celsius, "celsius")
    check_years(years)
    check_celsius(celsius)
    seconds = equivalent_seconds(preset, float(years) * SECONDS_PER_YEAR, kelvin)
    relax(preset, cells, seconds, generator)
    return seconds
