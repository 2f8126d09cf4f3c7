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
from typing import TYPE_CHECKING, Any

import tomli_w

from memlearn.bounds import check_kelvin, check_volts
from memlearn.devices.parameters import (
    COMMON_PARAMETERS,
    OPTIONAL,
    PARAMETERS,
    RETIRED,
    SIGNED,
    ZERO_OK,
    parameters_in,
)
from memlearn.errors import MemlearnError
from memlearn.io import atomic_write

if TYPE_CHECKING:
    from memlearn.devices.technology import CellTechnology

__all__ = [
    "COMMON_PARAMETERS",
    "DEFAULT_PRESET",
    "OPTIONAL",
    "PARAMETERS",
    "DevicePreset",
    "derive",
    "from_dict",
    "list_presets",
    "load_preset",
    "parameters_in",
    "save_preset",
    "to_dict",
    "validate",
]

DEFAULT_PRESET = "hfo2-mlc"
"""The reference-like multi-level HfO2 ReRAM (1T1R) preset, the default everywhere."""


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
    def technology(self) -> CellTechnology:
        """The cell technology of this preset's ``kind`` (``memlearn.devices.technologies``)."""
        from memlearn.devices.technologies import technology

        return technology(self.kind)

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
    from memlearn.devices.technologies import TECHNOLOGIES

    if kind not in TECHNOLOGIES:
        raise MemlearnError(f"preset {name!r}: kind {kind!r} unknown; allowed {list(TECHNOLOGIES)}")
    values: dict[str, float] = {}
    sources: dict[str, str] = {}
    for table, entries in data.items():
        if table == "meta":
            continue
        if not isinstance(entries, dict):
            raise MemlearnError(f"preset {name!r}: [{table}] must be a table")
        for key, entry in entries.items():
            if key in RETIRED:
                raise MemlearnError(f"preset {name!r}: {table}.{key} is replaced by {RETIRED[key]}")
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
    for key, (value, source) in TECHNOLOGIES[kind].optional.items():
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
    from memlearn.devices.technologies import technology

    tech = technology(preset.kind)
    v = preset.values
    missing = sorted(tech.required - set(v))
    if missing:
        raise MemlearnError(f"preset {preset.name!r} ({preset.kind}) lacks parameters {missing}")
    for key, value in v.items():
        if not math.isfinite(value):
            raise MemlearnError(f"preset {preset.name!r}: {key} = {value} is not finite")
        if key in SIGNED:
            continue
        if key in ZERO_OK:
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
    if abs(v.get("relax_icc_exp", 0.0)) > 2:
        raise MemlearnError(
            f"preset {preset.name!r}: relax_icc_exp = {v['relax_icc_exp']} must be in [-2, 2]"
        )
    if v["stuck_low_rate"] + v["stuck_high_rate"] > 1:
        raise MemlearnError(f"preset {preset.name!r}: stuck rates add up to more than 1")
    if v["max_pulses"] < 1 or v["max_pulses"] != int(v["max_pulses"]):
        raise MemlearnError(f"preset {preset.name!r}: max_pulses must be a positive integer")
    if v.get("abandon_pulses", 0) != int(v.get("abandon_pulses", 0)):
        raise MemlearnError(f"preset {preset.name!r}: abandon_pulses must be an integer >= 0")
    tech.check(preset)


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
