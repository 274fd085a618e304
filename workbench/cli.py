"""``workbench`` on the command line: the headless twin of everything a notebook does.

Exit codes: 0 success (also after SIGINT/SIGTERM once everything is flushed), 1 a runtime
failure the operator must look at (network, database), 2 a usage mistake (also a --db file
that is not a workbench store this version can write: refused untouched), 3 (``workbench
record``) a feed whose subscription the venue never acknowledged: a wrong URL or path, a
refused port, a server that never completes the handshake, a rejected symbol. Recording
nothing is not success.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

from workbench import demo, replay_command
from workbench.analysis import bars, csv_import
from workbench.analysis import clean as clean_command
from workbench.backtest import command as backtest_command
from workbench.backtest import sweep_command
from workbench.console import commit_printer, wait_until
from workbench.errors import BadStoreError, SimulatorError, UsageError, WorkbenchError
from workbench.feeds.feed import Feed
from workbench.runner import promote as promote_command
from workbench.sim import command as sim_command
from workbench.sim import synth_command
from workbench.store import DEFAULT_DB, PeriodicExport, Store, export_parquet
from workbench.validation import command as validate_command
from workbench.venues import VENUES, VenueProtocol, get_venue
from workbench.venues.vendor import load_mapping, vendor_protocol
from workbench.workbench import Workbench

VENDOR = "vendor"
"""The pseudo-venue name of a generic vendor tick feed configured by ``--mapping``."""
EXIT_NOT_SUBSCRIBED = 3
"""``workbench record``: some symbol's subscription was never acknowledged."""
CONNECT_TIMEOUT = 15.0
HANDSHAKE_TIMEOUT = 5.0
EXPORT_EVERY = 10.0
"""The most one connection attempt's handshake may take (less if ``--connect-timeout`` is short)."""
EXIT_CODES = (
    "exit codes: 0 recorded; 1 runtime failure (network, database; the reason on stderr); "
    "2 usage mistake, or a --db that is not a workbench store (refused untouched); "
    "3 never subscribed: the venue never acknowledged a symbol's subscription (refused, "
    "wrong URL or path, no answer; the reason on stderr); with none "
    "acknowledged the recording stops after --connect-timeout"
)


def _positive(text: str) -> float:
    value = float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _add_record(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "record",
        help="record trades and L2 books from a venue into DuckDB",
        description="Record until --duration elapses or SIGINT/SIGTERM, then flush and "
        "print a per-feed summary. Connection errors are printed on stderr while it retries.",
        epilog=EXIT_CODES,
    )
    venues = ", ".join(sorted(v for v in VENUES if v != VENDOR))
    p.add_argument("exchange", help=f"venue: {venues}, or {VENDOR} (with --mapping)")
    p.add_argument("symbols", nargs="+", metavar="SYMBOL", help="venue symbols, e.g. BTC-USD")
    p.add_argument("--db", type=Path, default=DEFAULT_DB, help="DuckDB file")
    p.add_argument(
        "--mapping",
        type=Path,
        metavar="FILE",
        help="vendor: the JSON/TOML mapping that describes the tick feed (data/vendors/)",
    )
    p.add_argument("--ws-url", help="override the venue's WebSocket URL")
    p.add_argument("--rest-url", help="override the venue's REST base URL")
    p.add_argument("--duration", type=_positive, help="seconds to record (default: until signal)")
    p.add_argument(
        "--connect-timeout",
        type=_positive,
        default=CONNECT_TIMEOUT,
        metavar="SECONDS",
        help="stop and exit 3 if the venue has acknowledged no subscription within SECONDS "
        f"(default {CONNECT_TIMEOUT:g}); each connection attempt's handshake gets at most "
        f"{HANDSHAKE_TIMEOUT:g} s, or half of SECONDS if that is shorter",
    )
    p.add_argument(
        "--depth",
        type=int,
        metavar="N",
        help="book levels per side: the depth subscribed where the venue offers a choice "
        f"({_depth_choices()}; else exit 2), and stored in book_snapshots (default 20)",
    )
    p.add_argument("--redundant", action="store_true", help="a second connection, deduplicated")
    p.add_argument("--no-backfill", action="store_true", help="no REST trade backfill")
    p.add_argument(
        "--poll",
        type=_positive,
        metavar="SECONDS",
        help="no WebSocket: poll the REST book and new trades every SECONDS",
    )
    p.add_argument(
        "--progress", action="store_true", help="print committed row counts after every commit"
    )
    p.add_argument(
        "--export-parquet",
        type=Path,
        metavar="DIR",
        help="while recording, append what was committed to DIR as Hive-partitioned Parquet "
        "every --export-every seconds (and once at the end): how another process reads a "
        "live recording",
    )
    p.add_argument(
        "--export-every",
        type=_positive,
        default=EXPORT_EVERY,
        metavar="SECONDS",
        help="seconds between --export-parquet runs",
    )
    sim_command.add_market_options(
        p, rate=sim_command.EMBEDDED_RATE, seed=sim_command.EMBEDDED_SEED, embedded=True
    )


