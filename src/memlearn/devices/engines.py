"""Program-and-verify engines: which code runs a verified write strategy's pulses.

- ``torch`` (the default): ``controller.verify_loop``, one tensor iteration per pulse over the
  cells still being programmed; runs on any torch device (the CUDA path).
- ``fused``: ``fused.program_cells``, a numba kernel that runs each cell's whole pulse sequence
  in compiled code, cells in parallel (numba's threads: ``numba.set_num_threads`` or
  ``NUMBA_NUM_THREADS``); CPU tensors only.  The same controller, strategies and physics (in
  float64, stored float32); its random numbers come from a counter-based generator seeded by
  one draw from the caller's generator, so results differ draw by draw from the torch
  engine's (the same distributions) and do not depend on the thread count.

``writer_for(strategy, engine)`` is the write strategy that runs on ``engine``
(``single-set``, never verified, and every other technology's writes are the same on both).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from memlearn.devices import physics
from memlearn.devices.cells import CellState
from memlearn.devices.controller import ABANDON_BAND
from memlearn.devices.preset import DevicePreset
from memlearn.devices.strategies import (
    Hybrid,
    IterativeReset,
    IterativeSet,
    VerifiedStrategy,
    WriteStrategy,
)
from memlearn.devices.technology import WriteTally
from memlearn.errors import MemlearnError

__all__ = ["DEFAULT_ENGINE", "ENGINES", "FusedWriter", "check_engine", "fused_write", "writer_for"]

ENGINES: tuple[str, ...] = ("torch", "fused")
"""The program-and-verify engines."""
DEFAULT_ENGINE = "torch"

_KINDS = {IterativeSet: 1, IterativeReset: 2, Hybrid: 3}  # fused.ITERATIVE_SET ... HYBRID
PARALLEL_CELLS = 16384
"""[E] Cells from which the fused kernel runs on numba's threads; fewer run on the calling
thread alone (a few milliseconds of work: starting and joining the threads costs more, and
on a busy machine waits for their time slices).  The results are the same either way."""


def check_engine(engine: str | None, device: torch.device | str | None = None) -> str:
    """``engine`` (``None``: ``DEFAULT_ENGINE``) if it is one of ``ENGINES`` and runs on
    ``device`` (the fused engine: CPU only), else ``MemlearnError``."""
    name = DEFAULT_ENGINE if engine is None else engine
    if name not in ENGINES:
        raise MemlearnError(f"unknown engine {engine!r}; allowed {list(ENGINES)}")
    if name == "fused" and device is not None and torch.device(device).type != "cpu":
        raise MemlearnError(
            f"the fused engine runs on CPU tensors, not {torch.device(device)}; "
            "use engine 'torch' there"
        )
    return name


def writer_for(strategy: WriteStrategy, engine: str) -> WriteStrategy:
    """The write strategy that runs ``strategy``'s pulses on ``engine`` (checked)."""
    if check_engine(engine) == "torch" or not isinstance(strategy, VerifiedStrategy):
        return strategy
    return FusedWriter(strategy)


class FusedWriter(WriteStrategy):
    """A verified strategy whose pulses the fused engine runs (``fused_write``)."""

    def __init__(self, strategy: VerifiedStrategy) -> None:
        if type(strategy) not in _KINDS:
            names = sorted(s.name for s in _KINDS)
            raise MemlearnError(
                f"the fused engine runs the strategies {names}, not {strategy.name!r}"
            )
        self.strategy = strategy
        self.name = strategy.name  # type: ignore[misc]
        self.ends_with_reset = strategy.ends_with_reset  # type: ignore[misc]

    def reset_terminated(self, preset: DevicePreset, target: torch.Tensor) -> torch.Tensor:
        return self.strategy.reset_terminated(preset, target)

    def write(
        self,
        preset: DevicePreset,
        flat: CellState,
        target: torch.Tensor,
        tol: float,
        limit: int,
        generator: torch.Generator,
        tally: WriteTally,
    ) -> None:
        fused_write(preset, self.strategy, flat, target, tol, limit, generator, tally)


