"""System-level energy of a stretch of chip activity, beside the array ledger.

The :class:`~memlearn.crossbar.ledger.Ledger` counts what the arrays and converters spend: the
cells' programming pulses and reads, the sense amplifier per read (the preset's
``read_overhead_j``), the row DACs and the column ADCs.  A chip spends more around them; this
module adds, from the same activity (the ledger's energy and latency by category, and the
pulses and verify reads the controller issued), the lines a circuit designer would add:

``voltage_generation``
    the programming pulses' energy is delivered by an on-chip charge pump from the core
    supply; the pump's losses are ``program × (1/η − 1)`` (η: :attr:`SystemConstants.
    pump_efficiency`).
``level_shifting``
    each pulse switches a word line and a bit (or source) line to the programming domain
    through a level shifter: ``2 × level_shifter_j`` per pulse.
``gate_dac``
    each SET pulse sets the compliance through the word-line (gate) DAC: the DAC's bias
    ``gate_dac_bias_a × vdd`` over the pulse (RESET and reads drive the gate fully on).
``line_charging``
    ``C·V²`` of the lines a pulse or read swings, ``line_capacitance_f`` each: per SET pulse a
    word line and a bit line to ``v_set`` and per RESET pulse two lines to ``reset_v_max``
    (both from the pump, so divided by η); per read (a verify read, one cell read, or one VMM
    input vector) a word line to ``vdd`` and a bit line to ``v_read`` (a VMM's other rows are
    the row DACs' ``dac_j`` of the ledger).
``control_logic``
    the controller's digital energy, ``control_j`` per operation (pulse, verify read, read).
``static_bias``
    ``bias_w`` (references, sense-amplifier and ADC bias, leakage) over the whole serial
    latency, plus the high-voltage generator's quiescent ``hv_generator_w`` over the
    program-and-verify time.

``array`` is the ledger's own total, kept as its own line; ``total`` the sum.  Every line is
linear in the activity, so the estimate of a mean activity is the mean of the estimates.
Latencies are the ledger's (cells programmed and read one after another): the time a computer
in the loop takes between operations is not counted, which makes ``static_bias`` a lower bound.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass

from memlearn.devices.preset import DevicePreset

LINES = (
    "array",
    "voltage_generation",
    "level_shifting",
    "gate_dac",
    "line_charging",
    "control_logic",
    "static_bias",
)
"""The lines of :func:`system_energy`'s breakdown (``total`` is their sum)."""


@dataclass(frozen=True)
class SystemConstants:
    """The circuit around the arrays (SI units); :data:`SOURCES` gives each one's source."""

    vdd: float = 1.2
    pump_efficiency: float = 0.3
    hv_generator_w: float = 120e-6
    bias_w: float = 200e-6
    level_shifter_j: float = 0.2e-12
    gate_dac_bias_a: float = 10e-6
    line_capacitance_f: float = 50e-15
    control_j: float = 5e-12

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not value >= 0:
                raise ValueError(f"system constant {f.name} must be >= 0, got {value!r}")
        if not 0 < self.pump_efficiency <= 1:
            raise ValueError(f"pump_efficiency must be in (0, 1], got {self.pump_efficiency!r}")


SOURCES: dict[str, str] = {
    "vdd": "[E] 130 nm CMOS core supply, 1.2 V nominal",
    "pump_efficiency": (
        "[E] power efficiency of an on-chip charge pump making 2-3 V programming voltages from "
        "the core supply; Dickson-type pumps reach 20-50 % (review: Rahman et al., Electronics "
        "10, 676, 2021)"
    ),
    "hv_generator_w": (
        "[E] of the order of a published regulated CMOS high-voltage generator (pump, ring "
        "oscillator, regulator: 0.12 mW in all, PLOS ONE 14, e0225408, 2019), on while "
        "programming"
    ),
    "bias_w": (
        "[E] bandgap and current references, sense-amplifier and ADC bias, 130 nm logic "
        "leakage of a 2 kbit macro and its controller: ~170 uA from 1.2 V"
    ),
    "level_shifter_j": ("[E] a 130 nm level shifter switching ~30 fF to 2.5 V per line and pulse"),
    "gate_dac_bias_a": (
        "[E] a 130 nm resistor-string word-line DAC settling in one pulse: ~10 uA bias"
    ),
    "line_capacitance_f": (
        "[E] a 32-cell word or bit line in 130 nm: ~40 um of metal at ~0.2 fF/um plus 32 "
        "transistor loads of ~1 fF"
    ),
    "control_j": (
        "[E] controller state machine, address decoding and registers per operation: ~500 "
        "gates of ~7 fF switching at 1.2 V"
    ),
}
assert set(SOURCES) == {f.name for f in dataclasses.fields(SystemConstants)}

