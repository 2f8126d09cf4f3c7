"""The bench protocol: versioned JSON lines over TCP between a client and a chip controller.

One message is one line of UTF-8 JSON ending in ``\\n``.  The client sends requests, the server
answers each with exactly one reply, in order.  Nothing but JSON crosses the wire: no pickle, no
code.  Tensors travel as objects ``{"dtype": "float32", "shape": [2, 32, 16], "data": "<base64>"}``
whose ``data`` are the raw little-endian bytes of a C-contiguous array, so floats round-trip
exactly.  Allowed dtypes: ``float32``, ``float64``, ``int8``, ``int16``, ``int32``, ``int64``,
``bool``.

Request::

    {"v": 1, "id": 7, "op": "program", "args": {...}}

Reply::

    {"v": 1, "id": 7, "ok": true, "result": {...}}
    {"v": 1, "id": 7, "ok": false, "error": {"code": "bad_shape", "message": "..."}}

Operations (``args`` → ``result``; tensors as above, chip dimension first):

============  ===========================================  =====================================
op            args                                         result
============  ===========================================  =====================================
hello         ``versions`` (list of ints the client        ``version``, ``server``, ``n_chips``,
              speaks)                                      ``layout``, ``window_s``,
                                                           ``read_voltage_v``, ``levels`` (count
                                                           or null), ``levels_s`` (the level
                                                           conductances in S, ascending, or
                                                           null), ``preset``,
                                                           ``max_message_bytes``
layout        –                                            ``layout`` (``arrays``: name, rows,
                                                           cols; ``tile_rows``, ``tile_cols``)
read          ``array``                                    ``g_plus``, ``g_minus`` (S)
program       ``array``, ``g_plus``, ``g_minus`` (S),      a program report: ``cells_written``,
              ``strategy``, optional ``mask`` (bool)       ``set_pulses``, ``reset_pulses``,
                                                           ``verify_reads``, ``energy_j``,
                                                           ``failed_cells``, ``extra`` (dict)
pulse         ``array``, ``plus``, ``minus`` (int8 in      a program report
              {-1, 0, 1})
multiply      ``array``, ``volts`` ([n_chips, batch,       ``amperes`` ([n_chips, batch, cols])
              rows], V)
advance       ``seconds`` (≥ 0), ``kelvin`` (> 0)          ``{}``
ledger        –                                            ``ledger`` (category → J per chip)
write_counts  ``array``                                    ``plus``, ``minus`` (int64 counts)
close         –                                            ``{}``, then the server hangs up
============  ===========================================  =====================================

``hello`` must come first; the server picks the highest version both sides speak and answers
``bad_version`` when there is none.  Error codes: ``malformed`` (not JSON, not an object, bad
tensor encoding), ``too_large`` (a line longer than the server's limit; the server then closes
the connection, since it cannot find the next message boundary), ``bad_version``,
``not_ready`` (a request before ``hello``), ``unknown_op``, ``bad_argument`` (missing, extra or
ill-typed argument, NaN/inf, out of range), ``unknown_array``, ``bad_shape``,
``unknown_strategy``, ``chip_error`` (the chip refused the request), ``busy`` (the server
already serves its maximum of clients, or holds its maximum of unread request bytes from all
clients; the server then closes the connection), ``internal``.  Error messages quote an
offending value up to :data:`MAX_ECHO_CHARS` characters and are at most
:data:`MAX_ERROR_CHARS` long.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from typing import Any

import numpy as np
import torch

from memlearn.errors import MemlearnError

PROTOCOL_VERSION = 1
SUPPORTED_VERSIONS = (1,)
DEFAULT_PORT = 7341
# Large enough for one read of 1,000 reference chips (2 x 1000 x 32 x 16 float32, base64 ~5.5 MB)
# and a multiply on a few hundred images per chip; bounded so a bad client cannot exhaust memory.
DEFAULT_MAX_MESSAGE_BYTES = 64 * 1024 * 1024

OPS = ("hello", "layout", "read", "program", "pulse", "multiply", "advance", "ledger")
OPS += ("write_counts", "close")

ERROR_CODES = (
    "malformed",
    "too_large",
    "bad_version",
    "not_ready",
    "unknown_op",
    "bad_argument",
    "unknown_array",
    "bad_shape",
    "unknown_strategy",
    "chip_error",
    "busy",
    "internal",
)
MAX_ECHO_CHARS = 200  # [E] an offending value is quoted in an error reply up to this length
MAX_ERROR_CHARS = 1000  # [E] an error reply's message is cut to this length

_DTYPES: dict[str, tuple[np.dtype, torch.dtype]] = {
    "float32": (np.dtype("<f4"), torch.float32),
    "float64": (np.dtype("<f8"), torch.float64),
    "int8": (np.dtype("i1"), torch.int8),
    "int16": (np.dtype("<i2"), torch.int16),
    "int32": (np.dtype("<i4"), torch.int32),
    "int64": (np.dtype("<i8"), torch.int64),
    "bool": (np.dtype("?"), torch.bool),
}
_TORCH_TO_NAME = {t: name for name, (_, t) in _DTYPES.items()}
_MAX_DIMS = 8


class ProtocolError(MemlearnError):
    """A protocol-level failure; ``code`` is one of :data:`ERROR_CODES`."""

    def __init__(self, code: str, message: str) -> None:
        if code not in ERROR_CODES:
            code = "internal"
        super().__init__(f"{code}: {message}")
        self.code = code
        self.detail = message


class RemoteChipError(MemlearnError):
    """The bench answered a request with an error reply, or the connection failed."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"bench error ({code}): {message}")
        self.code = code
        self.detail = message