def pack_parameters(preset: DevicePreset, strategy: VerifiedStrategy, tol: float) -> np.ndarray:
    """The kernel's parameter vector (``fused.PARAMETERS``, float64)."""
    from memlearn.devices.fused import PARAMETERS

    v = preset.values
    band = physics.flicker_band(preset, float(v["settle_s"]))  # read_sigma at the age settle_s
    derived = {
        "read_flicker": (v["read_noise"] * 1e-6) * band,
        "read_additive": v.get("read_noise_rel", 0.0) * v["g_max"],
        "margin": strategy.margin(preset),
        "hybrid_split": v.get("hybrid_split", 1.0),
        "aim_index": Hybrid.aim_index(preset),
        "onset_var": v["reset_d2d"] ** 2,
        "tol": tol,
        "abandon_band": ABANDON_BAND,
        "ln_reset_g_ref": math.log(v["reset_g_ref"]),  # and reciprocals: fewer divisions
        "two_over_gate_k": 2.0 / v["gate_k"],
        "inv_gate_step": 1.0 / v["gate_step"] if v["gate_step"] > 0 else 0.0,
        "inv_set_k_volts": 1.0 / v["set_k_volts"],
        "inv_reset_v_slope": 1.0 / v["reset_v_slope"],
    }
    return np.array([derived[k] if k in derived else v[k] for k in PARAMETERS], dtype=np.float64)


_DAC_CACHE: dict[int, tuple[DevicePreset, np.ndarray]] = {}


def _dac(preset: DevicePreset) -> np.ndarray:
    """``physics.dac_table`` as ``[2, codes]`` float64 (``[2, 0]`` without one), kept for the
    last few presets (frozen: the same object, the same table)."""
    hit = _DAC_CACHE.get(id(preset))
    if hit is not None and hit[0] is preset:
        return hit[1]
    table = physics.dac_table(preset)
    dac = np.zeros((2, 0)) if table is None else torch.stack(table).double().numpy()
    if len(_DAC_CACHE) >= 8:
        _DAC_CACHE.clear()
    _DAC_CACHE[id(preset)] = (preset, dac)
    return dac


def _views(tensors: tuple[torch.Tensor, ...]) -> tuple[tuple[np.ndarray, ...], list]:
    """NumPy views of 1-D ``tensors`` (copies of non-contiguous ones, listed to copy back)."""
    arrays, back = [], []
    for t in tensors:
        c = t if t.is_contiguous() else t.contiguous()
        if c is not t:
            back.append((t, c))
        arrays.append(c.numpy())
    return tuple(arrays), back


def fused_write(
    preset: DevicePreset,
    strategy: VerifiedStrategy,
    flat: CellState,
    target: torch.Tensor,
    tol: float,
    limit: int,
    generator: torch.Generator,
    tally: WriteTally,
) -> None:
    """Program the flat ``cells`` (in place) to ``target`` (S) with ``strategy`` on the fused
    engine, filling ``tally``: ``controller.verify_loop``'s outcome, with one seed drawn from
    ``generator``."""
    check_engine("fused", flat.g.device)
    import numba

    from memlearn.devices import fused  # numba: imported (and compiled) on first use

    kind = _KINDS[type(strategy)]
    seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    if not target.numel():
        return
    p, dac = pack_parameters(preset, strategy, tol), _dac(preset)
    life = flat.endurance - flat.pulses
    io, back = _views((flat.g, flat.reset_final, flat.set_icc, flat.reset_depth, flat.stuck))
    props, _ = _views((target.float(), flat.set_gain, flat.reset_shift, life))
    out, back_tally = _views((tally.set_pulses, tally.reset_pulses, tally.verify_reads,
                              tally.energy, tally.verify_energy, tally.failed))  # fmt: skip
    abandon = int(preset.values.get("abandon_pulses", 0))
    threads = numba.get_num_threads()
    if target.numel() < PARALLEL_CELLS:
        numba.set_num_threads(1)
    try:
        fused.program_cells(p, dac, kind, int(limit), abandon, seed, io, props, out)
    finally:
        numba.set_num_threads(threads)
    for t, c in back + back_tally:
        t.copy_(c)
