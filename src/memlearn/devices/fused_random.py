"""Counter-based random numbers for the fused engine's kernel (``fused``), in numba.

Each cell has its own stream: SplitMix64 (Steele, Lea and Flood, OOPSLA 2014), whose state is
a counter started at ``stream(seed, position)`` and advanced by the golden-ratio increment, its
output the counter through a 64-bit avalanche (``_mix``).  A cell's draws depend only on the
seed, its position and how many it drew before, never on other cells or threads.

Standard normals come from a 256-layer ziggurat (Marsaglia and Tsang, J. Stat. Softw. 5(8),
2000), one 64-bit output per attempt: its low 8 bits pick the layer, its top 53 bits the
abscissa (disjoint bits: Doornik, 2005); the wedges and the tail (Marsaglia's exponential
method) take more outputs.  The tables are computed here from the base layer's edge ``R``.

The kernel in ``fused`` inlines these functions, and numba's on-disk cache checks only the
kernel's own source file: after editing this file, delete the ``__pycache__`` entries of
``fused`` (or touch ``fused.py``) so that the kernel is compiled again.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_LAYER = np.uint64(255)
_ULP53 = 2.0**-53

R = 3.6541528853610088
"""Right edge of the ziggurat's base rectangle for 256 layers (Marsaglia and Tsang 2000)."""


def _tables() -> tuple[np.ndarray, np.ndarray]:
    """Layer edges ``x[0..256]`` (``x[0]``: the base's virtual width, ``x[256] = 0``) and the
    density ``exp(-x^2 / 2)`` there, for layers of equal area."""
    f_r = math.exp(-0.5 * R * R)
    area = R * f_r + math.sqrt(0.5 * math.pi) * math.erfc(R / math.sqrt(2.0))
    x = np.zeros(257)
    x[0], x[1] = area / f_r, R
    for i in range(1, 255):
        x[i + 1] = math.sqrt(-2.0 * math.log(min(area / x[i] + math.exp(-0.5 * x[i] ** 2), 1.0)))
    return x, np.exp(-0.5 * x * x)


_X, _F = _tables()


@njit(cache=True, inline="always")
def _mix(z: np.uint64) -> np.uint64:
    """SplitMix64's output function: a bijective avalanche of 64 bits."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True)
def stream(seed: int, position: int) -> np.uint64:
    """The initial state of the stream of the cell at ``position`` (>= 0) for ``seed``."""
    return _mix(np.uint64(seed) ^ _mix(np.uint64(position) * _GOLDEN + _GOLDEN))


@njit(cache=True, inline="always")
def _next(state: np.uint64) -> tuple[np.uint64, np.uint64]:
    """The next 64-bit output and the new state."""
    state = state + _GOLDEN
    return _mix(state), state


@njit(cache=True, inline="always")
def _open_uniform(state: np.uint64) -> tuple[float, np.uint64]:
    """A uniform in (0, 1] and the new state."""
    bits, state = _next(state)
    return (float(bits >> _S11) + 1.0) * _ULP53, state


@njit(cache=True, inline="always")
def normal(state: np.uint64) -> tuple[float, np.uint64]:
    """A standard normal and the new state (the ziggurat; its rare cases in ``_normal_edge``)."""
    bits, state = _next(state)
    layer = int(bits & _LAYER)
    x = (2.0 * float(bits >> _S11) * _ULP53 - 1.0) * _X[layer]
    if abs(x) < _X[layer + 1]:  # inside the layer's rectangle under the curve
        return x, state
    return _normal_edge(x, layer, state)


@njit(cache=True)
def _normal_edge(x: float, layer: int, state: np.uint64) -> tuple[float, np.uint64]:
    """``normal`` for an ``x`` outside its layer's rectangle: the tail beyond ``R`` (base
    layer), the wedge under the curve, or a new attempt."""
    while True:
        if layer == 0:  # the tail
            while True:
                u1, state = _open_uniform(state)
                u2, state = _open_uniform(state)
                a = -math.log(u1) / R
                if -2.0 * math.log(u2) > a * a:
                    return (R + a if x > 0 else -R - a), state
        u, state = _open_uniform(state)
        if _F[layer] + u * (_F[layer + 1] - _F[layer]) < math.exp(-0.5 * x * x):  # the wedge
            return x, state
        bits, state = _next(state)
        layer = int(bits & _LAYER)
        x = (2.0 * float(bits >> _S11) * _ULP53 - 1.0) * _X[layer]
        if abs(x) < _X[layer + 1]:
            return x, state


@njit(cache=True)
def normals(seed: int, position: int, n: int) -> np.ndarray:
    """The first ``n`` normals of the stream of ``position`` for ``seed`` (float64)."""
    out = np.empty(n)
    state = stream(seed, position)
    for k in range(n):
        z, state = normal(state)
        out[k] = z
    return out
