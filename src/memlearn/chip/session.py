"""One client's session of the bench protocol: version negotiation, argument checks, dispatch.

Every argument is validated (names, shapes, dtypes, finiteness, physical ranges from
:mod:`memlearn.bounds`) before the chip sees it; error messages quote offending values only up
to :data:`memlearn.chip.protocol.MAX_ECHO_CHARS` characters.  See :mod:`memlearn.chip.protocol`.
"""

from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any

import torch

from memlearn import __version__
from memlearn.bounds import check_kelvin, check_seconds
from memlearn.chip.base import STRATEGIES, Chip
from memlearn.chip.protocol import (
    OPS,
    PROTOCOL_VERSION,
    SUPPORTED_VERSIONS,
    ProtocolError,
    clip,
    decode_message,
    decode_tensor,
    encode_tensor,
    layout_to_wire,
    report_to_wire,
    show,
)
from memlearn.errors import MemlearnError

if TYPE_CHECKING:
    from memlearn.chip.server import ChipServer

log = logging.getLogger("memlearn.chip.server")

_MAX_ID_CHARS = 200  # [E] a longer request id is not echoed (the reply's id is then null)
_MAX_BATCH = 65536  # [E] images per multiply request, a bound on the server's work per message


class Session:
    """One client's state: the negotiated version and request dispatch."""

    def __init__(self, owner: ChipServer) -> None:
        self.owner = owner
        self.version: int | None = None

    def handle_line(self, line: bytes) -> tuple[dict[str, Any], bool]:
        request_id: Any = None
        try:
            message = decode_message(line)
            request_id = _request_id(message.get("id"))
            op = message.get("op")
            version = message.get("v")
            if op != "hello" and not (type(version) is int and version in SUPPORTED_VERSIONS):
                raise ProtocolError(
                    "bad_version",
                    f"message version {show(version)}; this server speaks "
                    f"{list(SUPPORTED_VERSIONS)} (an integer)",
                )
            if op not in OPS:
                raise ProtocolError("unknown_op", f"unknown op {show(op)}; allowed: {list(OPS)}")
            args = message.get("args", {})
            if not isinstance(args, dict):
                raise ProtocolError("malformed", "'args' must be a JSON object")
            if op != "hello" and self.version is None:
                raise ProtocolError("not_ready", "send 'hello' first to agree on a version")
            result = getattr(self, f"_op_{op}")(args)
            reply = {"v": self.version or PROTOCOL_VERSION, "id": request_id, "ok": True}
            reply["result"] = result
            return reply, op == "close"
        except ProtocolError as exc:
            error = {"code": exc.code, "message": exc.detail}
        except (MemlearnError, ValueError, KeyError, TypeError) as exc:
            error = {"code": "chip_error", "message": str(exc)}
        except Exception as exc:  # the server must survive anything a client sends
            log.exception("internal error while serving a request")
            error = {"code": "internal", "message": f"{type(exc).__name__}: {exc}"}
        error["message"] = clip(error["message"])
        reply = {"v": self.version or PROTOCOL_VERSION, "id": request_id, "ok": False}
        reply["error"] = error
        return reply, False

    # -- argument checks ------------------------------------------------------------------

    @staticmethod
    def _expect(args: dict[str, Any], required: set[str], optional: set[str] = frozenset()) -> None:
        missing = required - set(args)
        extra = set(args) - required - set(optional)
        if missing:
            raise ProtocolError("bad_argument", f"missing argument(s) {sorted(missing)}")
        if extra:
            raise ProtocolError(
                "bad_argument",
                f"unexpected argument(s) {sorted(extra)}; "
                f"allowed: {sorted(required | set(optional))}",
            )

    def _array(self, args: dict[str, Any]) -> tuple[str, int, int]:
        name = args["array"]
        names = [a.name for a in self.owner.chip.layout.arrays]
        if not isinstance(name, str) or name not in names:
            raise ProtocolError(
                "unknown_array", f"unknown array {show(name)}; this chip has {names}"
            )
        spec = self.owner.chip.layout.array(name)
        return name, spec.rows, spec.cols

    def _tensor(
        self, args: dict[str, Any], key: str, shape: tuple[int, ...], kind: str
    ) -> torch.Tensor:
        return self._check(decode_tensor(args[key], what=key), key, shape, kind)

    @staticmethod
    def _check(tensor: torch.Tensor, key: str, shape: tuple[int, ...], kind: str) -> torch.Tensor:
        if tuple(tensor.shape) != shape:
            raise ProtocolError(
                "bad_shape", f"{key} has shape {list(tensor.shape)}, expected {list(shape)}"
            )
        if kind == "float":
            if not tensor.is_floating_point():
                raise ProtocolError("bad_argument", f"{key} must be float32 or float64")
            if not torch.isfinite(tensor).all():
                raise ProtocolError("bad_argument", f"{key} holds NaN or infinite values")
            return tensor.to(torch.float32)
        if kind == "sign":
            if tensor.is_floating_point() or tensor.dtype == torch.bool:
                raise ProtocolError("bad_argument", f"{key} must be an integer tensor")
            if ((tensor < -1) | (tensor > 1)).any():
                raise ProtocolError("bad_argument", f"{key} values must be in {{-1, 0, +1}}")
            return tensor.to(torch.int8)
        if tensor.dtype != torch.bool:
            raise ProtocolError("bad_argument", f"{key} must be a bool tensor")
        return tensor

    @staticmethod
    def _number(args: dict[str, Any], key: str, low: float, low_inclusive: bool) -> float:
        value = args[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ProtocolError("bad_argument", f"{key} must be a number, got {show(value)}")
        value = float(value)
        ok = math.isfinite(value) and (value >= low if low_inclusive else value > low)
        if not ok:
            bound = ">=" if low_inclusive else ">"
            raise ProtocolError(
                "bad_argument", f"{key} must be finite and {bound} {low}, got {value}"
            )
        return value

    # -- operations -----------------------------------------------------------------------

    def _op_hello(self, args: dict[str, Any]) -> dict[str, Any]:
        self._expect(args, {"versions"}, {"client"})
        versions = args["versions"]
        if not isinstance(versions, list) or not all(
            isinstance(v, int) and not isinstance(v, bool) for v in versions
        ):
            raise ProtocolError("bad_argument", "versions must be a list of integers")
        if len(versions) > 64:
            raise ProtocolError("bad_argument", f"versions: {len(versions)} entries, at most 64")
        common = set(versions) & set(SUPPORTED_VERSIONS)
        if not common:
            raise ProtocolError(
                "bad_version",
                f"no common protocol version: client speaks {show(versions)}, "
                f"server speaks {list(SUPPORTED_VERSIONS)}",
            )
        self.version = max(common)
        chip = self.owner.chip
        g_min, g_max = chip.conductance_window
        return {
            "version": self.version,
            "server": f"memlearn {__version__}",
            "n_chips": chip.n_chips,
            "layout": layout_to_wire(chip.layout),
            "window_s": [float(g_min), float(g_max)],
            "read_voltage_v": float(chip.read_voltage),
            "levels": _levels_of(chip),
            "levels_s": _level_conductances_of(chip),
            "preset": self.owner.preset_name,
            "strategies": list(chip.strategies),
            "max_message_bytes": self.owner.max_message_bytes,
        }

    def _op_layout(self, args: dict[str, Any]) -> dict[str, Any]:
        self._expect(args, set())
        return {"layout": layout_to_wire(self.owner.chip.layout)}

    def _op_read(self, args: dict[str, Any]) -> dict[str, Any]:
        self._expect(args, {"array"})
        name, _, _ = self._array(args)
        with self.owner.lock:
            g_plus, g_minus = self.owner.chip.read_conductances(name)
        return {"g_plus": encode_tensor(g_plus), "g_minus": encode_tensor(g_minus)}

    def _op_program(self, args: dict[str, Any]) -> dict[str, Any]:
        self._expect(args, {"array", "g_plus", "g_minus", "strategy"}, {"mask"})
        name, rows, cols = self._array(args)
        shape = (self.owner.chip.n_chips, rows, cols)
        strategy = args["strategy"]
        if strategy not in STRATEGIES:
            raise ProtocolError(
                "unknown_strategy",
                f"unknown strategy {show(strategy)}; allowed: {list(STRATEGIES)}",
            )
        g_plus = self._tensor(args, "g_plus", shape, "float")
        g_minus = self._tensor(args, "g_minus", shape, "float")
        g_min, g_max = self.owner.chip.conductance_window
        for key, g in (("g_plus", g_plus), ("g_minus", g_minus)):
            if (g < g_min).any() or (g > g_max).any():
                raise ProtocolError(
                    "bad_argument",
                    f"{key} targets must lie in the window [{g_min:.4g}, {g_max:.4g}] S",
                )
        mask = self._tensor(args, "mask", shape, "bool") if args.get("mask") is not None else None
        with self.owner.lock:
            report = self.owner.chip.program(name, g_plus, g_minus, strategy=strategy, mask=mask)
        return report_to_wire(report)

    def _op_pulse(self, args: dict[str, Any]) -> dict[str, Any]:
        self._expect(args, {"array", "plus", "minus"})
        name, rows, cols = self._array(args)
        shape = (self.owner.chip.n_chips, rows, cols)
        plus = self._tensor(args, "plus", shape, "sign")
        minus = self._tensor(args, "minus", shape, "sign")
        with self.owner.lock:
            report = self.owner.chip.pulse(name, plus, minus)
        return report_to_wire(report)

    def _op_multiply(self, args: dict[str, Any]) -> dict[str, Any]:
        self._expect(args, {"array", "volts"})
        name, rows, _ = self._array(args)
        volts = decode_tensor(args["volts"], what="volts")
        n_chips = self.owner.chip.n_chips
        if volts.dim() != 3 or volts.shape[0] != n_chips or volts.shape[2] != rows:
            raise ProtocolError(
                "bad_shape",
                f"volts has shape {list(volts.shape)}, expected [{n_chips}, batch, {rows}]",
            )
        if volts.shape[1] > _MAX_BATCH:
            raise ProtocolError("bad_argument", f"batch {volts.shape[1]} > limit {_MAX_BATCH}")
        volts = self._check(volts, "volts", tuple(volts.shape), "float")
        v_read = float(self.owner.chip.read_voltage)
        if (volts.abs() > v_read * (1 + 1e-6)).any():
            raise ProtocolError(
                "bad_argument", f"row voltages must lie within ±{v_read} V (the read voltage)"
            )
        with self.owner.lock:
            amperes = self.owner.chip.multiply(name, volts)
        return {"amperes": encode_tensor(amperes)}

    def _op_advance(self, args: dict[str, Any]) -> dict[str, Any]:
        self._expect(args, {"seconds"}, {"kelvin"})
        seconds = self._number(args, "seconds", 0.0, True)
        kelvin = self._number(args, "kelvin", 0.0, False) if "kelvin" in args else 300.0
        try:
            check_seconds(seconds)
            check_kelvin(kelvin)
        except MemlearnError as exc:
            raise ProtocolError("bad_argument", str(exc)) from exc
        with self.owner.lock:
            self.owner.chip.advance(seconds, kelvin)
        return {}

    def _op_ledger(self, args: dict[str, Any]) -> dict[str, Any]:
        self._expect(args, set())
        with self.owner.lock:
            ledger = self.owner.chip.energy_ledger()
        return {"ledger": {k: encode_tensor(v) for k, v in ledger.items()}}

    def _op_write_counts(self, args: dict[str, Any]) -> dict[str, Any]:
        self._expect(args, {"array"})
        name, _, _ = self._array(args)
        with self.owner.lock:
            plus, minus = self.owner.chip.write_counts(name)
        return {"plus": encode_tensor(plus), "minus": encode_tensor(minus)}

    def _op_close(self, args: dict[str, Any]) -> dict[str, Any]:
        self._expect(args, set())
        return {}


def _request_id(value: Any) -> int | str | None:
    """The request id to echo: an int or a short string; ``None`` for anything else."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    if isinstance(value, int) and not -(2**63) <= value < 2**63:
        return None
    if isinstance(value, str) and len(value) > _MAX_ID_CHARS:
        return None
    return value


def _levels_of(chip: Chip) -> int | None:
    levels = getattr(chip, "levels", None)
    if isinstance(levels, int):
        return levels
    if isinstance(levels, torch.Tensor):
        return int(levels.numel())
    return None


def _level_conductances_of(chip: Chip) -> list[float] | None:
    levels = getattr(chip, "levels", None)
    if isinstance(levels, torch.Tensor) and levels.dim() == 1 and levels.numel() >= 2:
        return [float(g) for g in levels.double()]
    return None
