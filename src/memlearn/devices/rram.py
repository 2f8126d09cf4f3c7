"""Multi-level filamentary ReRAM (HfO2 OxRAM) in 1T1R: preset ``kind = "rram"``.

The cell's conductance G (S) is set by its conductive filament; formulas (implemented in
``physics``, ``cells`` and ``retention``):

- SET at a compliance I_cc fixed by the access transistor's gate: G_set = gain * I_cc /
  set_k_volts (R_LRS = V_C / I_C, Ielmini 2011), cycle-to-cycle spread sigma_G = set_c2c *
  sqrt(G g_ref) (Poisson defect statistics, Ambrogio et al., IEEE TED 2014), G_new =
  max(G, G_set); energy v_set * I_cc * t_set.  The cell records the compliance (``set_icc``).
- RESET of amplitude V: the gap opens to G_reset(V) = reset_g_ref exp(-(V - V_ref - shift) /
  slope), lognormal with a spread growing with the jump; energy f V^2 G t_reset.  The cell
  records how far RESETs opened its filament since the SET (``reset_depth``).
- Device-to-device: a lognormal ``set_gain`` (sigma ``set_d2d``) and a Gaussian RESET onset
  ``reset_shift`` (V, sigma ``reset_d2d``); fresh cells are at the full-RESET level.
- Read: sigma^2 = sigma_1/f^2 + (read_noise_rel g_max)^2 (aihwkit CMO model: 1/f noise in the
  time since programming, additive noise of 1 % of the maximum weight); read energy
  v_read^2 G t_read plus the sense overhead.
- Relaxation after a write (Esmanhotto et al., IEDM 2020; IBM CMO model): a fast and a ln(t)
  spread scaled by the state's stability factor, a function of its SET compliance (fitted to
  Milo et al., IRPS 2021) and RESET depth, and a ln(t) mean drift; Arrhenius in temperature.
- Fixed incremental pulses (Manhattan-rule updates): saturating steps of ``inc_alpha``.

Programming is one of the write strategies of ``strategies`` (single-set, iterative-set,
iterative-reset, hybrid), run pulse by pulse by ``controller``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch

from memlearn.devices import physics, retention
from memlearn.devices.cells import reset_conductance
from memlearn.devices.parameters import COMMON_PARAMETERS, OPTIONAL, parameters_in
from memlearn.devices.preset import DevicePreset
from memlearn.devices.technology import CellTechnology, WriteTally
from memlearn.errors import MemlearnError

if TYPE_CHECKING:
    from memlearn.devices.cells import CellState
    from memlearn.devices.strategies import WriteStrategy

_TABLES = ("window", "set", "reset", "read", "verify", "drift", "faults", "increment")


class ResistiveCell(CellTechnology):
    """A multi-level filamentary ReRAM cell; see the module docstring."""

    kind = "rram"
    required = frozenset(
        (COMMON_PARAMETERS | parameters_in(*_TABLES, "converters")) - set(OPTIONAL)
    )
    optional = OPTIONAL
    incremental = True

    def check(self, preset: DevicePreset) -> None:
        if not preset.values["icc_min"] < preset.values["icc_max"]:
            raise MemlearnError(f"preset {preset.name!r}: icc_min must be below icc_max")

    def sample(
        self, preset: DevicePreset, shape: tuple[int, ...], generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Fresh cells after forming and a full RESET: HRS conductances (lognormal)."""
        v = preset.values
        set_gain = torch.exp(v["set_d2d"] * torch.randn(shape, generator=generator))
        reset_shift = v["reset_d2d"] * torch.randn(shape, generator=generator)
        g_hrs = reset_conductance(preset, v["reset_v_max"], reset_shift)
        jump = torch.log(torch.tensor(v["g_max"]) / g_hrs).clamp_min(0)
        sigma = v["reset_c2c"] + v["reset_c2c_jump"] * jump
        g = g_hrs * torch.exp(sigma * torch.randn(shape, generator=generator))
        return g, set_gain, reset_shift

    def write(
        self,
        preset: DevicePreset,
        cells: CellState,
        target: torch.Tensor,
        strategy: WriteStrategy,
        tolerance: float,
        max_pulses: int,
        generator: torch.Generator,
        tally: WriteTally,
    ) -> None:
        strategy.write(preset, cells, target, tolerance, max_pulses, generator, tally)

    def relax(
        self, preset: DevicePreset, cells: CellState, seconds: float, gen: torch.Generator
    ) -> None:
        retention.relax_filaments(preset, cells, seconds, gen)

    def increment(
        self,
        preset: DevicePreset,
        g: torch.Tensor,
        direction: torch.Tensor,
        gain: torch.Tensor,
        shift: torch.Tensor,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return physics.increment(preset, g, direction, gain, shift, generator)

    def reachable_window(self, preset: DevicePreset) -> tuple[float, float]:
        """The full-RESET level (RESET at ``reset_v_max``) and the SET level at ``icc_max``."""
        v = preset.values
        floor = v["reset_g_ref"] * math.exp(
            -(v["reset_v_max"] - v["reset_v_ref"]) / v["reset_v_slope"]
        )
        return floor, v["icc_max"] / v["set_k_volts"]


def require_resistive(preset: DevicePreset, what: str) -> None:
    """Raise ``MemlearnError`` unless ``preset`` is a resistive (``ResistiveCell``) preset."""
    from memlearn.devices.technologies import technology

    if not isinstance(technology(preset), ResistiveCell):
        raise MemlearnError(
            f"{what} needs a resistive (rram) preset; {preset.name!r} is {preset.kind}"
        )
