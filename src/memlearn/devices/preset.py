"""Device presets: every physical parameter of a cell technology, each with its source.

A preset is a TOML file in ``memlearn/devices/presets/`` (or any path).  Its ``[meta]`` table
names the technology; every other table groups parameters, and each parameter is an inline
table ``{ value = ..., source = "..." }`` whose source carries a tag from REFERENCE.md:
``[P]`` published, ``[S]`` simulator default calibrated on published data, ``[I]`` inferred,
``[E]`` engineering estimate.  Values are SI (siemens, volts, amperes, seconds, joules, kelvin,
electron-volts for activation energies).

``load_preset(name_or_path)`` accepts a shipped preset name (see ``list_presets()``) or a path
to a TOML/JSON file written by ``save_preset`` (e.g. by ``memlearn device fit``).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import tomli_w

from memlearn.bounds import check_kelvin, check_volts
from memlearn.errors import MemlearnError
from memlearn.io import atomic_write

DEFAULT_PRESET = "hfo2-mlc"
"""The reference-like multi-level HfO2 ReRAM (1T1R) preset, the default everywhere."""

KINDS = ("rram", "feram")

# Parameter name -> (table in the TOML file, unit, short meaning).  Every parameter is a float.
PARAMETERS: dict[str, tuple[str, str, str]] = {
    # conductance window
    "g_min": ("window", "S", "lowest programmable level"),
    "g_max": ("window", "S", "highest programmable level"),
    "g_ref": ("window", "S", "reference conductance for the sqrt(G) scaling of spreads"),
    # SET: compliance set by the access transistor's gate voltage
    "v_set": ("set", "V", "SET pulse amplitude on the bit line"),
    "set_pulse_s": ("set", "s", "SET pulse width"),
    "set_k_volts": ("set", "V", "G after SET = I_cc / set_k_volts (R_LRS = V_C / I_C)"),
    "gate_k": ("set", "A/V^2", "access transistor gain: I_cc = gate_k/2 (V_g - V_th)^2"),
    "gate_vth": ("set", "V", "access transistor threshold voltage"),
    "gate_step": ("set", "V", "resolution of the gate-voltage DAC"),
    "icc_min": ("set", "A", "lowest usable compliance current"),
    "icc_max": ("set", "A", "highest compliance current (gate fully on)"),
    "set_c2c": ("set", "1", "cycle-to-cycle spread: sigma_G = set_c2c * sqrt(G * g_ref)"),
    "set_d2d": ("set", "1", "device-to-device spread of the G-I_cc slope (lognormal sigma)"),
    # RESET: amplitude sets how far the gap opens
    "reset_v_ref": ("reset", "V", "RESET amplitude that brings a cell to reset_g_ref"),
    "reset_g_ref": ("reset", "S", "conductance reached at reset_v_ref"),
    "reset_v_slope": ("reset", "V", "G_reset(V) = reset_g_ref exp(-(V - reset_v_ref) / slope)"),
    "reset_v_max": ("reset", "V", "full-RESET amplitude"),
    "reset_pulse_s": ("reset", "s", "RESET pulse width"),
    "reset_c2c": ("reset", "1", "lognormal sigma of a small RESET step"),
    "reset_c2c_jump": ("reset", "1", "extra lognormal sigma per unit of ln(G_before/G_after)"),
    "reset_d2d": ("reset", "V", "device-to-device spread of reset_v_ref"),
    "reset_cell_fraction": ("reset", "1", "fraction of the pulse amplitude across the cell"),
    # read and verify
    "v_read": ("read", "V", "read voltage (largest accepted by a VMM)"),
    "read_pulse_s": ("read", "s", "read / verify pulse width"),
    "read_noise": ("read", "1", "aihwkit CMO 1/f read noise (sigma in uS per decade of G/uS)"),
    "read_noise_rel": ("read", "1", "short-term (RTN-like) read noise, fraction of G"),
    "read_t_r": ("read", "s", "aihwkit CMO read noise reference time"),
    "read_overhead_j": ("read", "J", "sense amplifier energy per verify read"),
    # program-and-verify controller
    "verify_tolerance": ("verify", "S", "half width of the verify band around a target"),
    "max_pulses": ("verify", "1", "pulse limit per cell and program operation"),
    "iset_start": ("verify", "1", "iterative SET: first compliance, fraction of nominal"),
    "iset_step": ("verify", "1", "iterative SET: compliance step, fraction of nominal"),
    "hybrid_margin": ("verify", "1", "hybrid: SET aims this fraction above the target"),
    "ireset_margin": ("verify", "1", "iterative RESET: first amplitude aims this far above"),
    "reset_step": ("verify", "V", "RESET-verify amplitude step"),
    "settle_s": ("verify", "s", "time between the end of programming and first use"),
    # relaxation and drift
    "relax_tau_s": ("drift", "s", "time constant of the fast relaxation"),
    "relax_t0_s": ("drift", "s", "time origin of the log(t) spread"),
    "relax_fast_set": ("drift", "S", "fast relaxation sigma at g_ref, SET-terminated states"),
    "relax_fast_reset": ("drift", "S", "fast relaxation sigma at g_ref, RESET-terminated states"),
    "relax_log_set": ("drift", "S", "spread growth per ln(t) at g_ref, SET-terminated"),
    "relax_log_reset": ("drift", "S", "spread growth per ln(t) at g_ref, RESET-terminated"),
    "relax_mean_set": ("drift", "S", "mean decrease per ln(t) at g_ref, SET-terminated"),
    "relax_mean_reset": ("drift", "S", "mean decrease per ln(t) at g_ref, RESET-terminated"),
    "relax_g_exp": ("drift", "1", "level law: relaxation spread and drift scale as (G/g_ref)^exp"),
    "ea_ev": ("drift", "eV", "Arrhenius activation energy of relaxation"),
    "t_ref_k": ("drift", "K", "temperature at which the drift parameters hold"),
    # faults and wear
    "stuck_low_rate": ("faults", "1", "fraction of cells stuck at low conductance"),
    "stuck_high_rate": ("faults", "1", "fraction of cells stuck at high conductance"),
    "g_stuck_low": ("faults", "S", "conductance of a cell stuck low"),
    "g_stuck_high": ("faults", "S", "conductance of a cell stuck high"),
    "endurance": ("faults", "1", "median SET/RESET cycles before a cell wears out (sticks)"),
    "endurance_sigma": ("faults", "1", "lognormal sigma of the endurance"),
    # fixed incremental pulses (Manhattan-rule updates)
    "inc_icc": ("increment", "A", "compliance of a fixed incremental SET pulse"),
    "inc_alpha": ("increment", "1", "fraction of the distance to the bound moved per pulse"),
    "inc_v_reset": ("increment", "V", "amplitude of a fixed incremental RESET pulse"),
    "inc_noise": ("increment", "1", "relative cycle-to-cycle spread of an incremental step"),
    # converters
    "adc_fom_j": ("converters", "J", "ADC energy per conversion step (Walden figure of merit)"),
    "dac_j": ("converters", "J", "DAC energy per conversion"),
    # 1T-1C ferroelectric cells
    "write_energy_j": ("feram", "J", "energy of one ferroelectric write"),
    "write_pulse_s": ("feram", "s", "ferroelectric switching pulse width"),
    "bit_fail_rate": ("feram", "1", "fraction of writes that do not switch"),
}

_COMMON = {
    "g_min",
    "g_max",
    "g_ref",
    "v_read",
    "read_pulse_s",
    "read_noise",
    "read_t_r",
    "read_overhead_j",
    "stuck_low_rate",
    "stuck_high_rate",
    "g_stuck_low",
    "g_stuck_high",
    "endurance",
    "endurance_sigma",
    "adc_fom_j",
    "dac_j",
    "settle_s",
    "max_pulses",
    "verify_tolerance",
}
_FERAM_ONLY = {"write_energy_j", "write_pulse_s", "bit_fail_rate"}
# Parameters added after preset files were first written: a resistive preset file without one
# gets this (value, source), so older files (e.g. from ``memlearn device fit``) keep loading.
OPTIONAL: dict[str, tuple[float, str]] = {
    "read_noise_rel": (
        0.0,
        "[E] default: no short-term read noise beyond the 1/f term (not given in the file)",
    ),
    "relax_g_exp": (
        0.5,
        "[I] default: sigma_G ∝ sqrt(G) from Poisson defect statistics (sigma_R/R ∝ R^0.5, "
        "Ambrogio et al., IEEE TED, Part I); not given in the preset file",
    ),
}
REQUIRED: dict[str, frozenset[str]] = {
    "rram": frozenset(set(PARAMETERS) - _FERAM_ONLY - set(OPTIONAL)),
    "feram": frozenset(_COMMON | _FERAM_ONLY),
}

_NONNEGATIVE_ONLY = {"ea_ev"}  # everything else must be > 0 or >= 0 as checked below
_ZERO_OK = {
    "stuck_low_rate",
    "stuck_high_rate",
    "set_c2c",
    "set_d2d",
    "reset_c2c",
    "reset_c2c_jump",
    "reset_d2d",
    "read_noise",
    "relax_fast_set",
    "relax_fast_reset",
    "relax_log_set",
    "relax_log_reset",
    "relax_mean_set",
    "relax_mean_reset",
    "endurance_sigma",
    "inc_noise",
    "hybrid_margin",
    "ireset_margin",
    "settle_s",
    "bit_fail_rate",
    "read_overhead_j",
    "dac_j",
    "adc_fom_j",
    "gate_step",
    "ea_ev",
    "iset_start",
    "relax_g_exp",
    "read_noise_rel",
}
_SIGNED = {"gate_vth", "relax_mean_set", "relax_mean_reset"}


@dataclass(frozen=True)
class DevicePreset:
    """A named set of cell parameters (SI units) with the source of each value.

    ``values`` maps parameter names (see ``PARAMETERS``) to floats; attribute access works
    too (``preset.g_min``).  ``sources`` maps the same names to their source strings.
    """

    name: str
    kind: str
    description: str
    values: dict[str, float]
    sources: dict[str, str]
    origin: str = ""
    meta: dict[str, str] = field(default_factory=dict)

    def __getattr__(self, key: str) -> float:
        values = self.__dict__.get("values")
        if values is not None and key in values:
            return values[key]
        raise AttributeError(f"preset has no parameter {key!r}")

    @property
    def window(self) -> tuple[float, float]:
        """``(G_min, G_max)`` in siemens."""
        return (self.values["g_min"], self.values["g_max"])

    def levels(self, n: int, window: tuple[float, float] | None = None, spacing: str = "linear"):
        """``n`` target conductances (S, float32 tensor) placed in the window; see ``levels``."""
        from memlearn.devices.levels import level_conductances

        return level_conductances(n, window or self.window, spacing)

    def replace(self, **changes: float) -> DevicePreset:
        """A copy with some parameter values changed (sources marked as overridden)."""
        return derive(self, changes, "overridden")

    def with_window(self, g_min: float, g_max: float) -> DevicePreset:
        """A copy with the conductance window ``[g_min, g_max]`` (S); see
        ``memlearn.devices.variants.with_window``."""
        from memlearn.devices.variants import with_window

        return with_window(self, g_min, g_max)

    def with_spread(self, factor: float) -> DevicePreset:
        """A copy with every source of spread scaled by ``factor``; see
        ``memlearn.devices.variants.scale_spread``."""
        from memlearn.devices.variants import scale_spread

        return scale_spread(self, factor)


def derive(preset: DevicePreset, changes: dict[str, float], reason: str) -> DevicePreset:
    """A validated copy of ``preset`` with ``changes`` (parameter -> value); each changed
    parameter's source becomes ``[E] <reason> (was <old value>: <old source>)``."""
    unknown = set(changes) - set(PARAMETERS)
    if unknown:
        raise MemlearnError(f"unknown preset parameter(s) {sorted(unknown)}")
    values = dict(preset.values)
    sources = dict(preset.sources)
    for key, value in changes.items():
        values[key] = float(value)
        sources[key] = f"[E] {reason} (was {preset.values.get(key)!r}: {sources.get(key)})"
    out = dataclasses.replace(preset, values=values, sources=sources)
    validate(out)
    return out


