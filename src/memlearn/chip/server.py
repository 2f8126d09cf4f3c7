"""A bench controller that serves a :class:`~memlearn.chip.base.Chip` over the JSON-lines protocol.

:class:`ChipServer` listens on TCP (loopback by default), runs one thread per client and
serialises every chip operation with one lock, so concurrent clients see whole requests applied
one at a time (they share the same chips).  Each connection has an idle timeout; a line longer
than ``max_message_bytes`` is answered with ``too_large`` and the connection is closed; garbage
gets a ``malformed`` reply and the connection stays usable; a client that disconnects, even in the
middle of a message, only ends its own thread.  At most ``max_clients`` clients are served at
once, and the request bytes read but not yet answered, over all clients, are bounded by
``max_buffered_bytes``; beyond either a client gets a ``busy`` reply and is disconnected.  Each
request is checked and dispatched by :class:`memlearn.chip.session.Session`.  See
:mod:`memlearn.chip.protocol`.
"""

from __future__ import annotations

import socketserver
import threading
from typing import Any

from memlearn.chip.base import Chip
from memlearn.chip.protocol import (
    DEFAULT_MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION,
    encode_message,
    show,
)
from memlearn.chip.session import Session
from memlearn.errors import MemlearnError

DEFAULT_IDLE_TIMEOUT_S = 300.0  # [E] drop a client silent for 5 minutes
DEFAULT_MAX_CLIENTS = 16  # [E] a bench serves a handful of experiment scripts at once
# [E] unread request bytes held for all clients together, by default: four of the largest
BUFFERED_MESSAGES = 4
_READ_CHUNK = 1 << 16  # request lines are read, and their bytes counted, in 64 KiB pieces


class _Handler(socketserver.StreamRequestHandler):
    server: _TCPServer

    def setup(self) -> None:
        self.request.settimeout(self.server.owner.idle_timeout_s)
        super().setup()

    def handle(self) -> None:
        session = Session(self.server.owner)
        while True:
            held = 0
            try:
                line, held = self._read_line()
                if line is None:
                    return  # hung up (or timed out), possibly in the middle of a message
                if isinstance(line, dict):
                    self._send(line)  # too large, or the server's buffer budget is spent
                    return
                if not line.strip():
                    continue
                reply, close = session.handle_line(line)
            finally:
                self.server.owner.release(held)
            if not self._send(reply) or close:
                return

    def _read_line(self) -> tuple[bytes | dict[str, Any] | None, int]:
        """One request line and the buffer bytes it holds; ``None`` when the client is gone, an
        error reply when the line is too long or the server-wide buffer budget is spent."""
        owner = self.server.owner
        limit = owner.max_message_bytes
        parts: list[bytes] = []
        held = 0
        while True:
            try:
                chunk = self.rfile.readline(min(_READ_CHUNK, limit + 1 - held))
            except (TimeoutError, OSError):
                return None, held
            if not chunk:
                return None, held
            if not owner.reserve(len(chunk)):
                budget = owner.max_buffered_bytes
                why = f"the server holds its limit of {budget} unread request bytes; retry later"
                return _refusal("busy", why), held
            held += len(chunk)
            parts.append(chunk)
            if chunk.endswith(b"\n"):
                return b"".join(parts), held
            if held > limit:
                return _refusal(
                    "too_large", f"message longer than the limit of {limit} bytes"
                ), held

    def _send(self, reply: dict[str, Any]) -> bool:
        try:
            self.wfile.write(encode_message(reply))
            self.wfile.flush()
            return True
        except (OSError, ValueError):
            return False


