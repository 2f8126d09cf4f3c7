"""The bench protocol: tensor codec round trips and a server that survives bad clients."""

from __future__ import annotations

import base64
import json
import socket
import sys
import time
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "onchip"))
from fake_chip import FakeChip  # noqa: E402

from memlearn.chip.protocol import (  # noqa: E402
    MAX_ECHO_CHARS,
    MAX_ERROR_CHARS,
    PROTOCOL_VERSION,
    ProtocolError,
    decode_message,
    decode_tensor,
    encode_message,
    encode_tensor,
)
from memlearn.chip.server import ChipServer  # noqa: E402
from memlearn.cli.main import app  # noqa: E402
from memlearn.devices.programming import STRATEGIES  # noqa: E402
from memlearn.errors import MemlearnError  # noqa: E402


@pytest.mark.parametrize(
    "tensor",
    [
        torch.tensor([[1.0, -0.0, float("inf")], [1e-30, 3.4e38, -7.25]], dtype=torch.float32),
        torch.randn(2, 3, 4, dtype=torch.float64),
        torch.tensor([-1, 0, 1], dtype=torch.int8),
        torch.tensor([[2**40, -(2**40)]], dtype=torch.int64),
        torch.tensor([True, False]),
        torch.zeros(0, 5),
    ],
)
def test_tensor_round_trip_is_exact(tensor):
    obj = json.loads(json.dumps(encode_tensor(tensor)))
    back = decode_tensor(obj)
    assert back.dtype == tensor.dtype and back.shape == tensor.shape
    assert torch.equal(back, tensor) or torch.equal(back.isinf(), tensor.isinf())
    assert back.numpy().tobytes() == tensor.numpy().tobytes()


def test_tensor_bytes_are_little_endian():
    obj = encode_tensor(torch.tensor([1], dtype=torch.int32))
    assert base64.b64decode(obj["data"]) == b"\x01\x00\x00\x00"


@pytest.mark.parametrize(
    ("obj", "match"),
    [
        ({"dtype": "float32", "shape": [2]}, "exactly"),
        ({"dtype": "object", "shape": [1], "data": ""}, "unknown dtype"),
        ({"dtype": "float32", "shape": [-1], "data": ""}, "shape"),
        ({"dtype": "float32", "shape": [2], "data": "AAAA"}, "bytes do not match"),
        ({"dtype": "float32", "shape": [1], "data": "!!not base64!!"}, "base64"),
        ([1, 2, 3], "exactly"),
    ],
)
def test_bad_tensor_encodings_are_refused(obj, match):
    with pytest.raises(ProtocolError, match=match) as info:
        decode_tensor(obj)
    assert info.value.code == "malformed"


def test_messages_reject_nan_and_non_objects():
    with pytest.raises(ProtocolError, match="non-finite"):
        encode_message({"x": float("nan")})
    for line in (b"NaN\n", b'{"x": Infinity}\n', b"[1]\n", b"\xff\xfe\n", b"{oops\n"):
        with pytest.raises(ProtocolError) as info:
            decode_message(line)
        assert info.value.code == "malformed"


class Client:
    """A raw line client for poking at the server."""

    def __init__(self, address):
        self.sock = socket.create_connection(address, timeout=10)
        self.file = self.sock.makefile("rwb")
        self.n = 0

    def send_raw(self, data: bytes):
        self.file.write(data)
        self.file.flush()

    def recv(self):
        line = self.file.readline()
        return json.loads(line) if line else None

    def call(self, op, args=None, v=PROTOCOL_VERSION):
        self.n += 1
        self.send_raw(encode_message({"v": v, "id": self.n, "op": op, "args": args or {}}))
        return self.recv()

    def close(self):
        self.file.close()
        self.sock.close()


@pytest.fixture
def server():
    srv = ChipServer(FakeChip(2, levels=8), max_message_bytes=64 * 1024, idle_timeout_s=5)
    srv.start()
    yield srv
    srv.shutdown()


def _ok_program_args(fill=50e-6):
    g = torch.full((2, 32, 16), fill)
    return {
        "array": "fc1",
        "g_plus": encode_tensor(g),
        "g_minus": encode_tensor(g),
        "strategy": "hybrid",
    }


def test_hello_negotiates_and_is_required_first(server):
    c = Client(server.address)
    reply = c.call("read", {"array": "fc1"})
    assert not reply["ok"] and reply["error"]["code"] == "not_ready"
    reply = c.call("hello", {"versions": [99]})
    assert reply["error"]["code"] == "bad_version" and "99" in reply["error"]["message"]
    reply = c.call("hello", {"versions": [1, 99]})
    assert reply["ok"] and reply["result"]["version"] == 1
    assert reply["result"]["n_chips"] == 2 and reply["result"]["levels"] == 8
    assert reply["result"]["strategies"] == list(STRATEGIES)
    assert [a["name"] for a in reply["result"]["layout"]["arrays"]] == ["fc1", "fc2"]
    assert c.call("layout")["ok"]
    reply = c.call("layout", v=2)
    assert reply["error"]["code"] == "bad_version" and "[1]" in reply["error"]["message"]
    c.close()