def _record(args: argparse.Namespace) -> int:
    if args.depth is not None and args.depth < 1:
        raise UsageError(f"--depth must be at least 1, got {args.depth}")
    # Before opening: a typo must not create or lock a file.
    venue = _venue(args.exchange, args.mapping)
    if args.depth is not None:
        venue.at_depth(args.depth)
    sim = sim_command.embedded_sim(
        args,
        venue.name,
        args.symbols,
        rate=sim_command.EMBEDDED_RATE,
        seed=sim_command.EMBEDDED_SEED,
    )
    wb = Workbench.open(args.db, on_commit=commit_printer() if args.progress else None)
    exporter = None
    try:
        if args.export_parquet is not None:
            exporter = PeriodicExport(wb.store, args.export_parquet, args.export_every).start()
            print(f"exporting to {args.export_parquet} every {args.export_every:g}s", flush=True)
        options = dict(
            depth=args.depth,
            redundant=args.redundant,
            backfill=not args.no_backfill,
            poll_interval=args.poll,
            handshake_timeout=min(HANDSHAKE_TIMEOUT, args.connect_timeout / 2),
        )
        if sim is None:
            feed = wb.start_feed(
                venue, args.symbols, ws_url=args.ws_url, rest_url=args.rest_url, **options
            )
            source = ""
        else:
            feed = wb.start_sim_feed(sim, args.symbols, **options)
            source = f" from an embedded simulator on {feed.ws_url}"
        watch = _SubscriptionWatch(feed, args.connect_timeout)

        def announce() -> None:  # once SIGINT/SIGTERM are caught: a script may signal now
            print(f"recording {feed.name}{source} into {args.db}", flush=True)

        wait_until(args.duration, until=watch.done, ready=announce)
        watch.done()  # a signal can end the wait between polls: judge the latest status
        wb.stop_all()
        wb.flush()
        if exporter is not None:
            exporter.stop()  # its last run exports everything committed
        statuses = wb.status()
        counts = wb.store.table_counts()
        writer = wb.store.writer.stats()
    finally:
        if exporter is not None:
            exporter.stop_thread()
        wb.close()
    # Printed after close() has joined the writer, whose last --progress line would
    # otherwise interleave with these.
    for status in statuses:
        print(status.summary())
    print("rows: " + ", ".join(f"{t}={n}" for t, n in counts.items()))
    print(
        f"writer: {writer.commits} commits, {sum(writer.duplicates.values())} duplicate rows "
        f"ignored, {sum(writer.rejected.values())} rejected, held the feed back "
        f"{writer.waits} times"
    )
    if exporter is not None:
        print(f"exported {exporter.rows} rows to {args.export_parquet} in {exporter.runs} runs")
    failures = [f"{s.name}: {s.failed}" for s in statuses if s.failed]
    if exporter is not None and exporter.last_error:
        failures.append(f"parquet export: {exporter.last_error}")
    for failure in failures:
        print(f"workbench record: feed failed: {failure}", file=sys.stderr)
    if failures:
        return 1
    if watch.status.unsubscribed():
        print(f"workbench record: {watch.reason()}", file=sys.stderr)
        return EXIT_NOT_SUBSCRIBED
    return 0


class _SubscriptionWatch:
    """Polled by ``_wait``: prints each distinct connection error and refusal once on stderr
    while the feed retries, and ends the recording when it has failed, when every symbol was
    refused, or when ``timeout`` passed without any acknowledged subscription. A feed whose
    subscriptions are partly acknowledged keeps recording; the rest are reported at the end."""

    def __init__(self, feed: Feed, timeout: float) -> None:
        self.feed = feed
        self.timeout = timeout
        self.started = time.monotonic()
        self.waited = 0.0
        self.status = feed.status()
        self._said: set[str] = set()
        self._warned = False

    def done(self) -> bool:
        status = self.status = self.feed.status()
        self.waited = time.monotonic() - self.started
        if status.connection_error:
            self._say(f"{status.connection_error} (retrying)")
        for symbol, reason in status.rejected.items():
            self._say(f"subscription of {symbol} rejected: {reason}")
        never = status.unsubscribed()
        if not status.running or not never:
            return not status.running
        if not status.subscribed_once:
            return self.waited >= self.timeout or all(s in status.rejected for s in never)
        if self.waited >= self.timeout and not self._warned:
            self._warned = True
            self._say(f"still not subscribed after {self.timeout:g}s: {', '.join(never)}")
        return False

    def reason(self) -> str:
        """One line: which symbols were never acknowledged, and the best known why."""
        status = self.status
        never = status.unsubscribed()
        head = f"never subscribed to {', '.join(never)} ({status.exchange})"
        refused = [status.rejected[s] for s in never if s in status.rejected]
        if refused:
            return f"{head}: rejected: {refused[0]}"
        head += f" within {self.waited:.1f}s"
        if status.connection_error:
            return f"{head}: {status.connection_error}"
        url = self.feed.ws_url if self.feed.poll_interval is None else "its REST URL"
        if status.connections:
            return f"{head}: connected to {url}, but the venue acknowledged no subscription"
        return f"{head}: no connection to {url} completed (connect or handshake pending)"

    def _say(self, message: str) -> None:
        if message not in self._said:
            self._said.add(message)
            print(f"workbench record: {self.feed.name}: {message}", file=sys.stderr, flush=True)