def _refusal(code: str, message: str) -> dict[str, Any]:
    """An error reply sent before the server closes a connection."""
    error = {"code": code, "message": message}
    return {"v": PROTOCOL_VERSION, "id": None, "ok": False, "error": error}


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], owner: ChipServer) -> None:
        self.owner = owner
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if self.owner.admit():
            super().process_request(request, client_address)
            return
        limit = self.owner.max_clients
        try:  # one short line, then hang up: the client learns why
            request.settimeout(1.0)
            why = f"the server already serves its limit of {limit} clients; retry later"
            request.sendall(encode_message(_refusal("busy", why)))
        except OSError:
            pass
        self.shutdown_request(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self.owner.leave()


class ChipServer:
    """Serve ``chip`` on ``host:port`` (port 0 picks a free port; see :attr:`address`).

    ``max_message_bytes`` bounds one request line; ``idle_timeout_s`` drops silent clients;
    ``max_clients`` bounds the clients served at once and ``max_buffered_bytes`` the unread
    request bytes held for all of them (default: ``BUFFERED_MESSAGES`` of the largest; a client
    beyond either gets a ``busy`` reply and is disconnected).  A host or port that cannot be
    bound raises :class:`MemlearnError`.
    Use :meth:`serve_forever` in the foreground or :meth:`start` for a background thread, and
    :meth:`shutdown` to stop.
    """

    def __init__(
        self,
        chip: Chip,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        idle_timeout_s: float = DEFAULT_IDLE_TIMEOUT_S,
        preset_name: str | None = None,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        max_buffered_bytes: int | None = None,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be in 0..65535, got {port}")
        if max_message_bytes < 1024:
            raise ValueError(f"max_message_bytes must be >= 1024, got {max_message_bytes}")
        if not idle_timeout_s > 0:
            raise ValueError(f"idle_timeout_s must be > 0, got {idle_timeout_s}")
        if max_clients < 1:
            raise ValueError(f"max_clients must be >= 1, got {max_clients}")
        if max_buffered_bytes is None:
            max_buffered_bytes = BUFFERED_MESSAGES * int(max_message_bytes)
        if max_buffered_bytes < max_message_bytes:
            raise ValueError(
                f"max_buffered_bytes ({max_buffered_bytes}) must be >= max_message_bytes "
                f"({max_message_bytes})"
            )
        self.chip = chip
        self.max_message_bytes = int(max_message_bytes)
        self.idle_timeout_s = float(idle_timeout_s)
        self.preset_name = preset_name
        self.max_clients = int(max_clients)
        self.max_buffered_bytes = int(max_buffered_bytes)
        self.lock = threading.Lock()
        self._count_lock = threading.Lock()
        self._clients = 0
        self._buffered = 0
        try:
            self._server = _TCPServer((host, port), self)
        except (OSError, OverflowError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            raise MemlearnError(f"cannot listen on {show(host)} port {port}: {reason}") from exc
        self._thread: threading.Thread | None = None
        self._serving = threading.Event()

    def admit(self) -> bool:
        """Count one more client if there is room for it."""
        with self._count_lock:
            if self._clients >= self.max_clients:
                return False
            self._clients += 1
            return True

    def leave(self) -> None:
        """A client has gone."""
        with self._count_lock:
            self._clients -= 1

    def reserve(self, n_bytes: int) -> bool:
        """Hold ``n_bytes`` of the server-wide read budget if it has room."""
        with self._count_lock:
            if self._buffered + n_bytes > self.max_buffered_bytes:
                return False
            self._buffered += n_bytes
            return True

    def release(self, n_bytes: int) -> None:
        """Give back ``n_bytes`` of the read budget."""
        with self._count_lock:
            self._buffered -= n_bytes

    @property
    def address(self) -> tuple[str, int]:
        """The ``(host, port)`` actually bound."""
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def serve_forever(self) -> None:
        """Serve until :meth:`shutdown` (or KeyboardInterrupt)."""
        self._serving.set()
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._serving.clear()

    def start(self) -> ChipServer:
        """Serve in a daemon thread; returns ``self``."""
        self._serving.set()
        self._thread = threading.Thread(target=self.serve_forever, daemon=True, name="chip-server")
        self._thread.start()
        return self

    def shutdown(self) -> None:
        """Stop serving and release the port."""
        if self._serving.is_set():
            self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> ChipServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