def _preset_dir() -> Path:
    return Path(str(resources.files("memlearn.devices") / "presets"))


def list_presets() -> list[str]:
    """Names of the presets shipped with memlearn."""
    return sorted(p.stem for p in _preset_dir().glob("*.toml"))


def load_preset(name_or_path: str | os.PathLike[str] | DevicePreset) -> DevicePreset:
    """Load a shipped preset by name, or a preset file (TOML or JSON) by path."""
    if isinstance(name_or_path, DevicePreset):
        return name_or_path
    text = str(name_or_path)
    path = Path(text)
    looks_like_path = path.suffix.lower() in (".toml", ".json") or os.sep in text
    if not looks_like_path:
        shipped = _preset_dir() / f"{text}.toml"
        if not shipped.is_file():
            raise MemlearnError(
                f"unknown preset {text!r}; shipped presets are {list_presets()}, "
                "or give the path of a .toml/.json preset file"
            )
        path = shipped
    if not path.is_file():
        raise MemlearnError(f"preset file {text!r} does not exist")
    try:
        raw = path.read_bytes()
        data = json.loads(raw) if path.suffix.lower() == ".json" else tomllib.loads(raw.decode())
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MemlearnError(f"preset file {str(path)!r} is not valid TOML/JSON: {exc}") from exc
    return from_dict(data, origin=str(path))


