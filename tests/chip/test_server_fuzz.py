"""A bounded fuzz of the bench server on loopback: random and malformed messages, oversized
lines, half-sent lines and many clients at once, for about two seconds.  Every reply must be
one well-formed JSON line with a bounded error message, and the server must keep serving."""

from __future__ import annotations

import json
import random
import socket
import sys
import threading
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "onchip"))
from fake_chip import FakeChip  # noqa: E402

from memlearn.chip.protocol import (  # noqa: E402
    ERROR_CODES,
    MAX_ERROR_CHARS,
    OPS,
    encode_message,
    encode_tensor,
)
from memlearn.chip.server import ChipServer  # noqa: E402

LIMIT = 16 * 1024  # the server's line limit in this test
SECONDS = 2.0  # how long the fuzz runs
WORKERS = 6  # clients at once, more than the server admits


def _valid(rng: random.Random) -> dict:
    op = rng.choice(OPS)
    args = {
        "hello": {"versions": [1]},
        "read": {"array": "fc2"},
        "write_counts": {"array": "fc1"},
        "advance": {"seconds": rng.choice([0.0, 1.0, 1e308, -1.0]), "kelvin": 300.0},
        "multiply": {"array": "fc2", "volts": encode_tensor(torch.zeros(1, 2, 16))},
    }.get(op, {})
    return {"v": 1, "id": rng.randrange(1000), "op": op, "args": args}


def _mutate(rng: random.Random, message: dict) -> bytes:
    """A message damaged in one of many ways (or left intact)."""
    kind = rng.randrange(10)
    if kind == 0:
        return bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200))) + b"\n"
    if kind == 1:
        return b'{"v":1,"op":"hello","pad":"' + b"z" * (LIMIT + rng.randrange(1, 5000)) + b'"}\n'
    if kind == 2:
        return encode_message(message)[: rng.randrange(1, 40)]  # half a line, then hang up
    if kind == 3:
        message["v"] = rng.choice([True, 1.0, "1", None, 2, [1]])
    elif kind == 4:
        message["args"] = rng.choice([[], "x", None, {"array": "q" * 5000}, {"seconds": "soon"}])
    elif kind == 5:
        message["id"] = rng.choice(["i" * 3000, True, 1.5, None, 2**70])
    elif kind == 6:
        message["op"] = "o" * rng.randrange(1, 3000)
    elif kind == 7:
        return json.dumps(message)[: rng.randrange(1, 60)].encode() + b"\n"
    return encode_message(message)


def _check_reply(line: bytes) -> dict:
    assert line.endswith(b"\n"), line[:100]
    reply = json.loads(line)
    assert isinstance(reply, dict) and isinstance(reply["ok"], bool)
    if not reply["ok"]:
        assert reply["error"]["code"] in ERROR_CODES
        assert len(reply["error"]["message"]) <= MAX_ERROR_CHARS + 40
    return reply


def _worker(address, seed: int, stop: float, counts: list[int], failures: list[str]) -> None:
    rng = random.Random(seed)
    while time.monotonic() < stop:
        try:
            with socket.create_connection(address, timeout=5) as sock:
                stream = sock.makefile("rwb")
                for _ in range(rng.randrange(1, 8)):
                    data = _mutate(rng, _valid(rng))
                    stream.write(data)
                    stream.flush()
                    if not data.endswith(b"\n"):
                        break  # hung up mid-message
                    line = stream.readline()
                    if not line:
                        break  # the server closed (too large, busy)
                    reply = _check_reply(line)
                    counts[0] += 1
                    if reply.get("error", {}).get("code") in ("too_large", "busy"):
                        assert stream.readline() == b""  # ... and then closes
                        break
        except (ConnectionError, TimeoutError, BrokenPipeError):
            continue  # the server may close first while we still write
        except AssertionError as exc:
            failures.append(repr(exc))
            return


def test_server_survives_a_bounded_fuzz():
    server = ChipServer(
        FakeChip(1, levels=8), max_message_bytes=LIMIT, max_clients=4, idle_timeout_s=5
    ).start()
    try:
        stop = time.monotonic() + SECONDS
        counts, failures = [0], []
        threads = [
            threading.Thread(target=_worker, args=(server.address, s, stop, counts, failures))
            for s in range(WORKERS)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=SECONDS + 20)
        assert not any(t.is_alive() for t in threads)
        assert failures == []
        assert counts[0] > 50  # the fuzz did exercise the server
        end = time.monotonic() + 5
        while server._clients or server._buffered:  # every connection accounted for
            assert time.monotonic() < end
            time.sleep(0.01)
        with socket.create_connection(server.address, timeout=5) as sock:
            stream = sock.makefile("rwb")
            stream.write(
                encode_message({"v": 1, "id": 1, "op": "hello", "args": {"versions": [1]}})
            )
            stream.flush()
            assert _check_reply(stream.readline())["ok"]
    finally:
        server.shutdown()