def show(value: Any, limit: int = MAX_ECHO_CHARS) -> str:
    """``repr(value)`` cut to ``limit`` characters, for quoting a value in an error message."""
    if isinstance(value, str | bytes | list) and len(value) > limit:
        text = repr(value[:limit])[:limit]
        return f"{text}... (length {len(value)})"
    return clip(repr(value), limit)


def clip(text: str, limit: int = MAX_ERROR_CHARS) -> str:
    """``text`` cut to ``limit`` characters, saying how much was left out."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def encode_tensor(tensor: torch.Tensor) -> dict[str, Any]:
    """Encode a tensor as ``{"dtype", "shape", "data"}`` (base64 of little-endian raw bytes)."""
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(f"expected a torch.Tensor, got {type(tensor).__name__}")
    name = _TORCH_TO_NAME.get(tensor.dtype)
    if name is None:
        raise ProtocolError(
            "bad_argument", f"dtype {tensor.dtype} cannot be sent; allowed: {sorted(_DTYPES)}"
        )
    np_dtype = _DTYPES[name][0]
    array = np.ascontiguousarray(tensor.detach().cpu().numpy().astype(np_dtype, copy=False))
    return {
        "dtype": name,
        "shape": list(tensor.shape),
        "data": base64.b64encode(array.tobytes()).decode("ascii"),
    }


def decode_tensor(obj: Any, what: str = "tensor") -> torch.Tensor:
    """Decode :func:`encode_tensor`'s object; raises :class:`ProtocolError` (``malformed``)."""
    if not isinstance(obj, dict) or set(obj) != {"dtype", "shape", "data"}:
        raise ProtocolError(
            "malformed", f"{what} must be an object with exactly 'dtype', 'shape' and 'data'"
        )
    name, shape, data = obj["dtype"], obj["shape"], obj["data"]
    if name not in _DTYPES:
        raise ProtocolError(
            "malformed", f"{what}: unknown dtype {show(name)}; allowed {sorted(_DTYPES)}"
        )
    if (
        not isinstance(shape, list)
        or len(shape) > _MAX_DIMS
        or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)
    ):
        raise ProtocolError(
            "malformed", f"{what}: shape must be a list of at most {_MAX_DIMS} integers >= 0"
        )
    if not isinstance(data, str):
        raise ProtocolError("malformed", f"{what}: data must be a base64 string")
    try:
        raw = base64.b64decode(data.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise ProtocolError("malformed", f"{what}: data is not valid base64") from exc
    np_dtype, torch_dtype = _DTYPES[name]
    count = math.prod(shape)
    if len(raw) != count * np_dtype.itemsize:
        raise ProtocolError(
            "malformed",
            f"{what}: {len(raw)} bytes do not match shape {shape} of {name} "
            f"({count * np_dtype.itemsize} bytes expected)",
        )
    array = np.frombuffer(raw, dtype=np_dtype).reshape(shape)
    return torch.from_numpy(array.astype(array.dtype.newbyteorder("="), copy=True)).to(torch_dtype)


def encode_message(message: dict[str, Any]) -> bytes:
    """One message as a JSON line (UTF-8, no NaN allowed, ends in ``\\n``)."""
    try:
        text = json.dumps(message, allow_nan=False, separators=(",", ":"))
    except ValueError as exc:
        raise ProtocolError("bad_argument", f"message holds a non-finite number: {exc}") from exc
    return text.encode("utf-8") + b"\n"


def _reject_constant(token: str) -> float:
    raise ValueError(f"{token} is not allowed")


def decode_message(line: bytes) -> dict[str, Any]:
    """Parse one JSON line into an object; raises :class:`ProtocolError` (``malformed``)."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProtocolError("malformed", "message is not valid UTF-8") from exc
    try:
        message = json.loads(text, parse_constant=_reject_constant)
    except (json.JSONDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError("malformed", f"message is not valid JSON ({exc})") from exc
    if not isinstance(message, dict):
        raise ProtocolError("malformed", "message must be a JSON object")
    return message


def report_to_wire(report: Any) -> dict[str, Any]:
    """A :class:`~memlearn.chip.base.ProgramReport` as a reply ``result``."""
    fields = ("cells_written", "set_pulses", "reset_pulses", "verify_reads", "energy_j")
    result = {name: encode_tensor(getattr(report, name)) for name in fields}
    result["failed_cells"] = encode_tensor(report.failed_cells)
    result["extra"] = {k: encode_tensor(v) for k, v in report.extra.items()}
    return result


def layout_to_wire(layout: Any) -> dict[str, Any]:
    """A :class:`~memlearn.chip.base.ChipLayout` as JSON."""
    return {
        "arrays": [{"name": a.name, "rows": a.rows, "cols": a.cols} for a in layout.arrays],
        "tile_rows": layout.tile_rows,
        "tile_cols": layout.tile_cols,
    }


def layout_from_wire(obj: Any) -> Any:
    """Rebuild a :class:`~memlearn.chip.base.ChipLayout` from :func:`layout_to_wire`'s JSON."""
    from memlearn.chip.base import ArraySpec, ChipLayout

    try:
        arrays = tuple(ArraySpec(a["name"], int(a["rows"]), int(a["cols"])) for a in obj["arrays"])
        return ChipLayout(arrays, int(obj["tile_rows"]), int(obj["tile_cols"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise ProtocolError("malformed", f"bad layout description: {exc}") from exc
