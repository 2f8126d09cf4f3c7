"""What a run records next to its results: config, seeds, package versions, machine, time."""

from __future__ import annotations

import datetime as _dt
import json
import platform
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from memlearn.io import atomic_write

_PACKAGES = ("memlearn", "torch", "numpy", "scipy", "matplotlib", "typer", "ray")


def package_versions() -> dict[str, str]:
    """Installed versions of memlearn and the libraries its results depend on."""
    versions = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def provenance(config: dict[str, Any]) -> dict[str, Any]:
    """A JSON-ready record of ``config`` with versions, platform and UTC time."""
    return {
        "config": config,
        "versions": package_versions(),
        "platform": platform.platform(),
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


def write_json(path: str | Path, payload: Any) -> Path:
    """Write ``payload`` as indented JSON, atomically."""
    path = Path(path)
    with atomic_write(path) as handle:
        json.dump(payload, handle, indent=2, sort_keys=False, default=_jsonable)
        handle.write("\n")
    return path


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")
