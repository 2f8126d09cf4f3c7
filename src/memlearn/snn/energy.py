"""SPIRIT's energy and event ledger, from physics constants, and the formal (MAC) comparison.

Per (chip, image), lines of ``energy_breakdown`` (J):

- ``cells``: the cells' dissipation ``sum v_read^2 * G * read_pulse_s`` over every cell read
  (each input spike reads its row's 80 cells: 10 synapses x 8 cells, LRS and HRS);
- ``read_supply``: the rest of the supply energy of those cell currents, ``(VDD - v_read) *
  v_read * G * read_pulse_s`` (the bit-line clamp holds the cells at ``v_read`` from ``VDD``);
- ``injector``: the copies onto the membranes, ``VDD * INJECTOR_GAIN * v_read * G *
  read_pulse_s`` (positive and negative currents copied separately);
- ``comparators``: ``2 * E_COMPARE`` per neuron integration (one per synaptic event);
- ``output_spikes``: ``E_SPIKE`` per output spike;
- ``word_lines``: ``C_WORD_LINE * VDD^2`` per input spike;
- ``logic_spi``: ``LOGIC_SPI_J`` per synaptic event (kept out of the per-event figure).

A synaptic event is one input spike reaching one neuron (10 per input spike).  The energy per
synaptic event is the sum of every line but ``logic_spi`` over the synaptic events; SPIRIT
publishes 3.6 pJ at synapse and neuron level [P].  It is dominated by ``read_supply`` and
``cells``: a nominal LRS cell at 100 mV draws ~10 µA from VDD for 100 ns (~1.2 pJ), and a
synapse has on average ``mean |w|`` LRS cells and ``8 - mean |w|`` HRS ones, so the figure
follows the trained weights' magnitudes and the preset's window; it is not set to 3.6 pJ by
any constant.  How far it lands: the README's SPIRIT section and ``memlearn snn evaluate``.

Formal coding: the same layer as 8-bit MACs, one weight byte fetched from SRAM per MAC and one
input byte per input (``formal_energy_per_image``; per MAC: ``formal_energy_per_mac``); 45 nm
energies of Horowitz (ISSCC 2014) [P] scaled to 130 nm and 1.2 V by ``C V^2`` with C
proportional to the feature size [I].  Two ratios come out: per operation (energy per MAC over
energy per synaptic event: the comparison of SPIRIT's abstract, "3.6 pJ per spike ... up to 5x
lower vs. similar chips using formal coding" [P]) and per image (the formal layer's 1,440 MACs
against the events the spiking layer needs, which are more than 1,440 when an image takes more
than 144 input spikes).  SPIRIT's ~5x compares with measured formal-coding chips whose figures
the abstract does not give; 5x at 3.6 pJ per event means ~18 pJ per MAC, more than this
MAC + SRAM estimate (no control, clocking or I/O): the README quantifies the gap.
"""

from __future__ import annotations

import torch

from memlearn.snn.model import CLASSES, INPUTS
from memlearn.snn.neuron import INJECTOR_GAIN, VDD
from memlearn.snn.synapses import CELLS_PER_SYNAPSE

E_COMPARE = 50e-15  # [E] one dynamic comparator decision in 130 nm (tens of fJ)
E_SPIKE = 0.5e-12  # [E] spike pulse generation and output routing per output spike
C_WORD_LINE = 120e-15  # [E] word line of 80 1T1R gates (~1 fF each) plus wire (~40 fF)
LOGIC_SPI_J = 180e-12 - 3.6e-12  # [P] 180 pJ/event with logic + SPI minus 3.6 pJ/event core
# [P] Horowitz, "Computing's energy problem", ISSCC 2014, 45 nm 0.9 V: 8-bit multiply 0.2 pJ,
# 8-bit add 0.03 pJ, 64-bit read from an 8 kB SRAM 10 pJ (1.25 pJ per byte).
MAC8_45NM_J = 0.2e-12 + 0.03e-12
SRAM_BYTE_45NM_J = 10e-12 / 8
SCALE_130NM = (130 / 45) * (1.2 / 0.9) ** 2  # [I] E ~ C V^2, C ~ feature size
LINES = (
    "cells", "read_supply", "injector", "comparators", "output_spikes", "word_lines", "logic_spi",
)  # fmt: skip


def breakdown(
    input_spikes: torch.Tensor,
    output_spikes: torch.Tensor,
    g_read: torch.Tensor,
    v_read: float,
    pulse_s: float,
    *,
    fanout: int = CLASSES,
    injector_gain: float = INJECTOR_GAIN,
) -> dict[str, torch.Tensor]:
    """Energy lines (J) per (chip, image) from event counts and the read conductance (S).

    ``fanout``: neurons each input spike reaches (its row holds ``8 fanout`` cells; the word
    line's capacitance scales with the row's length [E]); ``injector_gain``: the copy ratio of
    the layer's current injectors."""
    q = g_read.double() * v_read * pulse_s  # charge through the cells (C)
    events = input_spikes.double() * fanout
    return {
        "cells": q * v_read,
        "read_supply": q * (VDD - v_read),
        "injector": q * VDD * injector_gain,
        "comparators": events * 2 * E_COMPARE,
        "output_spikes": output_spikes.double() * E_SPIKE,
        "word_lines": input_spikes.double() * (C_WORD_LINE * (fanout / CLASSES)) * VDD**2,
        "logic_spi": events * LOGIC_SPI_J,
    }


def core_energy(lines: dict[str, torch.Tensor]) -> torch.Tensor:
    """Synapse + neuron energy (J): every line but ``logic_spi``."""
    return sum(v for k, v in lines.items() if k != "logic_spi")


def synaptic_events(input_spikes: torch.Tensor, fanout: int = CLASSES) -> torch.Tensor:
    """Synaptic events: every input spike reaches the ``fanout`` (10) neurons."""
    return input_spikes * fanout


def cell_reads(input_spikes: torch.Tensor, fanout: int = CLASSES) -> torch.Tensor:
    """Cell reads: every input spike reads ``fanout`` (10) synapses x 8 cells."""
    return input_spikes * fanout * CELLS_PER_SYNAPSE


def formal_energy_per_mac() -> float:
    """One 8-bit MAC with its weight byte read from SRAM, in 130 nm (J)."""
    return SCALE_130NM * (MAC8_45NM_J + SRAM_BYTE_45NM_J)


def formal_energy_per_image(macs: int = INPUTS * CLASSES, inputs: int = INPUTS) -> float:
    """The same layer as 144 x 10 8-bit MACs (or ``macs``) in 130 nm (J per image), one weight
    byte per MAC and one input byte per input (``inputs`` of them)."""
    return SCALE_130NM * (macs * (MAC8_45NM_J + SRAM_BYTE_45NM_J) + inputs * SRAM_BYTE_45NM_J)


def formal_comparison(
    energy_per_image_j: float,
    energy_per_event_j: float,
    macs: int = INPUTS * CLASSES,
    inputs: int = INPUTS,
) -> dict[str, float]:
    """The formal-coding (8-bit MAC) side beside the spiking figures: its energy per image
    and per MAC (J) and the two ratios formal / spiking (per image, per operation)."""
    formal = formal_energy_per_image(macs, inputs)
    return {
        "formal_energy_per_image_j": formal,
        "formal_to_spiking_energy_ratio": formal / max(energy_per_image_j, 1e-30),
        "formal_energy_per_mac_j": formal_energy_per_mac(),
        "formal_to_spiking_energy_per_operation": formal_energy_per_mac()
        / max(energy_per_event_j, 1e-30),
    }
