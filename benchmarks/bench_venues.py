"""Per-venue parse + apply cost of book deltas, against a naive baseline in the same run.

Each module in ``venue_samples/`` supplies realistic traffic for one venue: setup payloads
(instrument data, the snapshot) and n deltas valid in sequence after it. Three figures per
venue, all per message:

- ``parse+apply``: the venue's ``parse`` and applying its events to an ``OrderBook``
  (truncating fixed-depth books) — the issue's figure;
- ``+ verify``: the same plus checksum verification, for venues whose messages carry one
  (the recorder verifies every checksum, so this is what a Kraken message really costs);
- ``feed path``: the same messages through ``Feed.on_messages`` (sequencing, checks and the
  column batches for ``book_deltas``), i.e. everything the connection thread does per message;
- baseline: ``json.loads`` + float conversion + a dict per side re-sorted after every message
  to read the best prices (the tutorial recorder).

Target: parse+apply ≤ 3 µs per message for every venue. ``--venue kraken`` (repeatable) runs
only the samples named; such a partial run prints its figures but leaves the results file
(the record of a full run) as it was.
"""

from __future__ import annotations

import argparse
import importlib
import itertools
import json
import pkgutil
import sys
import time
from types import ModuleType
from typing import Any

import venue_samples
from common import line, report

from workbench.core.book import OrderBook
from workbench.events import BookDelta, BookSnapshot
from workbench.feeds.feed import Feed
from workbench.venues import get_venue
from workbench.venues.base import VenueProtocol

N = 50_000
ROUNDS = 5
"""Each figure is the best of this many rounds, taken in turn with the other figures' rounds
(ours, verify, feed path, baseline, ours, ...), so a burst of load from a neighbour on this
shared machine hits every figure alike and no figure's rounds all fall inside one burst."""
TARGET_US = 3.0


class NullSink:
    fault: str | None = None

    def __init__(self) -> None:
        self.ingest_seqs = itertools.count(1)

    def submit(self, table: str, columns: dict[str, Any]) -> None:
        pass

    def wait_for_room(self, timeout: float) -> bool:
        return True


def protocol_of(sample: ModuleType) -> type[VenueProtocol]:
    factory = getattr(sample, "protocol", None)
    return factory() if factory is not None else get_venue(sample.VENUE)


def prepared(sample: ModuleType, cls: type[VenueProtocol]) -> tuple[VenueProtocol, OrderBook]:
    venue = cls([sample.SYMBOL])
    book = OrderBook()
    setup, _ = sample.messages(1)
    for payload in setup:
        for event in venue.parse(payload, 0):
            if isinstance(event, BookSnapshot):
                book.apply_snapshot(event.bids, event.asks)
    rest = getattr(sample, "rest_snapshot", None)
    if rest is not None:
        snap = venue.parse_snapshot(rest(), sample.SYMBOL, 0)
        book.apply_snapshot(snap.bids, snap.asks)
    return venue, book


def parse_apply(
    sample: ModuleType, cls: type[VenueProtocol], deltas: list[bytes], *, verify: bool
) -> float:
    venue, book = prepared(sample, cls)
    parse = venue.parse
    set_bid, set_ask = book.set_bid, book.set_ask
    depth = cls.book_depth
    checksum = venue.checksum
    start = time.perf_counter()
    for payload in deltas:
        for event in parse(payload, 0):
            if isinstance(event, BookDelta):
                for price, size in event.bids:
                    set_bid(price, size)
                for price, size in event.asks:
                    set_ask(price, size)
                if depth is not None:
                    book.truncate(depth)
                if (
                    verify
                    and event.checksum is not None
                    and checksum(event.symbol, book) != event.checksum
                ):
                    raise AssertionError(f"{cls.name}: checksum mismatch in the sample")
    return (time.perf_counter() - start) / len(deltas) * 1e6


def feed_path(sample: ModuleType, cls: type[VenueProtocol], deltas: list[bytes]) -> float:
    feed = Feed(cls, [sample.SYMBOL], NullSink())
    feed.stream.on_connected(1)
    setup, _ = sample.messages(1)
    feed.stream.on_messages(1, setup, 0)
    rest = getattr(sample, "rest_snapshot", None)
    if rest is not None:
        with feed.locked():
            snap = feed.venue.parse_snapshot(rest(), sample.SYMBOL, 0)
            feed.state.symbols[sample.SYMBOL].sync.apply_snapshot(snap, None, 0.0)
    chunk = 64  # a 256 KiB read holds many frames: the connection hands them over together
    start = time.perf_counter()
    for i in range(0, len(deltas), chunk):
        feed.stream.on_messages(1, deltas[i : i + chunk], 0)
    elapsed = (time.perf_counter() - start) / len(deltas) * 1e6
    status = feed.status()
    if status.quarantined or status.gaps or status.checksums or not all(status.book_valid.values()):
        raise AssertionError(f"{cls.name}: the sample did not stay in sync: {status.summary()}")
    return elapsed


def naive(sample: ModuleType, deltas: list[bytes]) -> float:
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    start = time.perf_counter()
    for payload in deltas:
        message = json.loads(payload)
        new_bids, new_asks = sample.naive_levels(message)
        for side, levels in ((bids, new_bids), (asks, new_asks)):
            for price, size in levels:
                p, s = float(price), float(size)
                if s:
                    side[p] = s
                else:
                    side.pop(p, None)
        best = (sorted(bids, reverse=True)[:1], sorted(asks)[:1])
    del best
    return (time.perf_counter() - start) / len(deltas) * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--venue",
        action="append",
        metavar="SAMPLE",
        help="a module of venue_samples to run (repeatable; default: all)",
    )
    args = parser.parse_args()
    names = sorted(info.name for info in pkgutil.iter_modules(venue_samples.__path__))
    unknown = set(args.venue or ()) - set(names)
    if unknown:
        parser.error(f"no such sample: {', '.join(sorted(unknown))} (have: {', '.join(names)})")
    selected = [name for name in names if not args.venue or name in args.venue]
    figures: dict[str, Any] = {}
    missed = []
    for name in selected:
        sample = importlib.import_module(f"venue_samples.{name}")
        cls = protocol_of(sample)
        _, deltas = sample.messages(N)
        rounds: list[tuple[float, float, float, float]] = [
            (
                parse_apply(sample, cls, deltas, verify=False),
                parse_apply(sample, cls, deltas, verify=True),
                feed_path(sample, cls, deltas),
                naive(sample, deltas),
            )
            for _ in range(ROUNDS)
        ]
        ours, verified, full, base = (min(figure) for figure in zip(*rounds, strict=True))
        line(
            f"{cls.name:18} parse+apply",
            ours,
            "µs/msg",
            baseline=base,
            target=f"≤ {TARGET_US} µs",
            higher_is_better=False,
        )
        if cls.__dict__.get("checksum") is not None:
            line(f"{cls.name:18} + verify", verified, "µs/msg")
        line(f"{cls.name:18} feed path", full, "µs/msg")
        figures[cls.name] = {
            "parse_apply_us": ours,
            "with_checksum_us": verified,
            "feed_path_us": full,
            "baseline_us": base,
        }
        if ours > TARGET_US:
            missed.append(cls.name)
    if selected == names:
        report("venues", figures)
    if missed:
        print(f"over {TARGET_US} µs: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
