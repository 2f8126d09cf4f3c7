"""``memlearn chip serve``: a bench controller serving simulated chips over the bench protocol."""

from __future__ import annotations

import typer

from memlearn.chip.protocol import DEFAULT_MAX_MESSAGE_BYTES, DEFAULT_PORT
from memlearn.cli.errors import user_errors

HELP = "Serve simulated chips over the bench protocol (JSON lines over TCP)."

app = typer.Typer(help=HELP, no_args_is_help=True)


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
    of ``--chips`` simulated chips.

    One thread per client; every chip operation runs under one lock (clients share the chips).
    Stop with Ctrl-C.
    """
    from memlearn.chip.base import reference_layout
    from memlearn.chip.layout import output_layout
    from memlearn.chip.server import ChipServer
    from memlearn.chip.simulated import SimulatedChip

    with user_errors():
        if chips < 1:
            raise ValueError(f"--chips must be >= 1, got {chips}")
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