SYSTEM_130NM = SystemConstants()
"""The default constants: a 130 nm 1T1R HfO2 test chip like the reference's."""


@dataclass(frozen=True)
class Activity:
    """What a chip did in a stretch of time, as its ledger and controller count it.

    ``energy_j`` / ``latency_s``: the ledger's categories (``program``, ``verify``, ``read``,
    ``dac``, ``adc``; J and s); ``set_pulses``, ``reset_pulses``, ``verify_reads``: counts.
    """

    energy_j: Mapping[str, float]
    latency_s: Mapping[str, float]
    set_pulses: float
    reset_pulses: float
    verify_reads: float

    def __post_init__(self) -> None:
        counts = (self.set_pulses, self.reset_pulses, self.verify_reads)
        values = [*self.energy_j.values(), *self.latency_s.values(), *counts]
        if not all(float(v) >= 0 for v in values):
            raise ValueError("activity energies, latencies and counts must be >= 0")


def read_operations(activity: Activity, preset: DevicePreset) -> float:
    """Read pulses of the ``read`` category (one per cell read, one per VMM input vector): its
    latency over the preset's ``read_pulse_s``."""
    return float(activity.latency_s.get("read", 0.0)) / preset.values["read_pulse_s"]


def system_energy(
    activity: Activity, preset: DevicePreset, constants: SystemConstants = SYSTEM_130NM
) -> dict[str, float]:
    """The system estimate of ``activity`` on cells of ``preset`` (J by line of :data:`LINES`,
    and ``total``); see the module docstring for each line's formula."""
    if "read_pulse_s" not in preset.values:
        raise ValueError(f"preset {preset.name!r} has no read_pulse_s: not a resistive preset")
    c, v = constants, preset.values
    v_set = v.get("v_set", c.vdd)
    v_reset = v.get("reset_v_max", v_set)
    v_read = v.get("v_read", 0.0)
    sets, resets = float(activity.set_pulses), float(activity.reset_pulses)
    pulses = sets + resets
    reads = float(activity.verify_reads) + read_operations(activity, preset)
    program_j = float(activity.energy_j.get("program", 0.0))
    hv_s = float(activity.latency_s.get("program", 0.0) + activity.latency_s.get("verify", 0.0))
    cap = c.line_capacitance_f
    lines = {
        "array": float(sum(activity.energy_j.values())),
        "voltage_generation": program_j * (1.0 / c.pump_efficiency - 1.0),
        "level_shifting": 2.0 * c.level_shifter_j * pulses,
        "gate_dac": c.gate_dac_bias_a * c.vdd * v.get("set_pulse_s", 0.0) * sets,
        "line_charging": (
            2.0 * cap * (sets * v_set**2 + resets * v_reset**2) / c.pump_efficiency
            + cap * (c.vdd**2 + v_read**2) * reads
        ),
        "control_logic": c.control_j * (pulses + reads),
        "static_bias": c.bias_w * float(sum(activity.latency_s.values())) + c.hv_generator_w * hv_s,
    }
    lines["total"] = float(sum(lines.values()))
    return lines


def constants_record(constants: SystemConstants = SYSTEM_130NM) -> dict[str, dict[str, object]]:
    """Each constant's value and source, for a run's record."""
    return {
        f.name: {"value": getattr(constants, f.name), "source": SOURCES[f.name]}
        for f in dataclasses.fields(constants)
    }
