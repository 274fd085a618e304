"""The Python API a notebook or script uses: one store, the feeds recording into it.

    wb = workbench.open("data/workbench.duckdb")
    wb.start_feed("sim", ["BTC-USD"], ws_url="ws://127.0.0.1:8765/ws")
    wb.status()                      # list of FeedStatus
    wb.sql("SELECT count(*) FROM trades")
    wb.close()                       # stops every feed, flushes, closes the database

Magics, widgets and the CLI are thin layers over this class.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from workbench.analysis.bars import update_bars
from workbench.analysis.clean import clean_table
from workbench.core.clean import CleanConfig, CleanReport
from workbench.core.intervals import parse_interval
from workbench.errors import UsageError
from workbench.feeds.feed import Feed
from workbench.feeds.protocol import AnyFeed
from workbench.feeds.replay_feed import ReplayFeed
from workbench.feeds.status import FeedStatus
from workbench.feeds.subscription import QUEUE_SIZE, Subscription, Target
from workbench.sim import SimConfig, SimServer
from workbench.store.store import DEFAULT_DB, Store
from workbench.store.writer import CommitCallback
from workbench.venues.base import VenueProtocol


class Workbench:
    def __init__(self, store: Store) -> None:
        self.store = store
        self._feeds: dict[str, AnyFeed] = {}
        self._sims: dict[str, SimServer] = {}  # feed name → the embedded simulator it records
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls, db: str | Path = DEFAULT_DB, *, on_commit: CommitCallback | None = None
    ) -> Workbench:
        """Open (creating if needed) the DuckDB file this process will own."""
        store = Store.open(db)
        if on_commit is not None:
            store.start_writer(on_commit=on_commit)
        return cls(store)

    # -- feeds ----------------------------------------------------------------------------
    def start_feed(
        self,
        venue: str | type[VenueProtocol],
        symbols: Sequence[str],
        *,
        name: str | None = None,
        **options: Any,
    ) -> Feed:
        """Start recording ``symbols`` from ``venue`` (a registered name, or a protocol class
        such as a configured vendor feed); options go to :class:`Feed`."""
        feed = Feed(venue, symbols, self.store.writer, name=name, **options)
        self._register(feed)
        # Recording again into a file that holds these symbols: the time since is an outage.
        for symbol, last in self.store.last_recorded(feed.exchange, feed.symbols).items():
            feed.resume(symbol, last.last_recv_us, last.last_trade_id)
        return feed.start()

    def start_replay_feed(
        self,
        path: str | Path,
        *,
        speed: float | None = None,
        symbols: Sequence[str] | None = None,
        name: str | None = None,
        **options: Any,
    ) -> ReplayFeed:
        """Play recording ``path`` through a feed, into this workbench's file and to its
        widgets and subscribers (what ``%wb feed start replay:PATH`` does): ``speed`` times
        the recorded pace, as fast as possible without it; options go to
        :class:`~workbench.feeds.replay_feed.ReplayFeed`."""
        source = Path(path).expanduser()
        if source.exists() and source.resolve() == self.store.path.resolve():
            raise UsageError(
                f"{source} is this workbench's own file: replay another recording into it"
            )
        feed = ReplayFeed(
            source, self.store.writer, speed=speed, symbols=symbols, name=name, **options
        )
        self._register(feed)
        return feed.start()

    def start_sim_feed(
        self, sim: SimConfig, symbols: Sequence[str], *, name: str | None = None, **options: Any
    ) -> Feed:
        """Start an embedded simulator serving ``sim`` and a feed recording ``symbols`` from
        it (what ``%wb feed start sim`` and ``workbench record sim`` do without ``--ws-url``).

        The simulator belongs to the feed: :meth:`stop_feed`, :meth:`stop_all` and
        :meth:`close` stop it after the feed.
        """
        server = SimServer(sim)
        server.start()
        try:
            feed = self.start_feed(
                "sim", symbols, ws_url=server.ws_url, rest_url=server.rest_url, name=name, **options
            )
        except BaseException:
            server.stop()
            raise
        with self._lock:
            previous = self._sims.pop(feed.name, None)  # of a feed of that name that failed
            self._sims[feed.name] = server
        if previous is not None:
            previous.stop()
        return feed

    def _register(self, feed: AnyFeed) -> None:
        with self._lock:
            if feed.name in self._feeds and self._feeds[feed.name].running:
                raise UsageError(f"a feed named {feed.name!r} is already running; stop it first")
            self._feeds[feed.name] = feed

    def simulator(self, name: str) -> SimServer | None:
        """The embedded simulator feed ``name`` records from, if :meth:`start_sim_feed`
        started one that is still running."""
        with self._lock:
            return self._sims.get(name)

    def feed(self, name: str) -> AnyFeed:
        try:
            return self._feeds[name]
        except KeyError:
            known = ", ".join(self._feeds) or "none"
            raise UsageError(f"no feed named {name!r} (feeds: {known})") from None

    @property
    def feeds(self) -> dict[str, AnyFeed]:
        with self._lock:
            return dict(self._feeds)

    def subscribe(
        self,
        target: Target,
        *,
        feed: str | None = None,
        kinds: Sequence[str] | None = None,
        symbols: Sequence[str] | None = None,
        maxsize: int = QUEUE_SIZE,
    ) -> Subscription:
        """Receive the applied events of feed ``feed`` (may be omitted while exactly one feed
        runs) in a thread of their own; see :meth:`Feed.subscribe`. Events from the moment of
        subscribing on: to see a session from its first event, subscribe to the Feed before
        its ``start()``."""
        if feed is None:
            running = [f for f in self._feed_list() if f.running]
            if len(running) != 1:
                names = ", ".join(f.name for f in running) or "none"
                raise UsageError(f"name the feed to subscribe to (running feeds: {names})")
            chosen = running[0]
        else:
            chosen = self.feed(feed)
        return chosen.subscribe(target, kinds=kinds, symbols=symbols, maxsize=maxsize)

    def stop_feed(self, name: str, timeout: float = 1.0) -> None:
        """Stop the feed (its rows handed to the writer), then its embedded simulator."""
        self.feed(name).stop(timeout)
        with self._lock:
            sim = self._sims.pop(name, None)
        if sim is not None:
            sim.stop()

    def stop_all(self, timeout: float = 1.0) -> None:
        for feed in self._feed_list():
            feed.stop(timeout)
        with self._lock:
            sims, self._sims = list(self._sims.values()), {}
        for sim in sims:
            sim.stop()

    def status(self) -> list[FeedStatus]:
        return [feed.status() for feed in self._feed_list()]

    def _feed_list(self) -> list[AnyFeed]:
        # widgets call status() from their pump threads while the kernel may start a feed
        with self._lock:
            return list(self._feeds.values())

    # -- data -----------------------------------------------------------------------------
    def sql(self, query: str, params: Sequence[Any] | dict[str, Any] | None = None) -> pd.DataFrame:
        """Run a query on its own cursor; values go in ``params``, never into the text."""
        return self.store.sql(query, params)

    def clean(
        self, kind: str = "trades", config: CleanConfig | None = None, **options: Any
    ) -> CleanReport:
        """Clean what was recorded in table ``kind`` (raw rows stay untouched): writes
        ``clean_<kind>``, ``clean_flags`` and ``clean_windows``; options go to
        :func:`~workbench.analysis.clean.clean_table`."""
        self.flush()
        return clean_table(self.store, kind, config, **options)

    def update_bars(self, interval: str, **options: Any) -> int:
        """Bring the ``bars`` table at ``interval`` up to date from the recorded trades (only
        the tail is recomputed); options go to :func:`~workbench.analysis.bars.update_bars`."""
        self.flush()
        return update_bars(self.store, interval, **options)

    def bars(self, symbol: str, interval: str, *, exchange: str | None = None) -> pd.DataFrame:
        """The stored bars of one symbol, oldest first (call :meth:`update_bars` first)."""
        name = parse_interval(interval).name
        return self.sql(
            "SELECT * FROM bars WHERE symbol = ? AND interval = ? "
            "AND (? IS NULL OR exchange = ?) ORDER BY exchange, ts",
            [symbol, name, exchange, exchange],
        )

    def flush(self, timeout: float = 5.0) -> None:
        """Block until every row handed over so far is committed."""
        self.store.flush(timeout)

    def close(self, timeout: float = 5.0) -> None:
        self.stop_all()
        self.store.close(timeout)

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open(db: str | Path = DEFAULT_DB, *, on_commit: CommitCallback | None = None) -> Workbench:
    """Open a workbench on ``db``: see :class:`Workbench`."""
    return Workbench.open(db, on_commit=on_commit)
