"""Physical bounds on the inputs every layer accepts: durations, temperatures, voltages, spares.

One place decides what a time, a temperature or a voltage may be, so that the command line, the
library (:meth:`memlearn.chip.simulated.SimulatedChip.advance`, the retention functions of
:mod:`memlearn.devices`) and the bench server (:mod:`memlearn.chip.server`) refuse the same
values with the same message, before any work.  Values outside these ranges are not physics
the models describe: they would only overflow (``1e299`` hours is ``inf`` seconds, and every
conductance after it NaN).

Why these limits:

- **Durations** ``0 <= t <= 1e10 s`` (~317 years) [E]: retention is specified for 10 years
  (REFERENCE.md s1: 12 h at 150 °C ≈ 10 years at 75 °C); 30 times that covers any lifetime or
  accelerated-ageing question while keeping every intermediate (``ln(1 + t / t0)``, the
  Arrhenius-equivalent seconds, float32 ages) finite.
- **Temperatures** ``200 K <= T <= 700 K`` (-73 °C to 427 °C) [E]: the low end lies below the
  -65 °C of the widest (military) storage range; the high end lies above the hottest retention
  bakes used on oxide RRAM (150-300 °C; JEDEC high-temperature storage bakes top out near
  300 °C) and just below the ~450 °C thermal budget of the back-end-of-line process the cells
  are built in, above which the device is changed (metal and oxide recrystallise) and a single
  Arrhenius activation energy no longer describes it.
- **Voltages** ``|V| <= 10 V`` [E]: well above the 2-4 V forming and 1-2 V SET/RESET pulses of
  HfOx cells, and above the breakdown of their 5-10 nm oxides (~5 MV/cm, i.e. 2.5-5 V); a larger
  value is a unit mistake (mV for V), never a pulse.
- **Spare pairs**: at most the pairs left free in the output array's last tile (the spares that
  cost no extra tile, :func:`memlearn.chip.layout.tile_spares`).
"""

from __future__ import annotations

import math

from memlearn.errors import MemlearnError

MAX_SECONDS = 1e10  # [E] ~317 years, 30x the 10-year retention specification
SECONDS_PER_HOUR = 3600.0
SECONDS_PER_YEAR = 365.25 * 86400.0
MIN_KELVIN = 200.0  # [E] -73 °C, below the -65 °C of military storage ranges
MAX_KELVIN = 700.0  # [E] 427 °C, above RRAM retention bakes, below the ~450 °C BEOL budget
ZERO_CELSIUS_K = 273.15
MAX_VOLTS = 10.0  # [E] above any HfOx forming/SET/RESET pulse and the oxide's breakdown


def _number(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MemlearnError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def check_seconds(
    value: float, name: str = "seconds", scale: float = 1.0, unit: str = "s"
) -> float:
    """``value`` (in ``unit``, ``scale`` seconds each) if ``0 <= value * scale <= MAX_SECONDS``;
    :class:`MemlearnError` naming ``name`` and the allowed range otherwise."""
    v = _number(value, name)
    top = MAX_SECONDS / scale
    if not (math.isfinite(v) and 0.0 <= v <= top):
        raise MemlearnError(
            f"{name} must be >= 0 and at most {top:.4g} {unit} ({MAX_SECONDS:.0e} s, "
            f"~317 years), got {v:g}"
        )
    return v


def check_hours(value: float, name: str = "hours") -> float:
    """Hours, checked as :func:`check_seconds` does."""
    return check_seconds(value, name, SECONDS_PER_HOUR, "h")


def check_years(value: float, name: str = "years") -> float:
    """Years, checked as :func:`check_seconds` does."""
    return check_seconds(value, name, SECONDS_PER_YEAR, "years")


def check_kelvin(value: float, name: str = "kelvin") -> float:
    """``value`` (K) if ``MIN_KELVIN <= value <= MAX_KELVIN``; MemlearnError otherwise."""
    v = _number(value, name)
    if not (math.isfinite(v) and MIN_KELVIN <= v <= MAX_KELVIN):
        raise MemlearnError(
            f"{name} must be a temperature in [{MIN_KELVIN:g}, {MAX_KELVIN:g}] K "
            f"({MIN_KELVIN - ZERO_CELSIUS_K:g} to {MAX_KELVIN - ZERO_CELSIUS_K:g} °C), got {v:g} K"
        )
    return v


def check_celsius(value: float, name: str = "celsius") -> float:
    """Kelvin of ``value`` (°C) if it lies in the allowed range; MemlearnError otherwise."""
    v = _number(value, name)
    low, high = MIN_KELVIN - ZERO_CELSIUS_K, MAX_KELVIN - ZERO_CELSIUS_K
    if not (math.isfinite(v) and low <= v <= high):
        raise MemlearnError(
            f"{name} must be a temperature in [{low:g}, {high:g}] °C "
            f"({MIN_KELVIN:g} to {MAX_KELVIN:g} K), got {v:g} °C"
        )
    return v + ZERO_CELSIUS_K


def check_volts(value: float, name: str = "voltage", limit: float = MAX_VOLTS) -> float:
    """``value`` (V) if ``|value| <= limit`` (at most :data:`MAX_VOLTS`); MemlearnError else."""
    v = _number(value, name)
    limit = min(float(limit), MAX_VOLTS)
    if not (math.isfinite(v) and abs(v) <= limit):
        raise MemlearnError(f"{name} must be a voltage within ±{limit:g} V, got {v:g} V")
    return v


def check_spare_pairs(spares: int, available: int, name: str = "spare pairs") -> int:
    """``spares`` if it is an integer in ``[0, available]`` (the pairs the tile leaves free)."""
    if isinstance(spares, bool) or not isinstance(spares, int):
        raise MemlearnError(f"{name} must be an integer, got {type(spares).__name__}")
    if not 0 <= spares <= available:
        raise MemlearnError(
            f"{name} must be in [0, {available}] (the column pairs the output array's tile "
            f"leaves free), got {spares}"
        )
    return spares
