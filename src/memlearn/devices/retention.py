"""Relaxation and temperature-accelerated drift after programming.

Right after a write a cell's conductance relaxes: fast in the first seconds, then with a
spread growing ~ ln(t) and a small mean decrease (Esmanhotto et al., IEDM 2020; IBM CMO model,
aihwkit ``ReRamCMONoiseModel``).  For a cell programmed ``t`` effective seconds ago (at
``t_ref_k``):

    sigma^2(t) = h^2 [ fast^2 (1 - exp(-t / tau)) + slog^2 L(t)^2 ],   L(t) = ln(1 + t / t0)
    mu(t)      = -m L(t)

``fast = relax_fast``, ``slog = relax_log``, ``m = relax_mean``.  The mean drift is the same for
every state (the CMO fit finds it level-independent).  The spread depends on how and where the
state was made, through its stability factor

    h = (I_cc / I_ref)^(-relax_icc_exp) * (1 + relax_reset_depth * d),   I_ref = g_ref set_k_volts

- ``I_cc`` (``CellState.set_icc``) is the compliance of the SET that made the filament: a
  low-compliance SET leaves a thin filament of few defects whose rearrangement moves G most
  (intrinsic program instability of low-current SET states: Fantini et al., IEDM 2015), and
  the spread of program-and-verify HfO2 levels falls with G (Milo et al., IRPS 2021).
  ``relax_fast`` and ``relax_icc_exp`` come from ``memlearn device fit`` on those data
  (``devices/data``).  Below ``relax_icc_floor``, the lowest compliance of the fitted data,
  the law is held at its value there, not extrapolated.
- ``d`` (``CellState.reset_depth``) is how far RESET pulses opened that filament since the SET
  (``ln(G after the SET / G)``): a RESET-terminated state is the filament of its SET with a
  gap whose stability ``relax_reset_depth`` describes (0: the gap adds no instability).
  Whether a RESET-terminated state is more or less stable than a SET-terminated one of the
  same G therefore follows from its SET compliance and its depth, not from its strategy.

Advancing from t1 to t2 adds an independent Gaussian increment with the variance difference,
so successive ``relax`` calls compose exactly.  Temperature enters through Arrhenius:
``t_eff = t * exp(Ea / k_B (1 / T_ref - 1 / T))`` with ``Ea = ea_ev`` (1.5 eV by default,
REFERENCE.md s1), so 12 h at 150 °C and 10 years at 75 °C age cells alike.
"""

from __future__ import annotations

import functools
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


def stability_factor(preset: DevicePreset, cells: CellState) -> torch.Tensor:
    """``h = (I_cc / I_ref)^(-relax_icc_exp) (1 + relax_reset_depth d)`` per cell
    (dimensionless), the factor on the relaxation spread; see the module docstring."""
    v = preset.values
    i_ref = v["g_ref"] * v["set_k_volts"]
    icc = cells.set_icc.clamp_min(max(v["icc_min"], v.get("relax_icc_floor", 0.0)))
    h = (icc / i_ref) ** (-v["relax_icc_exp"])
    return h * (1.0 + v["relax_reset_depth"] * cells.reset_depth.clamp_min(0))


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
    fast, slog, mean = v["relax_fast"], v["relax_log"], v["relax_mean"]
    tau, t0 = v["relax_tau_s"], v["relax_t0_s"]
    fresh = not bool(cells.age_s.any())
    terms = _fresh_terms(float(seconds), tau, t0, str(cells.age_s.device)) if fresh else None
    h = stability_factor(preset, cells)
    if terms is None:
        t1 = cells.age_s.double()
        t2 = t1 + seconds
        dfast, dlog2, dl = _time_terms(t1, t2, tau, t0)
        spread, drift = fast * fast * dfast + slog * slog * dlog2, -mean * dl
    else:  # every cell just programmed: the time terms are one value for all
        spread, drift = _fresh_coefficients(terms, fast, slog, mean)
    var = h * h * spread
    step = drift + torch.sqrt(var) * torch.randn(cells.g.shape, generator=generator)
    healthy = cells.stuck == STUCK_NONE
    cells.g.copy_(torch.where(healthy, (cells.g + step).clamp_min(0.0), cells.g))
    if terms is None:
        cells.age_s.copy_(t2.float())
    else:
        cells.age_s.fill_(float(seconds))  # 0 + seconds, to float32 as t2.float() rounds it


_COEFFICIENTS: dict[tuple[int, float, float, float], tuple[object, torch.Tensor, torch.Tensor]] = {}


def _fresh_coefficients(
    terms: tuple[torch.Tensor, torch.Tensor, torch.Tensor], fast: float, slog: float, mean: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(fast² Δfast + slog² ΔL², -mean ΔL)`` of :func:`_fresh_terms`' 0-d ``terms``, computed
    by the same tensor operations as for a general age and kept per terms and parameters."""
    key = (id(terms), fast, slog, mean)
    hit = _COEFFICIENTS.get(key)
    if hit is None or hit[0] is not terms:
        dfast, dlog2, dl = terms
        if len(_COEFFICIENTS) >= 64:
            _COEFFICIENTS.clear()
        hit = (terms, fast * fast * dfast + slog * slog * dlog2, -mean * dl)
        _COEFFICIENTS[key] = hit
    return hit[1], hit[2]


def _time_terms(
    t1: torch.Tensor, t2: torch.Tensor, tau: float, t0: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(Δ fast, Δ L², Δ L)`` (float32) between effective ages ``t1`` and ``t2`` (s, float64)."""
    l1 = torch.log1p(t1 / t0)
    l2 = torch.log1p(t2 / t0)
    dfast = (torch.exp(-t1 / tau) - torch.exp(-t2 / tau)).float()
    return dfast, (l2 * l2 - l1 * l1).float(), (l2 - l1).float()


@functools.lru_cache(maxsize=64)
def _fresh_terms(
    seconds: float, tau: float, t0: float, device: str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
    """:func:`_time_terms` from age 0 to ``seconds``, as 0-d tensors, when every element of a
    tensor gets the same value; ``None`` when it does not.  Torch computes ``exp``/``log1p``
    with vector code in the body of a tensor and scalar code in its tail, which may differ in
    the last bit: the terms are computed over a body and a tail and used only if all agree
    (on the cells' ``device``, whose kernels compute them)."""
    t1 = torch.zeros(67, dtype=torch.float64, device=device)  # 64 in vector code, 3 in the tail
    terms = torch.stack(_time_terms(t1, t1 + seconds, tau, t0))
    if not bool((terms == terms[:, :1]).all()):
        return None
    dfast, dlog2, dl = terms[:, 0].clone()
    return dfast, dlog2, dl


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