@pytest.mark.parametrize(
    ("op", "args", "code", "words"),
    [
        ("dance", {}, "unknown_op", "allowed"),
        ("read", {"array": "fc9"}, "unknown_array", "fc1"),
        ("read", {}, "bad_argument", "missing"),
        ("read", {"array": "fc1", "extra": 1}, "bad_argument", "unexpected"),
        ("program", {**_ok_program_args(), "strategy": "magic"}, "unknown_strategy", "hybrid"),
        (
            "program",
            {**_ok_program_args(), "g_plus": encode_tensor(torch.zeros(2, 16, 32))},
            "bad_shape",
            "[2, 32, 16]",
        ),
        (
            "program",
            {**_ok_program_args(), "g_plus": encode_tensor(torch.full((2, 32, 16), float("nan")))},
            "bad_argument",
            "NaN",
        ),
        ("program", _ok_program_args(fill=1.0), "bad_argument", "window"),
        (
            "pulse",
            {
                "array": "fc2",
                "plus": encode_tensor(torch.full((2, 16, 5), 2, dtype=torch.int8)),
                "minus": encode_tensor(torch.zeros(2, 16, 5, dtype=torch.int8)),
            },
            "bad_argument",
            "-1, 0, +1",
        ),
        (
            "multiply",
            {"array": "fc2", "volts": encode_tensor(torch.zeros(2, 3, 15))},
            "bad_shape",
            "16",
        ),
        (
            "multiply",
            {"array": "fc2", "volts": encode_tensor(torch.ones(2, 3, 16))},
            "bad_argument",
            "read voltage",
        ),
        ("advance", {"seconds": -1.0}, "bad_argument", ">= 0"),
        ("advance", {"seconds": 1.0, "kelvin": 0}, "bad_argument", "> 0"),
        ("advance", {"seconds": "soon"}, "bad_argument", "number"),
    ],
)
def test_bad_requests_get_clear_errors_and_the_connection_survives(server, op, args, code, words):
    c = Client(server.address)
    assert c.call("hello", {"versions": [1]})["ok"]
    reply = c.call(op, args)
    assert reply["ok"] is False and reply["id"] == c.n
    assert reply["error"]["code"] == code, reply
    assert words in reply["error"]["message"]
    assert c.call("ledger")["ok"]  # still usable
    c.close()


def test_garbage_truncation_huge_messages_and_disconnects(server):
    c = Client(server.address)
    c.send_raw(b"this is not json\n")
    assert c.recv()["error"]["code"] == "malformed"
    c.send_raw(b'{"v": 1, "id": 1, "op": "hello", "args": []}\n')
    assert c.recv()["error"]["code"] == "malformed"
    c.send_raw(b"\x00\xff\xfe garbage bytes\n")
    assert c.recv()["error"]["code"] == "malformed"
    assert c.call("hello", {"versions": [1]})["ok"]
    c.send_raw(b"\n")  # blank lines are ignored
    assert c.call("read", {"array": "fc2"})["ok"]
    c.close()

    # A line beyond the size limit: one error reply, then the server hangs up.
    c = Client(server.address)
    c.send_raw(
        b'{"v":1,"id":1,"op":"hello","args":{"versions":[1]},"pad":"' + b"x" * 70000 + b'"}\n'
    )
    reply = c.recv()
    assert reply["error"]["code"] == "too_large"
    assert c.recv() is None
    c.close()

    # A client that disconnects mid-message, and one that just vanishes.
    c = Client(server.address)
    c.send_raw(b'{"v":1,"id":1,"op":"hel')
    c.close()
    c = Client(server.address)
    c.close()

    # The server still serves new clients.
    c = Client(server.address)
    assert c.call("hello", {"versions": [1]})["ok"]
    assert c.call("close")["ok"]
    assert c.recv() is None  # closed after 'close'
    c.close()


def test_server_rejects_bad_settings():
    with pytest.raises(ValueError, match="port"):
        ChipServer(FakeChip(1), port=70000)
    with pytest.raises(ValueError, match="max_message_bytes"):
        ChipServer(FakeChip(1), max_message_bytes=10)


def test_silent_clients_are_dropped_after_the_idle_timeout():
    srv = ChipServer(FakeChip(1), idle_timeout_s=0.3).start()
    try:
        c = Client(srv.address)
        assert c.call("hello", {"versions": [1]})["ok"]
        t0 = time.monotonic()
        assert c.recv() is None  # the server hangs up on a client silent for 0.3 s
        assert 0.2 < time.monotonic() - t0 < 5
        c.close()
        c = Client(srv.address)  # and keeps serving others
        assert c.call("hello", {"versions": [1]})["ok"]
        c.close()
    finally:
        srv.shutdown()


