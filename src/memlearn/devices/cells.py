"""The state of a batch of cells: conductance, age, how it was last written, and the frozen
per-cell (device-to-device) properties sampled once when a chip is made.

All tensors share one shape, the leading dimension being the chip; conductances in siemens,
ages in seconds (effective seconds at the preset's reference temperature).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch

from memlearn.devices.preset import DevicePreset

STUCK_NONE, STUCK_LOW, STUCK_HIGH = 0, 1, 2
FROZEN = ("set_gain", "reset_shift", "endurance")
"""The fields sampled once when a chip is made (device-to-device properties): no write or
relaxation changes them."""


@dataclass
class CellState:
    """Mutable state of cells (all tensors of one shape).

    - ``g``: true conductance (S), float32
    - ``age_s``: effective time since the cell was last programmed (s at ``t_ref_k``), float32
    - ``reset_final``: the last write ended with a RESET, bool
    - ``set_icc``: compliance current (A) of the last SET, the one that made the filament
    - ``reset_depth``: how far RESET pulses since that SET opened the filament,
      ``ln(G after the SET / G now)`` (e-folds, >= 0; 0 for a SET-terminated state)
    - ``set_gain``: device-to-device factor on the G-I_cc slope, float32
    - ``reset_shift``: device-to-device shift of the RESET onset (V), float32
    - ``stuck``: 0 healthy, 1 stuck low, 2 stuck high (int8)
    - ``pulses``: programming pulses received so far (float32, exact below 2^24)
    - ``endurance``: pulses this cell survives before it sticks (float32)
    """

    g: torch.Tensor
    age_s: torch.Tensor
    reset_final: torch.Tensor
    set_icc: torch.Tensor
    reset_depth: torch.Tensor
    set_gain: torch.Tensor
    reset_shift: torch.Tensor
    stuck: torch.Tensor
    pulses: torch.Tensor
    endurance: torch.Tensor

    @property
    def shape(self) -> torch.Size:
        return self.g.shape

    def flat(self) -> CellState:
        """A view of the same storage with every tensor flattened to 1-D (1-D ones as they
        are).  The same object while no field of either is replaced (no new views each call)."""
        tensors = tuple(getattr(self, name) for name in NAMES)
        kept = self.__dict__.get("_flat_view")
        if kept is not None:
            sources, views, flat = kept
            if all(a is b for a, b in zip(sources, tensors, strict=True)) and all(
                getattr(flat, name) is v for name, v in zip(NAMES, views, strict=True)
            ):
                return flat
        views = tuple(_flat(t) for t in tensors)
        flat = CellState(*views)
        self.__dict__["_flat_view"] = (tensors, views, flat)
        return flat

    def __getstate__(self) -> dict:
        """Pickled without the views of :meth:`flat` (made again from the fields)."""
        return {k: v for k, v in self.__dict__.items() if k != "_flat_view"}

    def take(self, index: torch.Tensor) -> CellState:
        """Copy of the cells at flat ``index`` (1-D)."""
        flat = self.flat()
        return CellState(*(getattr(flat, name).index_select(0, index) for name in NAMES))

    def put(self, index: torch.Tensor, part: CellState, frozen: bool = True) -> None:
        """Write ``part`` back into the cells at flat ``index`` (in place); ``frozen=False``
        skips the device-to-device properties (:data:`FROZEN`), for a ``part`` taken from
        these cells and only written to since (a write never changes them)."""
        flat = self.flat()
        for name in NAMES if frozen else WRITTEN:
            getattr(flat, name).scatter_(0, index, _flat(getattr(part, name)))

    def clone(self) -> CellState:
        return CellState(**{f.name: getattr(self, f.name).clone() for f in fields(self)})


NAMES = tuple(f.name for f in fields(CellState))
"""The fields of :class:`CellState`, in order."""
WRITTEN = tuple(name for name in NAMES if name not in FROZEN)
"""The fields a write or relaxation changes."""


def _flat(t: torch.Tensor) -> torch.Tensor:
    return t if t.dim() == 1 else t.view(-1)


def reset_conductance(
    preset: DevicePreset, volts: torch.Tensor | float, shift: torch.Tensor
) -> torch.Tensor:
    """Nominal conductance (S) a RESET of amplitude ``volts`` leaves, for a cell whose RESET
    onset is shifted by ``shift`` volts: ``reset_g_ref * exp(-(V - V_ref - shift) / slope)``."""
    v = preset.values
    return v["reset_g_ref"] * torch.exp(-(volts - v["reset_v_ref"] - shift) / v["reset_v_slope"])


def sample_cells(
    preset: DevicePreset, shape: tuple[int, ...] | torch.Size, generator: torch.Generator
) -> CellState:
    """Fresh cells: stuck cells at the preset's rates, endurance limits, and the
    technology's fresh state and device-to-device properties (``CellTechnology.sample``)."""
    shape = tuple(shape)
    v = preset.values
    u = torch.rand(shape, generator=generator)
    stuck = torch.zeros(shape, dtype=torch.int8)
    stuck[u < v["stuck_low_rate"]] = STUCK_LOW
    stuck[(u >= v["stuck_low_rate"]) & (u < v["stuck_low_rate"] + v["stuck_high_rate"])] = (
        STUCK_HIGH
    )
    endurance = (
        2.0
        * v["endurance"]
        * torch.exp(v["endurance_sigma"] * torch.randn(shape, generator=generator))
    )  # two pulses (SET + RESET) per cycle
    g, set_gain, reset_shift = preset.technology.sample(preset, shape, generator)
    g = torch.where(stuck == STUCK_LOW, torch.tensor(v["g_stuck_low"]), g)
    g = torch.where(stuck == STUCK_HIGH, torch.tensor(v["g_stuck_high"]), g)
    return CellState(
        g=g.float().contiguous(),
        age_s=torch.zeros(shape),
        reset_final=torch.ones(shape, dtype=torch.bool),
        # formed at the highest compliance, then fully RESET (the depth of a fresh cell's
        # RESET does not matter: a cell is programmed before use)
        set_icc=torch.full(shape, float(v.get("icc_max", 0.0))),
        reset_depth=torch.zeros(shape),
        set_gain=set_gain.float(),
        reset_shift=reset_shift.float(),
        stuck=stuck,
        pulses=torch.zeros(shape),
        endurance=endurance.float(),
    )


def apply_wear(preset: DevicePreset, cells: CellState) -> torch.Tensor:
    """Cells whose pulse count reached their endurance stick high (in place); returns the mask
    of cells that wore out now."""
    worn = (cells.pulses >= cells.endurance) & (cells.stuck == STUCK_NONE)
    if bool(worn.any()):  # worn-out filaments stay in the low-resistance state
        cells.stuck[worn] = STUCK_HIGH
        cells.g[worn] = preset.values["g_stuck_high"]
    return worn
