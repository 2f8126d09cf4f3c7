"""A :class:`~memlearn.chip.base.Chip` behind a bench controller, over the JSON-lines protocol.

``RemoteChip("127.0.0.1", 7341)`` connects, negotiates the protocol version (``hello``) and then
behaves like any other chip: the on-chip loop cannot tell it from a simulated one.  Every request
has a timeout; a connection failure, a timeout or an error reply raises
:class:`~memlearn.chip.protocol.RemoteChipError` naming the bench's error code and message.
See :mod:`memlearn.chip.protocol` for the messages.
"""

from __future__ import annotations

import socket
import threading
from typing import Any

import torch

from memlearn.chip.base import STRATEGIES, Chip, ProgramReport
from memlearn.chip.protocol import (
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_PORT,
    SUPPORTED_VERSIONS,
    ProtocolError,
    RemoteChipError,
    decode_message,
    decode_tensor,
    encode_message,
    encode_tensor,
    layout_from_wire,
)

DEFAULT_TIMEOUT_S = 60.0  # [E] a program request on 1,000 simulated chips takes a few seconds


def _level_conductances(value: Any) -> torch.Tensor | None:
    """The bench's level conductances (S) from ``hello``, or ``None`` when it sends none."""
    if value is None:
        return None
    try:
        levels = torch.tensor([float(g) for g in value], dtype=torch.float64)
    except (TypeError, ValueError) as exc:
        raise RemoteChipError("malformed", f"bad levels_s in the bench's hello: {exc}") from exc
    ok = levels.numel() >= 2 and bool(torch.isfinite(levels).all()) and bool(levels[0] > 0)
    if not ok or not bool((levels[1:] > levels[:-1]).all()):
        raise RemoteChipError(
            "malformed", "levels_s must be >= 2 finite, positive, increasing conductances (S)"
        )
    return levels.float()


