"""The pulses of one iteration of the program-and-verify controller (``controller``): each
unfinished cell gets the pulse its strategy chose, SETs and RESETs each computed on their own
cells only (or on every cell, without selecting, when all of them receive the same kind), then
endurance wear and the verify read's energy.

A SET's compliance is the one the gate DAC realises (looked up by DAC code in the state's
``dac`` table when there is one: ``physics.dac_table``); a RESET is full (``reset_v_max``) or a
trim at the cell's trim amplitude.
"""

from __future__ import annotations

import torch

from memlearn.devices import physics
from memlearn.devices.controller_state import (
    FULL_RESET,
    SET,
    STRONG_SET,
    ControllerState,
    Trim,
    subset,
)
from memlearn.devices.preset import DevicePreset


def pulse(
    preset: DevicePreset, st: ControllerState, live: torch.Tensor | None, gen: torch.Generator
) -> Trim | None:
    """One pulse per cell at the ``live`` positions (``None``: all) (its ``action``), wear,
    and the verify read's energy (in place); SETs and RESETs are computed on their own cells
    only (on every cell, without selecting, when all of them receive the same kind).  Returns
    the positions of the cells that received a trim (``RESET``; ``None``: every cell) and
    its amplitudes (V), ``None`` when none did."""
    is_set = st.action >= SET
    if live is None:
        is_reset = ~is_set
    else:
        is_set &= live
        is_reset = live > is_set  # live & ~is_set
    set_sel = st.positions(is_set)
    reset_sel = st.positions(is_reset)
    g = st.g
    trim = None
    if live is None and not reset_sel.numel():  # every cell SET
        g_new = _set(preset, st, None, gen)
    elif live is None and not set_sel.numel():  # every cell RESET
        g_new, trim = _reset(preset, st, None, gen)
    else:
        g_new = g.clone() if live is not None else torch.empty_like(g)  # SET + RESET fill it
        if set_sel.numel():
            g_new.scatter_(0, set_sel, _set(preset, st, set_sel, gen))
        if reset_sel.numel():
            g_reset, trim = _reset(preset, st, reset_sel, gen)
            g_new.scatter_(0, reset_sel, g_reset)
    if st.sick.numel():  # stuck cells keep their conductance
        g_new.scatter_(0, st.sick, g.index_select(0, st.sick))
    g = g_new
    # endurance: the pulse that uses up a cell's life leaves its filament stuck (LRS)
    st.pulses += 1
    if st.pulses >= st.life_min:  # some cell may wear out now
        worn_now = st.healthy & (st.life <= st.pulses)
        if live is not None:
            worn_now &= live
        if bool(worn_now.any()):
            g = torch.where(worn_now, preset.values["g_stuck_high"], g)
            st.healthy = st.healthy & ~worn_now
            st.sick = st.positions(~st.healthy)
            st.worn = st.worn | worn_now
            st.any_worn = True
    st.g = g
    e_read = physics.read_energy(preset, g)
    st.energy += e_read
    st.verify_energy += e_read
    st.sets += is_set
    st.reset_final = is_reset
    return trim


def _set(
    preset: DevicePreset, st: ControllerState, sel: torch.Tensor | None, gen: torch.Generator
) -> torch.Tensor:
    """The SET pulses of the cells at positions ``sel`` (``None``: every cell): compliance,
    RESET depth and energy into ``st``; returns their new conductances (S)."""
    v = preset.values
    icc = subset(st.aim, sel) * (v["iset_start"] + v["iset_step"] * subset(st.k, sel))
    if st.strategy.strong_sets:
        icc = torch.where(subset(st.action, sel) == STRONG_SET, v["icc_max"], icc)
    if st.dac is None:  # as the gate realises it
        icc = physics.compliance(preset, physics.gate_voltage(preset, icc))
        es = physics.set_energy(preset, icc)
    else:  # the same values, looked up by DAC code
        code = physics.gate_code(preset, icc).long()
        icc, es = st.dac[0].index_select(0, code), st.dac[1].index_select(0, code)
    g = subset(st.g, sel)
    gs = physics.set_conductance(preset, g, icc, subset(st.gain, sel), gen)
    # a SET that grew the filament records its compliance (a weaker one left it as it was)
    grew = gs > g
    if sel is None:
        st.icc = torch.where(grew, icc, st.icc)
        st.depth.masked_fill_(grew, 0.0)
        st.energy += es
    else:
        st.icc.scatter_(0, sel, torch.where(grew, icc, st.icc.index_select(0, sel)))
        st.depth.scatter_(0, sel, st.depth.index_select(0, sel).masked_fill_(grew, 0.0))
        st.energy.scatter_add_(0, sel, es)
    return gs


def _reset(
    preset: DevicePreset, st: ControllerState, sel: torch.Tensor | None, gen: torch.Generator
) -> tuple[torch.Tensor, Trim | None]:
    """The RESET pulses (full or trim) of the cells at positions ``sel`` (``None``: every
    cell): RESET depth and energy into ``st``.  Returns their new conductances (S) and the
    trimmed cells' positions (``None``: every cell) and amplitudes (V), ``None`` when every
    RESET was full."""
    v_max = preset.values["reset_v_max"]
    full = subset(st.action, sel) == FULL_RESET
    amp = subset(st.volts, sel).clamp(max=v_max)
    pulse_amp = amp.masked_fill_(full, v_max)  # the trims' amplitudes stay: returned below
    g = subset(st.g, sel)
    gr, er = physics.reset_pulse(preset, g, pulse_amp, subset(st.shift, sel), gen)
    # a RESET never raises G (gr <= g), so the depth it adds is >= 0
    deeper = torch.log(g / gr.clamp_min(1e-12))
    if sel is None:
        st.depth += deeper
        st.energy += er
    else:
        st.depth.scatter_add_(0, sel, deeper)
        st.energy.scatter_add_(0, sel, er)
    at = st.positions(~full)
    if not at.numel():
        return gr, None
    if at.numel() == full.numel():  # every RESET a trim
        return gr, (sel, amp)
    return gr, (at if sel is None else sel.index_select(0, at), amp.index_select(0, at))
