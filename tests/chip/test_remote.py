"""RemoteChip against a server on loopback: same results as the local chip, clear errors."""

from __future__ import annotations

import socket
import sys
import threading
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "onchip"))
from fake_chip import FakeChip  # noqa: E402
from test_loop import LAYOUT, LRS, synthetic_tasks  # noqa: E402

from memlearn.chip.base import STRATEGIES  # noqa: E402
from memlearn.chip.protocol import RemoteChipError  # noqa: E402
from memlearn.chip.remote import RemoteChip  # noqa: E402
from memlearn.chip.server import ChipServer  # noqa: E402
from memlearn.meta.inner import HeadTasks  # noqa: E402
from memlearn.onchip.config import AdaptConfig  # noqa: E402
from memlearn.onchip.loop import adapt_on_chip  # noqa: E402


def _fake(seed):
    return FakeChip(6, LAYOUT, levels=8, program_sigma=2e-6, read_sigma=0.5e-6, seed=seed)


def _simulated(seed):
    from memlearn.chip.simulated import SimulatedChip

    return SimulatedChip(6, preset="hfo2-mlc", layout=LAYOUT, levels=8, seed=seed)


def _simulated_log(seed):
    """Levels spaced in ln G: the loop must learn them from the bench, not assume them."""
    from memlearn.chip.simulated import SimulatedChip

    return SimulatedChip(6, preset="hfo2-mlc", layout=LAYOUT, levels=8, seed=seed, spacing="log")


@pytest.mark.parametrize(
    ("make", "policy"),
    [
        (_fake, "verify"),
        (_fake, "manhattan"),
        (_simulated, "verify"),
        (_simulated, "stochastic"),
        (_simulated, "manhattan"),
        (_simulated_log, "stochastic"),
    ],
)
def test_loop_on_remote_chip_equals_local_chip(make, policy):
    sx, sy, qx, qy, ws = synthetic_tasks(6, seed=11)
    cfg = AdaptConfig(steps=3, policy=policy, bake_seconds=3600.0)
    local = adapt_on_chip(make(5), HeadTasks(sx, sy, qx, qy), ws, LRS, cfg)
    assert local.cells_written.sum() > 0
    with ChipServer(make(5)) as server, RemoteChip(*server.address, timeout_s=30) as remote:
        assert remote.n_chips == 6 and remote.layout == LAYOUT
        assert torch.equal(remote.levels, make(5).levels)  # the bench's own levels, in S
        over_wire = adapt_on_chip(remote, HeadTasks(sx, sy, qx, qy), ws, LRS, cfg)
    for name in (
        "accuracy",
        "loss",
        "cells_written",
        "pulses",
        "verify_reads",
        "accuracy_after_bake",
    ):
        assert torch.equal(getattr(local, name), getattr(over_wire, name)), name
    for cat in local.energy_j:
        assert torch.equal(local.energy_j[cat], over_wire.energy_j[cat])


def test_remote_chip_methods_round_trip():
    chip = FakeChip(2, levels=8, seed=1)
    with ChipServer(chip) as server, RemoteChip(*server.address) as remote:
        g = torch.full((2, 16, 5), 40e-6)
        report = remote.program("fc2", g, g + 10e-6, strategy="iterative-set")
        assert report.cells_written.tolist() == [160, 160]
        gp, gm = remote.read_conductances("fc2")
        torch.testing.assert_close(gp, g)
        plus, minus = remote.write_counts("fc2")
        assert plus.dtype == torch.long and int(plus.sum() + minus.sum()) == 320
        volts = torch.full((2, 3, 16), 0.1)
        torch.testing.assert_close(remote.multiply("fc2", volts), chip.multiply("fc2", volts))
        remote.advance(1.0, 350.0)
        assert set(remote.energy_ledger()) == {"read", "program", "verify", "dac", "adc"}
        assert remote.conductance_window == (10e-6, 150e-6) and remote.read_voltage == 0.2
        with pytest.raises(RemoteChipError, match="unknown_strategy"):
            remote.program("fc2", g, g, strategy="magic")
        with pytest.raises(RemoteChipError, match="unknown_array"):
            remote.read_conductances("fc3")


def test_connection_refused_and_timeouts_are_clear():
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    with pytest.raises(RemoteChipError, match=f"cannot connect to a bench at 127.0.0.1:{port}"):
        RemoteChip("127.0.0.1", port, timeout_s=2)

    # A "bench" that accepts and never answers.
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    held = []
    t = threading.Thread(target=lambda: held.append(silent.accept()), daemon=True)
    t.start()
    try:
        with pytest.raises(RemoteChipError, match="no reply to 'hello' within 0.3 s"):
            RemoteChip(*silent.getsockname(), timeout_s=0.3)
    finally:
        t.join(timeout=2)
        for conn, _ in held:
            conn.close()
        silent.close()


def test_server_going_away_is_reported():
    server = ChipServer(FakeChip(1)).start()
    remote = RemoteChip(*server.address, timeout_s=2)
    server.shutdown()
    # Established connections outlive serve_forever in the threading server; force a close.
    remote._sock.shutdown(socket.SHUT_RDWR)
    with pytest.raises(RemoteChipError):
        remote.read_conductances("fc1")
    with pytest.raises(RemoteChipError, match="closed"):
        remote.read_conductances("fc1")
    remote.close()


def test_remote_levels_from_a_count_only_bench_and_none(monkeypatch):
    """A bench that sends only a level count gets that many levels evenly over its window; one
    that sends neither raises when the levels are asked for."""
    import memlearn.chip.session as server_module

    monkeypatch.setattr(server_module, "_level_conductances_of", lambda chip: None)
    with ChipServer(FakeChip(2, levels=5)) as server, RemoteChip(*server.address) as remote:
        expected = torch.linspace(10e-6, 150e-6, 5, dtype=torch.float64).float()
        assert torch.equal(remote.levels, expected)
        assert remote.strategies == STRATEGIES and remote.preset_name is None
    monkeypatch.setattr(server_module, "_levels_of", lambda chip: None)
    with (
        ChipServer(FakeChip(2)) as server,
        RemoteChip(*server.address) as remote,
        pytest.raises(RemoteChipError, match="neither levels_s nor a level count"),
    ):
        _ = remote.levels