class RemoteChip(Chip):
    """Chips served by ``memlearn chip serve`` (or a real bench speaking the same protocol).

    ``timeout_s`` bounds connecting and each request's round trip (seconds).  After ``hello``,
    ``levels`` holds the level conductances (S) the bench programs, so the loop maps weights onto
    exactly those: the hello's ``levels_s``, or, from a bench that sends only a count
    (``levels``), that many levels evenly spaced over its window.  ``preset_name`` and
    ``strategies`` are the hello's ``preset`` and ``strategies`` (default: every strategy).
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        *,
        timeout_s: float = DEFAULT_TIMEOUT_S,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
    ) -> None:
        if not timeout_s > 0:
            raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
        self.host, self.port = host, int(port)
        self.timeout_s = float(timeout_s)
        self.max_message_bytes = int(max_message_bytes)
        self._lock = threading.Lock()
        self._next_id = 0
        try:
            self._sock = socket.create_connection((host, self.port), timeout=self.timeout_s)
        except OSError as exc:
            raise RemoteChipError(
                "connect", f"cannot connect to a bench at {host}:{self.port}: {exc}"
            ) from exc
        self._file = self._sock.makefile("rwb")
        try:
            info = self._request(
                "hello", {"versions": list(SUPPORTED_VERSIONS), "client": "memlearn"}
            )
        except BaseException:
            self.close()
            raise
        self.version = int(info["version"])
        self.info = info
        self.n_chips = int(info["n_chips"])
        self.layout = layout_from_wire(info["layout"])
        self._window = (float(info["window_s"][0]), float(info["window_s"][1]))
        self._read_voltage = float(info["read_voltage_v"])
        self._levels = _level_conductances(info.get("levels_s"))
        count = info.get("levels")
        whole = isinstance(count, int) and not isinstance(count, bool)
        if self._levels is None and whole and count >= 2:
            self._levels = torch.linspace(*self._window, count, dtype=torch.float64).float()
        preset = info.get("preset")
        self._preset = str(preset) if preset is not None else None
        strategies = info.get("strategies")
        self._strategies = STRATEGIES if strategies is None else tuple(map(str, strategies))

    # -- transport ------------------------------------------------------------------------

    def _request(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if self._file is None:
                raise RemoteChipError("closed", "the connection to the bench is closed")
            self._next_id += 1
            request_id = self._next_id
            line = encode_message(
                {"v": SUPPORTED_VERSIONS[-1], "id": request_id, "op": op, "args": args}
            )
            try:
                self._file.write(line)
                self._file.flush()
                reply_line = self._file.readline(self.max_message_bytes + 1)
            except TimeoutError as exc:
                self._drop()
                raise RemoteChipError(
                    "timeout", f"no reply to {op!r} within {self.timeout_s} s from the bench"
                ) from exc
            except OSError as exc:
                self._drop()
                raise RemoteChipError("connection", f"{op!r} failed: {exc}") from exc
            if not reply_line.endswith(b"\n"):
                self._drop()
                what = "too long a reply" if reply_line else "the bench closed the connection"
                raise RemoteChipError("connection", f"{op!r}: {what}")
        try:
            reply = decode_message(reply_line)
        except ProtocolError as exc:
            raise RemoteChipError("malformed", f"unreadable reply to {op!r}: {exc.detail}") from exc
        if reply.get("id") != request_id:
            raise RemoteChipError(
                "malformed", f"reply id {reply.get('id')!r} does not match request {request_id}"
            )
        if not reply.get("ok"):
            error = reply.get("error") or {}
            raise RemoteChipError(str(error.get("code", "unknown")), str(error.get("message", "")))
        result = reply.get("result")
        if not isinstance(result, dict):
            raise RemoteChipError("malformed", f"reply to {op!r} has no result object")
        return result

    def _drop(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            try:
                file.close()
            except OSError:
                pass  # unsent bytes of a broken connection
            finally:
                self._sock.close()

    def close(self) -> None:
        """Say goodbye and close the connection (idempotent)."""
        if getattr(self, "_file", None) is None:
            return
        try:
            self._request("close", {})
        except RemoteChipError:
            pass
        finally:
            with self._lock:
                self._drop()

    # -- the Chip interface ---------------------------------------------------------------

    @staticmethod
    def _tensor(result: dict[str, Any], key: str) -> torch.Tensor:
        try:
            return decode_tensor(result[key], what=key)
        except (KeyError, ProtocolError) as exc:
            raise RemoteChipError("malformed", f"bad {key!r} in the bench's reply: {exc}") from exc

    def _report(self, result: dict[str, Any]) -> ProgramReport:
        fields = ("cells_written", "set_pulses", "reset_pulses", "verify_reads", "energy_j")
        values = {name: self._tensor(result, name) for name in fields}
        extra = result.get("extra") or {}
        return ProgramReport(
            **values,
            failed_cells=self._tensor(result, "failed_cells"),
            extra={k: self._tensor(extra, k) for k in extra},
        )

    def read_conductances(self, array: str) -> tuple[torch.Tensor, torch.Tensor]:
        result = self._request("read", {"array": array})
        return self._tensor(result, "g_plus"), self._tensor(result, "g_minus")

    def program(
        self,
        array: str,
        g_plus: torch.Tensor,
        g_minus: torch.Tensor,
        strategy: str = "hybrid",
        mask: torch.Tensor | None = None,
    ) -> ProgramReport:
        args: dict[str, Any] = {
            "array": array,
            "g_plus": encode_tensor(g_plus.to(torch.float32)),
            "g_minus": encode_tensor(g_minus.to(torch.float32)),
            "strategy": strategy,
        }
        if mask is not None:
            args["mask"] = encode_tensor(mask.to(torch.bool))
        return self._report(self._request("program", args))

    def pulse(self, array: str, plus: torch.Tensor, minus: torch.Tensor) -> ProgramReport:
        args = {
            "array": array,
            "plus": encode_tensor(plus.to(torch.int8)),
            "minus": encode_tensor(minus.to(torch.int8)),
        }
        return self._report(self._request("pulse", args))

    def multiply(self, array: str, volts: torch.Tensor) -> torch.Tensor:
        result = self._request("multiply", {"array": array, "volts": encode_tensor(volts.float())})
        return self._tensor(result, "amperes")

    def advance(self, seconds: float, kelvin: float = 300.0) -> None:
        self._request("advance", {"seconds": float(seconds), "kelvin": float(kelvin)})

    def energy_ledger(self) -> dict[str, torch.Tensor]:
        ledger = self._request("ledger", {}).get("ledger", {})
        return {k: self._tensor(ledger, k) for k in ledger}

    def write_counts(self, array: str) -> tuple[torch.Tensor, torch.Tensor]:
        result = self._request("write_counts", {"array": array})
        return self._tensor(result, "plus"), self._tensor(result, "minus")

    @property
    def levels(self) -> torch.Tensor:  # type: ignore[override]
        if self._levels is None:
            raise RemoteChipError(
                "malformed", "the bench's hello gave neither levels_s nor a level count"
            )
        return self._levels

    @property
    def preset_name(self) -> str | None:
        return self._preset

    @property
    def strategies(self) -> tuple[str, ...]:
        return self._strategies

    @property
    def conductance_window(self) -> tuple[float, float]:
        return self._window

    @property
    def read_voltage(self) -> float:
        return self._read_voltage
