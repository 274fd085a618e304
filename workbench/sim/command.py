"""``workbench sim``: run the embedded exchange simulator in the foreground.

The command only turns flags into a :class:`SimConfig` and waits; everything else lives in
the server, so a test or a notebook gets the same simulator from ``SimServer`` directly.
Bad flag values raise :class:`SimulatorError` from the config's validation, which the CLI
prints as one line with exit code 2.

The market and fault flags are shared: :func:`add_market_options` gives ``workbench record
sim`` and ``%wb feed start sim`` the same flags for the simulator they embed, and
:func:`embedded_sim` turns them into the config of that simulator.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

from workbench.errors import UsageError
from workbench.sim.server import SimConfig, SimServer

DEFAULT_PORT = 8765
STOP_TIMEOUT = 5.0
EMBEDDED_RATE = 200.0
EMBEDDED_SEED = 0
"""Rate (messages per second per symbol) and seed of an embedded simulator unless told
otherwise: ``workbench record sim`` and the notebook (``sim_rate``, ``sim_seed``) agree."""
SIM_SYMBOLS = SimConfig().symbols
"""The symbols an embedded simulator knows unless ``--sim-symbols`` names others."""
FAULTS = ("malformed", "gap", "duplicate", "crossed")
MARKET_OPTIONS = ("seed", "rate", "drop_every", "stall_every", *FAULTS)
"""The ``dest`` of every flag :func:`add_market_options` adds."""


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
    p.add_argument(
        "--symbols",
        default=",".join(SIM_SYMBOLS),
        help="comma-separated symbols to simulate (default: %(default)s)",
    )
    add_market_options(p, rate=50.0, seed=0)
    p.add_argument("--ledger", metavar="FILE.jsonl", help="write trades, faults and final books")
    p.add_argument("--duration", type=float, metavar="S", help="trade for S seconds, then halt")
    p.add_argument("--grace", type=float, default=5.0, metavar="S", help="serve S s after halting")
    p.add_argument("--burst", type=int, metavar="N", help="throughput mode: pre-build N messages")


def add_market_options(
    parser: argparse.ArgumentParser, *, rate: float, seed: int, embedded: bool = False
) -> None:
    """The order-flow and fault flags of a simulator. ``embedded``: for a simulator started
    alongside a feed, where every flag defaults to None so a flag given for another source
    can be refused (:func:`embedded_sim` fills in the defaults, which the help shows)."""

    def default(value: object) -> object:
        return None if embedded else value

    group = (
        parser.add_argument_group(
            "embedded simulator", "for venue sim without --ws-url: the simulator started for it"
        )
        if embedded
        else parser
    )
    group.add_argument(
        "--seed", type=int, default=default(seed),
        help=f"seed of the order flow and the faults (default: {seed})",
    )  # fmt: skip
    group.add_argument(
        "--rate", type=float, default=default(rate), metavar="MSGS",
        help=f"messages per second per symbol (default: {rate:g})",
    )  # fmt: skip
    for name, what in (("drop", "close"), ("stall", "stall")):
        group.add_argument(
            f"--{name}-every", type=float, metavar="S",
            help=f"{what} a connection every S seconds (default: never)",
        )  # fmt: skip
    for name in FAULTS:
        group.add_argument(
            f"--{name}", type=float, default=default(0.0), metavar="P",
            help=f"probability per message of a {name} fault on one connection "
            "(default: 0)",
        )  # fmt: skip
    if embedded:
        group.add_argument(
            "--sim-symbols", metavar="A,B,...",
            help="the symbols it knows, of which it simulates those recorded "
            f"(default: {','.join(SIM_SYMBOLS)})",
        )  # fmt: skip


def market_options_given(args: argparse.Namespace) -> list[str]:
    """The embedded-simulator flags set on the command line, as they are spelled there."""
    given = [name for name in (*MARKET_OPTIONS, "sim_symbols") if getattr(args, name) is not None]
    return ["--" + name.replace("_", "-") for name in given]


def embedded_sim(
    args: argparse.Namespace, venue: str, symbols: list[str], *, rate: float, seed: int
) -> SimConfig | None:
    """The simulator to embed for a feed of ``venue`` (venue sim without ``--ws-url``), or
    None when the feed connects elsewhere; the flags of :func:`add_market_options`
    (``embedded=True``) are refused there rather than ignored."""
    embedded = venue == "sim" and args.ws_url is None
    if embedded and args.rest_url is not None:
        raise UsageError("--rest-url needs --ws-url (without both, an embedded simulator runs)")
    flags = market_options_given(args)
    if flags and not embedded:
        raise UsageError(
            f"{', '.join(flags)}: only for the embedded simulator (venue sim, no --ws-url)"
        )
    return _embedded_config(args, symbols, rate=rate, seed=seed) if embedded else None


def _embedded_config(
    args: argparse.Namespace, symbols: list[str], *, rate: float, seed: int
) -> SimConfig:
    """The config of a simulator embedded for a feed recording ``symbols``: the flags of
    :func:`add_market_options` (``embedded=True``), ``rate`` and ``seed`` where not given.

    It simulates just the recorded symbols, each of which must be one it knows
    (``--sim-symbols``, default :data:`SIM_SYMBOLS`): a typo is a :class:`UsageError`
    naming them, as with any venue, not a market invented for the typo.
    """
    known = SIM_SYMBOLS if args.sim_symbols is None else _symbols(args.sim_symbols)
    unknown = [s for s in dict.fromkeys(symbols) if s not in known]
    if unknown:
        raise UsageError(
            f"the embedded simulator has no symbol {', '.join(unknown)}: it knows "
            f"{', '.join(known)} (--sim-symbols {','.join((*known, *unknown))} adds others)"
        )
    return SimConfig(
        port=0,
        seed=seed if args.seed is None else args.seed,
        symbols=tuple(dict.fromkeys(symbols)),
        rate=rate if args.rate is None else args.rate,
        drop_every=args.drop_every,
        stall_every=args.stall_every,
        malformed=args.malformed or 0.0,
        gap=args.gap or 0.0,
        duplicate=args.duplicate or 0.0,
        crossed=args.crossed or 0.0,
    )


def _symbols(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The flags as a validated config; ``SimulatorError`` names what is wrong."""
    return SimConfig(
        port=args.port,
        seed=args.seed,
        symbols=_symbols(args.symbols),
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
    """Serve until ``--duration`` + ``--grace`` have passed or SIGINT/SIGTERM; exit 0, or 1
    if the simulator failed (its clock thread died)."""
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
    if server.thread_errors:
        print(
            f"sim: {server.thread_errors} thread errors, last: {server.last_thread_error}",
            file=sys.stderr,
        )
    if server.failure is not None:
        print(f"sim: failed: {server.failure}", file=sys.stderr)
        return 1
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