def _venue(exchange: str, mapping: Path | None) -> type[VenueProtocol]:
    if exchange == VENDOR:
        if mapping is None:
            raise UsageError("vendor needs --mapping FILE (see data/vendors/README.md)")
        return vendor_protocol(load_mapping(mapping))
    if mapping is not None:
        raise UsageError(f"--mapping is for vendor feeds, not {exchange}")
    return get_venue(exchange)


def _depth_choices() -> str:
    return "; ".join(
        f"{name} {'/'.join(map(str, cls.book_depths))}"
        for name, cls in sorted(VENUES.items())
        if cls.book_depths
    )


class DefaultsHelpFormatter(argparse.HelpFormatter):
    """Every option's help ends with its default, unless the text already says it in words
    ("default: never") or there is none to show (None, a flag that is off)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        if (
            "default" in text
            or not action.option_strings
            or default is None
            or default is False
            or default == []
            or default == argparse.SUPPRESS
        ):
            return text
        if isinstance(default, timedelta):
            shown = f"{default.total_seconds():g}s"
        elif isinstance(default, list | tuple):
            shown = ",".join(map(str, default))
        else:
            shown = str(default)
        return f"{text} (default: {shown})".replace("%", "%%")


def _add_export(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "export",
        help="append a recording's new rows to a Hive-partitioned Parquet directory",
        description="Append the rows committed since the last export of DIR, partitioned "
        "exchange=/symbol=/date=, for DuckDB, pandas or Spark in any process. A file that "
        "a recorder holds cannot be opened here: record with --export-parquet instead.",
    )
    p.add_argument("--parquet", type=Path, required=True, metavar="DIR", help="export directory")
    p.add_argument("--db", type=Path, default=DEFAULT_DB, help="DuckDB file")


def _export(args: argparse.Namespace) -> int:
    with Store.open(args.db, create=False) as store:
        written = export_parquet(store, args.parquet)
    listed = ", ".join(f"{t}={n}" for t, n in written.items() if n)
    print(f"exported to {args.parquet}: {listed or 'nothing new'}")
    return 0


def _add_migrate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "migrate",
        help="bring a recording of an older schema version up to this workbench's",
        description="Migrate the file in one transaction, keeping every row (any command "
        "that writes to a file does the same first; read-only opens refuse an older file).",
    )
    p.add_argument("--db", type=Path, default=DEFAULT_DB, help="DuckDB file")


def _migrate(args: argparse.Namespace) -> int:
    with Store.open(args.db, create=False) as store:
        history = store.sql("SELECT version, created_at FROM schema_info ORDER BY version")
    first, last = history.iloc[0], history.iloc[-1]
    if len(history) == 1:
        print(f"{args.db}: schema version {last.version}, nothing to migrate")
    else:
        print(
            f"{args.db}: schema version {last.version} (created as version {first.version}, "
            f"migrated {last.created_at:%Y-%m-%d %H:%M:%S} UTC)"
        )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="workbench", description="Research workbench for quant traders."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_record(sub)
    sim_command.add_parser(sub)
    demo.add_parser(sub)
    bars.add_parser(sub)
    csv_import.add_parser(sub)
    clean_command.add_parser(sub)
    _add_export(sub)
    _add_migrate(sub)
    replay_command.add_parser(sub)
    backtest_command.add_parser(sub)
    sweep_command.add_parser(sub)
    synth_command.add_parser(sub)
    validate_command.add_parser(sub)
    promote_command.add_parser(sub)
    for command in sub.choices.values():
        command.formatter_class = DefaultsHelpFormatter
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {
        "record": _record,
        "sim": sim_command.run,
        "demo": demo.run,
        "resample": bars.run,
        "import-csv": csv_import.run,
        "clean": clean_command.run,
        "export": _export,
        "migrate": _migrate,
        "replay": replay_command.run,
        "backtest": backtest_command.run,
        "sweep": sweep_command.run,
        "synth": synth_command.run,
        "validate": validate_command.run,
        "promote": promote_command.run,
    }
    try:
        return handlers[args.command](args)
    except (UsageError, SimulatorError, BadStoreError) as exc:
        print(f"workbench {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except WorkbenchError as exc:
        print(f"workbench {args.command}: {exc}", file=sys.stderr)
        return 1
