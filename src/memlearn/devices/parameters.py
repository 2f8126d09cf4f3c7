"""The parameters of a device preset: name -> (table in the preset file, unit, meaning), the
parameters every technology needs, defaults for late additions, and the allowed ranges.

Each technology (``technologies``) lists the parameters it needs (``CellTechnology.required``).
"""

from __future__ import annotations

# Parameter name -> (table in the TOML file, unit, short meaning).  Every parameter is a float.
PARAMETERS: dict[str, tuple[str, str, str]] = {
    # conductance window
    "g_min": ("window", "S", "lowest programmable level"),
    "g_max": ("window", "S", "highest programmable level"),
    "g_ref": ("window", "S", "reference of the spread laws (I_ref = g_ref * set_k_volts)"),
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
    "read_noise_rel": ("read", "1", "short-term additive read noise, fraction of g_max"),
    "read_t_r": ("read", "s", "aihwkit CMO 1/f read noise: read duration of the fit"),
    "read_overhead_j": ("read", "J", "sense amplifier energy per verify read"),
    # program-and-verify controller
    "verify_tolerance": ("verify", "S", "half width of the verify band around a target"),
    "max_pulses": ("verify", "1", "pulse limit per cell and program operation"),
    "abandon_pulses": ("verify", "1", "abandon a cell unmoved by this many pulses (0: never)"),
    "iset_start": ("verify", "1", "iterative SET: first compliance, fraction of nominal"),
    "iset_step": ("verify", "1", "iterative SET: compliance step, fraction of nominal"),
    "hybrid_margin": ("verify", "1", "hybrid, trimmed levels: SET aims this fraction above"),
    "hybrid_split": ("verify", "S", "hybrid: levels below are RESET-verified, others SET-verified"),
    "hybrid_window_ratio": ("window", "1", "hybrid's lowest level over g_min (< 1: wider window)"),
    "ireset_margin": ("verify", "1", "iterative RESET: first amplitude aims this far above"),
    "reset_step": ("verify", "V", "RESET-verify amplitude step"),
    "settle_s": ("verify", "s", "time between the end of programming and first use"),
    # relaxation and drift
    "relax_tau_s": ("drift", "s", "time constant of the fast relaxation"),
    "relax_t0_s": ("drift", "s", "time origin of the log(t) spread"),
    "relax_fast": ("drift", "S", "fast relaxation sigma of a state SET at I_ref, no RESET"),
    "relax_log": ("drift", "S", "spread growth per ln(t) of a state SET at I_ref, no RESET"),
    "relax_mean": ("drift", "S", "mean decrease per ln(t), every state"),
    "relax_icc_exp": ("drift", "1", "relaxation spread ∝ (I_cc / I_ref)^-exp (SET compliance)"),
    "relax_reset_depth": ("drift", "1", "relaxation spread ∝ 1 + this * RESET depth (e-folds)"),
    "relax_icc_floor": ("drift", "A", "compliance law held below this (lowest fitted I_cc)"),
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
    # ferroelectric polarisation physics (optional: devices.feram.FERAM_PHYSICS defaults)
    "fe_write_v": ("ferroelectric", "V", "write (and destructive read) pulse amplitude"),
    "fe_thickness_m": ("ferroelectric", "m", "ferroelectric film thickness"),
    "fe_tau0_s": ("ferroelectric", "s", "Merz-law attempt time of switching"),
    "fe_activation_v_per_m": ("ferroelectric", "V/m", "Merz-law activation field"),
    "fe_kai_exponent": ("ferroelectric", "1", "KAI (Avrami) exponent of switching"),
    "fe_pr_c_per_m2": ("ferroelectric", "C/m^2", "remanent polarisation"),
    "fe_area_m2": ("ferroelectric", "m^2", "capacitor area"),
    "fe_wake_fraction": ("ferroelectric", "1", "pristine window / woken-up window"),
    "fe_wake_cycles": ("ferroelectric", "1", "cycles of the wake-up time constant"),
    "fe_fatigue_cycles": ("ferroelectric", "1", "cycles at which fatigue halves the window"),
    "fe_sense_margin": ("ferroelectric", "1", "smallest window the sense amplifier reads"),
    "fe_retention_decade": ("ferroelectric", "1", "window lost per decade of time"),
    "fe_retention_t0_s": ("ferroelectric", "s", "origin of the log-time retention loss"),
}

COMMON_PARAMETERS = frozenset(
    {
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
)
"""Parameters every cell technology needs (window, read, faults, converters, controller)."""


def parameters_in(*tables: str) -> frozenset[str]:
    """The names of the parameters in the preset file's ``tables``."""
    return frozenset(k for k, (table, _, _) in PARAMETERS.items() if table in tables)


# Parameters added after resistive preset files were first written: a resistive preset file
# without one gets this (value, source) (``rram.ResistiveCell.optional``), so older files
# (e.g. from ``memlearn device fit``) keep loading.
OPTIONAL: dict[str, tuple[float, str]] = {
    "read_noise_rel": (
        0.0,
        "[E] default: no short-term read noise beyond the 1/f term (not given in the file)",
    ),
    "hybrid_split": (
        1.0,
        "[E] default: every level below 1 S, i.e. all, is RESET-verified (SET then RESET trim); "
        "not given in the preset file",
    ),
    "hybrid_window_ratio": (
        1.0,
        "[E] default: hybrid programs the preset's window (not given in the preset file)",
    ),
    "abandon_pulses": (
        0.0,
        "[E] default: the controller pulses every unverified cell up to max_pulses (0: it "
        "abandons no unresponsive cell)",
    ),
    "relax_icc_floor": (
        0.0,
        "[E] default: the compliance law holds down to icc_min (not given in the preset file)",
    ),
}

# Parameters that were replaced: old name -> what to use instead (a clear error on loading).
RETIRED: dict[str, str] = {
    **{
        f"relax_{term}_{family}": f"relax_{term} (one value; the stability factor of "
        "devices.retention sets how SET compliance and RESET depth scale it)"
        for term in ("fast", "log", "mean")
        for family in ("set", "reset")
    },
    "relax_g_exp": "relax_icc_exp (stability as a function of the SET compliance)",
}

# May be zero (others in PARAMETERS must be > 0, except SIGNED ones)
ZERO_OK = {
    "stuck_low_rate",
    "stuck_high_rate",
    "set_c2c",
    "set_d2d",
    "reset_c2c",
    "reset_c2c_jump",
    "reset_d2d",
    "read_noise",
    "relax_fast",
    "relax_log",
    "relax_mean",
    "relax_reset_depth",
    "relax_icc_floor",
    "endurance_sigma",
    "inc_noise",
    "hybrid_margin",
    "hybrid_split",
    "ireset_margin",
    "settle_s",
    "bit_fail_rate",
    "read_overhead_j",
    "dac_j",
    "adc_fom_j",
    "gate_step",
    "ea_ev",
    "iset_start",
    "relax_icc_exp",
    "read_noise_rel",
    "abandon_pulses",
}
# May take any sign
SIGNED = {"gate_vth", "relax_mean", "relax_icc_exp"}
