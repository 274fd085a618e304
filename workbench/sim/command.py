"""``workbench sim``: run the embedded exchange simulator in the foreground.

The command only turns flags into a :class:`SimConfig` and waits; everything else lives in
the server, so a test or a notebook gets the same simulator from ``SimServer`` directly.
Bad flag values raise :class:`SimulatorError` from the config's validation, which the CLI
prints as one line with exit code 2.
"""

from __future__ import annotations

import argparse
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from workbench.sim.server import SimConfig, SimServer

DEFAULT_PORT = 8765
STOP_TIMEOUT = 5.0


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``sim`` and its flags on the CLI's sub-command parsers."""
    p = subparsers.add_parser(
        "sim",
        help="run the embedded exchange simulator (WebSocket + REST on 127.0.0.1)",
        description=(
            "Serve a seeded simulated exchange on 127.0.0.1: WebSocket at /ws, REST at /symbols, "
            "/book/SYMBOL and /trades/SYMBOL. The protocol is described in the README."
        ),
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="TCP port, 0 = any free port")
    p.add_argument("--seed", type=int, default=0, help="seed of the order flow and the faults")
    p.add_argument(
        "--symbols", default="BTC-USD,ETH-USD", help="comma-separated symbols to simulate"
    )
    p.add_argument("--rate", type=float, default=50.0, help="messages per second per symbol")
    p.add_argument("--drop-every", type=float, metavar="S", help="close a connection every S s")
    p.add_argument("--stall-every", type=float, metavar="S", help="stall a connection every S s")
    for name in ("malformed", "gap", "duplicate", "crossed"):
        p.add_argument(
            f"--{name}",
            type=float,
            default=0.0,
            metavar="RATE",
            help=f"probability per message of a {name} fault on one connection",
        )
    p.add_argument("--ledger", metavar="FILE.jsonl", help="write trades, faults and final books")
    p.add_argument("--duration", type=float, metavar="S", help="trade for S seconds, then halt")
    p.add_argument("--grace", type=float, default=5.0, metavar="S", help="serve S s after halting")
    p.add_argument("--burst", type=int, metavar="N", help="throughput mode: pre-build N messages")


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The flags as a validated config; ``SimulatorError`` names what is wrong."""
    return SimConfig(
        port=args.port,
        seed=args.seed,
        symbols=tuple(s.strip() for s in args.symbols.split(",") if s.strip()),
        rate=args.rate,
        drop_every=args.drop_every,
        stall_every=args.stall_every,
        malformed=args.malformed,
        gap=args.gap,
        duplicate=args.duplicate,
        crossed=args.crossed,
        ledger=None if args.ledger is None else Path(args.ledger),
        duration=args.duration,
        grace=args.grace,
        burst=args.burst,
    )


def run(args: argparse.Namespace) -> int:
    """Serve until ``--duration`` + ``--grace`` have passed or SIGINT/SIGTERM; exit 0."""
    server = SimServer(config_from_args(args))
    server.start()
    print(f"sim listening on {server.ws_url} (rest {server.rest_url})", flush=True)
    interrupted = threading.Event()
    try:
        with _stop_on_signals(interrupted):
            while not interrupted.is_set() and not server.wait_closed(0.1):
                pass
    finally:
        server.stop(STOP_TIMEOUT)
    return 0


@contextmanager
def _stop_on_signals(event: threading.Event) -> Iterator[None]:
    """Route SIGINT/SIGTERM to ``event`` while serving (only the main thread may do this)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handle(signum: int, frame: FrameType | None) -> None:
        event.set()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
