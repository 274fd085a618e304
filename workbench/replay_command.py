"""``workbench replay DB``: what a recording holds, read back in apply order, or the recording
played through a replay feed into another file (``--into OUT [--speed X]``)."""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from workbench.console import commit_printer, wait_until
from workbench.errors import UsageError
from workbench.events import APPLIED_KINDS, BookChange
from workbench.feeds.replay_feed import ReplayFeed
from workbench.replay import replay
from workbench.store import DEFAULT_DB, Store

EXIT_CODES = (
    "exit codes: 0 done (also after SIGINT/SIGTERM stopped a playback: what was played is "
    "kept); 1 runtime failure (the reason on stderr); 2 usage mistake"
)


def _positive(text: str) -> float:
    value = float(text)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text}")
    return value


def _listed(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replay",
        help="summarize a recording, or play it into another file",
        description="Without --into: read DB back in the order its feeds applied the events "
        "(what workbench.replay() yields) and print, per symbol, the events by kind, the "
        "time span and the book at the end. With --into OUT: play DB through a replay feed "
        "into OUT (created if missing), at --speed times the recorded pace or as fast as "
        "possible, and print what was written.",
        epilog=EXIT_CODES,
    )
    p.add_argument("db", nargs="?", type=Path, default=DEFAULT_DB, help="the recording")
    p.add_argument("--exchange", help="only this exchange (needed with --into when DB has several)")
    p.add_argument("--symbols", type=_listed, metavar="A,B", help="only these symbols")
    p.add_argument("--start", metavar="TIME", help="from this receive time (ISO, UTC)")
    p.add_argument("--end", metavar="TIME", help="until this receive time, exclusive")
    p.add_argument(
        "--kinds",
        type=_listed,
        metavar="K,K",
        help=f"summary: only these event kinds, of {','.join(APPLIED_KINDS)}",
    )
    p.add_argument("--into", type=Path, metavar="OUT", help="play into this DuckDB file")
    p.add_argument(
        "--speed",
        type=_positive,
        metavar="X",
        help="with --into: X times the recorded pace (default: as fast as possible)",
    )
    p.add_argument(
        "--progress", action="store_true", help="with --into: print committed row counts"
    )


def run(args: argparse.Namespace) -> int:
    if not args.db.is_file():
        raise UsageError(f"no recording at {args.db}")
    if args.into is None:
        for flag, given in (("--speed", args.speed is not None), ("--progress", args.progress)):
            if given:
                raise UsageError(f"{flag} is for playing into a file: add --into OUT")
        return _summarize(args)
    if args.kinds is not None:
        raise UsageError("--kinds chooses what the summary counts; --into plays every kind")

    if args.into.exists() and args.into.resolve() == args.db.resolve():
        raise UsageError("--into must be another file than the recording")
    return _play(args)


@dataclass
class _Market:
    kinds: Counter[str] = field(default_factory=Counter)
    resets: int = 0


def _summarize(args: argparse.Namespace) -> int:
    began = time.perf_counter()
    recording = replay(
        args.db,
        exchange=args.exchange,
        symbols=args.symbols,
        start=args.start,
        end=args.end,
        kinds=args.kinds,
        books=True,
    )
    markets: dict[tuple[str, str | None], _Market] = {}
    incidents: Counter[str] = Counter()
    first = last = None
    count = 0
    for applied in recording:
        event = applied.event
        market = markets.get((event.exchange, event.symbol))
        if market is None:
            market = markets[(event.exchange, event.symbol)] = _Market()
        market.kinds[applied.kind] += 1
        if isinstance(event, BookChange) and event.reset:
            market.resets += 1
        elif applied.kind == "quality":
            incidents[event.kind] += 1  # type: ignore[union-attr]
        at = applied.time_us
        first = at if first is None else min(first, at)
        last = at if last is None else max(last, at)
        count += 1
    seconds = time.perf_counter() - began
    if first is None or last is None:
        print(f"{args.db}: no events" + (" match" if _filtered(args) else ""))
        return 0
    span = f"{_when(first)} to {_when(last)} UTC ({(last - first) / 1e6:.1f} s)"
    print(f"{args.db}: {count:,} events, {span}")
    for (exchange, symbol), market in sorted(markets.items(), key=lambda kv: str(kv[0])):
        counts = ", ".join(f"{k} {n:,}" for k, n in sorted(market.kinds.items()))
        resets = f" ({market.resets} book resets)" if market.resets else ""
        book = recording.books.get((exchange, symbol)) if symbol is not None else None
        at_end = ""
        if book is not None:
            bid, ask = book.best_bid_price, book.best_ask_price
            at_end = f"; book at the end {bid} / {ask}" + ("" if book.valid else " (never reset)")
        print(f"  {exchange} {symbol or '(feed-wide)'}: {counts}{resets}{at_end}")
    if incidents:
        print("  quality: " + ", ".join(f"{k} {n}" for k, n in sorted(incidents.items())))
    print(f"  read back at {count / max(seconds, 1e-9):,.0f} events/s")
    return 0


def _filtered(args: argparse.Namespace) -> bool:
    return any(
        v is not None for v in (args.exchange, args.symbols, args.start, args.end, args.kinds)
    )


def _when(us: int) -> str:
    return f"{pd.Timestamp(us, unit='us'):%Y-%m-%d %H:%M:%S.%f}"


def _play(args: argparse.Namespace) -> int:
    with Store.open(args.into) as out:
        out.start_writer(on_commit=commit_printer() if args.progress else None)
        feed = ReplayFeed(
            args.db,
            out.writer,
            speed=args.speed,
            exchange=args.exchange,
            symbols=args.symbols,
            start=args.start,
            end=args.end,
        )
        pace = f"at {args.speed:g}x" if args.speed else "as fast as possible"

        def start() -> None:
            feed.start()
            print(f"replaying {args.db} into {args.into} {pace}", flush=True)

        wait_until(None, until=lambda: feed.finished.is_set() or not feed.running, ready=start)
        feed.stop(timeout=5.0)
        out.flush()
    status = feed.status()
    if status.failed:
        print(f"workbench replay: {status.failed}", file=sys.stderr)
        return 1
    ending = "" if feed.finished.is_set() else " (stopped early)"
    print(
        f"{status.exchange} {', '.join(status.symbols)}: {status.messages:,} events "
        f"({status.trades:,} trades, {status.quotes:,} quotes) into {args.into}{ending}"
    )
    return 0
