"""``memlearn chip serve``: a bench controller serving simulated chips over the bench protocol."""

from __future__ import annotations

import math

import typer

from memlearn.chip.protocol import DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_PORT
from memlearn.cli.errors import user_errors

HELP = "Serve simulated chips over the bench protocol (JSON lines over TCP)."

app = typer.Typer(help=HELP, no_args_is_help=True)


def _check_options(
    chips: int,
    seed: int,
    max_message_mb: float,
    idle_timeout: float,
    max_clients: int,
    max_buffered_mb: float | None,
) -> None:
    """The server's options, named as on the command line (the server checks them again)."""
    for name, value, low in (("--chips", chips, 1), ("--seed", seed, 0),
                             ("--max-clients", max_clients, 1)):  # fmt: skip
        if value < low:
            raise ValueError(f"{name} must be >= {low}, got {value}")
    if not (math.isfinite(max_message_mb) and max_message_mb >= 2**-10):
        raise ValueError(f"--max-message-mb must be >= 1/1024 (1 KiB), got {max_message_mb}")
    if not (math.isfinite(idle_timeout) and idle_timeout > 0):
        raise ValueError(f"--idle-timeout must be > 0 s, got {idle_timeout}")
    if max_buffered_mb is not None and not max_buffered_mb >= max_message_mb:
        raise ValueError(
            f"--max-buffered-mb must be >= --max-message-mb ({max_message_mb:g}), "
            f"got {max_buffered_mb}"
        )


@app.command("serve")
def serve(
    preset: str = typer.Option("hfo2-mlc", "--preset", help="Device preset name or file."),
    host: str = typer.Option(
        "127.0.0.1", "--host", help="Address to listen on (loopback by default)."
    ),
    port: int = typer.Option(DEFAULT_PORT, "--port", help="TCP port (0: any free port)."),
    chips: int = typer.Option(1, "--chips", help="Chips served as one batch."),
    levels: int = typer.Option(8, "--levels", help="Conductance levels per cell."),
    seed: int = typer.Option(0, "--seed", help="Seed of the chips' variability."),
    spare_pairs: int | None = typer.Option(
        None,
        "--spare-pairs",
        help="Spare column pairs beside fc2's 5 (default: the rest of its tile, 11).",
    ),
    max_message_mb: float = typer.Option(
        DEFAULT_MAX_MESSAGE_BYTES / 2**20, "--max-message-mb", help="Largest request line (MiB)."
    ),
    idle_timeout: float = typer.Option(
        300.0, "--idle-timeout", help="Drop a client silent this long (s)."
    ),
    max_clients: int = typer.Option(16, "--max-clients", help="Clients served at once."),
    max_buffered_mb: float | None = typer.Option(
        None, "--max-buffered-mb", help="Unanswered request bytes of all clients (MiB; 4 lines)."
    ),
) -> None:
    """Serve the reference layout (fc1 32x16, fc2 16x5 and its spare pairs: 16x16 by default)
    of --chips simulated chips.

    One thread per client; every chip operation runs under one lock (clients share the chips).
    Stop with Ctrl-C.
    """
    from memlearn.chip.base import reference_layout
    from memlearn.chip.layout import output_layout
    from memlearn.chip.server import ChipServer
    from memlearn.chip.simulated import SimulatedChip

    with user_errors():
        if not 0 <= port <= 65535:
            raise ValueError(f"--port must be in 0..65535 (0: any free port), got {port}")
        _check_options(chips, seed, max_message_mb, idle_timeout, max_clients, max_buffered_mb)
        layout = output_layout(reference_layout(), spare_pairs)
        chip = SimulatedChip(chips, preset=preset, layout=layout, levels=levels, seed=seed)
        server = ChipServer(
            chip,
            host,
            port,
            max_message_bytes=int(max_message_mb * 2**20),
            idle_timeout_s=idle_timeout,
            preset_name=preset,
            max_clients=max_clients,
            max_buffered_bytes=None if max_buffered_mb is None else int(max_buffered_mb * 2**20),
        )
    bound_host, bound_port = server.address
    if bound_host not in ("127.0.0.1", "::1", "localhost"):
        typer.secho(
            f"warning: listening on {bound_host}, reachable from other machines; the protocol "
            "has no authentication",
            err=True,
            fg=typer.colors.YELLOW,
        )
    typer.echo(
        f"serving {chips} simulated chip(s) ({preset}, {levels} levels) on "
        f"{bound_host}:{bound_port}; Ctrl-C to stop",
        err=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
