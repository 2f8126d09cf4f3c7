"""The registry of cell technologies, keyed by a preset's ``kind``.

Adding a technology: write its module (a ``technology.CellTechnology`` subclass, formulas and
sources in its docstring) and add an instance to ``TECHNOLOGIES`` below; presets name it with
``kind = "<its kind>"`` in their ``[meta]`` table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from memlearn.devices.feram import FerroelectricCell
from memlearn.devices.rram import ResistiveCell
from memlearn.devices.technology import CellTechnology
from memlearn.errors import MemlearnError

if TYPE_CHECKING:
    from memlearn.devices.preset import DevicePreset

TECHNOLOGIES: dict[str, CellTechnology] = {
    t.kind: t for t in (ResistiveCell(), FerroelectricCell())
}

KINDS: tuple[str, ...] = tuple(TECHNOLOGIES)
"""The preset kinds memlearn simulates."""


def technology(preset: DevicePreset | str) -> CellTechnology:
    """The technology of ``preset`` (a ``DevicePreset`` or a kind name)."""
    kind = preset if isinstance(preset, str) else preset.kind
    try:
        return TECHNOLOGIES[kind]
    except KeyError:
        raise MemlearnError(f"unknown cell kind {kind!r}; allowed {list(KINDS)}") from None