def from_dict(data: dict[str, Any], origin: str = "") -> DevicePreset:
    """Build and validate a preset from the nested table layout of a preset file."""
    if not isinstance(data, dict) or not isinstance(data.get("meta"), dict):
        raise MemlearnError(f"preset {origin!r}: missing [meta] table")
    meta = data["meta"]
    name = meta.get("name")
    kind = meta.get("kind", "rram")
    if not isinstance(name, str) or not name:
        raise MemlearnError(f"preset {origin!r}: [meta] name must be a non-empty string")
    if kind not in KINDS:
        raise MemlearnError(f"preset {name!r}: kind {kind!r} unknown; allowed {list(KINDS)}")
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    for table, entries in data.items():
        if table == "meta":
            continue
        if not isinstance(entries, dict):
            raise MemlearnError(f"preset {name!r}: [{table}] must be a table")
        for key, entry in entries.items():
            if key not in PARAMETERS:
                raise MemlearnError(
                    f"preset {name!r}: unknown parameter {table}.{key}; "
                    f"known parameters are {sorted(PARAMETERS)}"
                )
            if not isinstance(entry, dict) or "value" not in entry or "source" not in entry:
                raise MemlearnError(
                    f'preset {name!r}: {key} must be {{ value = <number>, source = "..." }}'
                )
            value = entry["value"]
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise MemlearnError(f"preset {name!r}: {key} value {value!r} is not a number")
            values[key] = float(value)
            sources[key] = str(entry["source"])
    if kind == "rram":
        for key, (value, source) in OPTIONAL.items():
            if key not in values:
                values[key], sources[key] = value, source
    extra_meta = {k: str(v) for k, v in meta.items() if k not in ("name", "kind", "description")}
    preset = DevicePreset(
        name=name,
        kind=kind,
        description=str(meta.get("description", "")),
        values=values,
        sources=sources,
        origin=origin,
        meta=extra_meta,
    )
    validate(preset)
    return preset