def test_error_replies_quote_at_most_a_bounded_value(server):
    c = Client(server.address)
    assert c.call("hello", {"versions": [1]})["ok"]
    huge = "y" * 50_000
    for op, args in (
        (huge, {}),
        ("read", {"array": huge}),
        ("advance", {"seconds": [huge]}),
        ("program", {**_ok_program_args(), "strategy": huge}),
    ):
        reply = c.call(op, args)
        assert reply["ok"] is False
        assert len(reply["error"]["message"]) <= MAX_ERROR_CHARS + 40
        assert "y" * (MAX_ECHO_CHARS + 1) not in reply["error"]["message"]
    c.send_raw(encode_message({"v": 1, "id": huge, "op": "ledger", "args": {}}))
    reply = c.recv()
    assert reply["ok"] and reply["id"] is None  # a long id is not echoed
    c.close()


@pytest.mark.parametrize("version", [True, 1.0, "1", None])
def test_version_must_be_the_integer_one(server, version):
    c = Client(server.address)
    assert c.call("hello", {"versions": [1]})["ok"]
    reply = c.call("ledger", v=version)
    assert reply["error"]["code"] == "bad_version"
    c.close()


@pytest.mark.parametrize(
    ("args", "words"),
    [
        ({"seconds": 1e308}, "at most 1e+10"),
        ({"seconds": 1.0, "kelvin": 5000.0}, "[200, 700] K"),
        ({"seconds": 1.0, "kelvin": 100.0}, "[200, 700] K"),
    ],
)
def test_advance_is_bounded_by_physics(server, args, words):
    c = Client(server.address)
    assert c.call("hello", {"versions": [1]})["ok"]
    reply = c.call("advance", args)
    assert reply["error"]["code"] == "bad_argument" and words in reply["error"]["message"]
    assert c.call("advance", {"seconds": 3600.0, "kelvin": 423.15})["ok"]
    c.close()


def _wait(predicate, timeout=5.0):
    end = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < end, "condition not reached"
        time.sleep(0.01)


def test_clients_beyond_the_limit_get_busy_and_are_closed():
    srv = ChipServer(FakeChip(1), max_clients=2, idle_timeout_s=5).start()
    try:
        a, b = Client(srv.address), Client(srv.address)
        assert a.call("hello", {"versions": [1]})["ok"] and b.call("hello", {"versions": [1]})["ok"]
        c = Client(srv.address)
        reply = c.recv()
        assert reply["error"]["code"] == "busy" and "2 clients" in reply["error"]["message"]
        assert c.recv() is None
        c.close()
        a.close()
        _wait(lambda: srv._clients == 1)
        d = Client(srv.address)
        assert d.call("hello", {"versions": [1]})["ok"]
        d.close()
        b.close()
    finally:
        srv.shutdown()


def test_buffered_bytes_of_all_clients_are_bounded():
    kib = 1024
    srv = ChipServer(
        FakeChip(1), max_message_bytes=200 * kib, max_buffered_bytes=250 * kib, idle_timeout_s=5
    ).start()
    try:
        # Lines are read (and counted) in 64 KiB pieces: 140,000 bytes with no newline hold two.
        a = Client(srv.address)
        a.send_raw(b'{"pad":"' + b"x" * 140_000)
        _wait(lambda: srv._buffered >= 128 * kib)
        b = Client(srv.address)
        b.send_raw(b'{"pad":"' + b"x" * 140_000)
        reply = b.recv()
        assert reply["error"]["code"] == "busy"
        assert "unread request bytes" in reply["error"]["message"]
        assert b.recv() is None
        b.close()
        a.close()
        _wait(lambda: srv._buffered == 0)
        c = Client(srv.address)
        assert c.call("hello", {"versions": [1]})["ok"]
        c.close()
    finally:
        srv.shutdown()
    with pytest.raises(ValueError, match="max_clients"):
        ChipServer(FakeChip(1), max_clients=0)
    with pytest.raises(ValueError, match="max_buffered_bytes"):
        ChipServer(FakeChip(1), max_message_bytes=4096, max_buffered_bytes=2048)


def test_bind_failures_are_one_clear_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MemlearnError, match=f"cannot listen on '127.0.0.1' port {port}"):
            ChipServer(FakeChip(1), port=port)
        result = CliRunner().invoke(app, ["chip", "serve", "--port", str(port)])
        assert result.exit_code == 2
        lines = [ln for ln in result.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and lines[0].startswith("error: cannot listen")
    # An address of no local interface (TEST-NET-1, RFC 5737): refused without any lookup.
    result = CliRunner().invoke(app, ["chip", "serve", "--host", "192.0.2.1", "--port", "0"])
    assert result.exit_code == 2 and result.output.startswith("error: cannot listen")