def validate(preset: DevicePreset) -> None:
    """Raise ``MemlearnError`` naming the first missing or out-of-range parameter."""
    v = preset.values
    missing = sorted(REQUIRED[preset.kind] - set(v))
    if missing:
        raise MemlearnError(f"preset {preset.name!r} ({preset.kind}) lacks parameters {missing}")
    for key, value in v.items():
        if not math.isfinite(value):
            raise MemlearnError(f"preset {preset.name!r}: {key} = {value} is not finite")
        if key in _SIGNED:
            continue
        if key in _ZERO_OK:
            if value < 0:
                raise MemlearnError(f"preset {preset.name!r}: {key} = {value} must be >= 0")
        elif value <= 0:
            raise MemlearnError(f"preset {preset.name!r}: {key} = {value} must be > 0")
        unit = PARAMETERS[key][1]
        if unit in ("V", "K"):  # physical bounds shared by every layer
            (check_volts if unit == "V" else check_kelvin)(value, f"preset {preset.name!r}: {key}")
    if not v["g_min"] < v["g_max"]:
        raise MemlearnError(
            f"preset {preset.name!r}: window inverted, g_min {v['g_min']} >= g_max {v['g_max']}"
        )
    for key in ("stuck_low_rate", "stuck_high_rate", "bit_fail_rate"):
        if key in v and v[key] > 1:
            raise MemlearnError(f"preset {preset.name!r}: {key} = {v[key]} must be in [0, 1]")
    if v.get("relax_g_exp", 0.0) > 2:
        raise MemlearnError(
            f"preset {preset.name!r}: relax_g_exp = {v['relax_g_exp']} must be in [0, 2]"
        )
    if v["stuck_low_rate"] + v["stuck_high_rate"] > 1:
        raise MemlearnError(f"preset {preset.name!r}: stuck rates add up to more than 1")
    if v["max_pulses"] < 1 or v["max_pulses"] != int(v["max_pulses"]):
        raise MemlearnError(f"preset {preset.name!r}: max_pulses must be a positive integer")
    if preset.kind == "rram" and not v["icc_min"] < v["icc_max"]:
        raise MemlearnError(f"preset {preset.name!r}: icc_min must be below icc_max")


def to_dict(preset: DevicePreset) -> dict[str, Any]:
    """The nested table layout of a preset file (inverse of ``from_dict``)."""
    meta: dict[str, Any] = {"name": preset.name, "kind": preset.kind}
    meta["description"] = preset.description
    meta.update(preset.meta)
    out: dict[str, Any] = {"meta": meta}
    for key in PARAMETERS:
        if key in preset.values:
            table = PARAMETERS[key][0]
            out.setdefault(table, {})[key] = {
                "value": preset.values[key],
                "source": preset.sources.get(key, "[E] unspecified"),
            }
    return out


def save_preset(preset: DevicePreset, path: str | os.PathLike[str]) -> Path:
    """Write a preset file (``.toml`` or ``.json`` by suffix) atomically; returns the path."""
    target = Path(path)
    suffix = target.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise MemlearnError(f"preset file {str(target)!r} must end in .toml or .json")
    validate(preset)
    data = to_dict(preset)
    with atomic_write(target) as handle:
        if suffix == ".json":
            json.dump(data, handle, indent=2)
        else:
            handle.write(tomli_w.dumps(data))
    return target
