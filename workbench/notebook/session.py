"""What one kernel's ``%wb`` has opened: the Workbench, embedded simulators and live widgets.

The session belongs to the extension (one per shell). It opens the database lazily, on the
first command that needs it, so ``%load_ext workbench`` stays instant and ``%config
WorkbenchMagics.db`` can still be changed after loading. :meth:`Session.close` undoes
everything in dependency order — widgets (their pumps read feeds), feeds, the simulators
the feeds read from, the notebook's cursor, the database — and leaves the session empty
and reusable. ``%unload_ext``, a database switch and interpreter exit all go through it.

Every method runs on the kernel's main thread (magics and atexit callbacks do), so the
session needs no lock; the threads it starts belong to feeds, simulators and widget pumps,
each stopped and joined by its owner.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol, TypeVar

import duckdb

from workbench.errors import UsageError
from workbench.feeds.feed import Feed
from workbench.feeds.protocol import AnyFeed
from workbench.sim import SimConfig, SimServer
from workbench.workbench import Workbench


class Closeable(Protocol):
    def close(self) -> None: ...


W = TypeVar("W", bound=Closeable)


class Session:
    """The notebook's Workbench on ``db`` and everything started through the magics."""

    def __init__(self, db: str | Path) -> None:
        self.db = Path(db)
        self._workbench: Workbench | None = None
        self._cursor: duckdb.DuckDBPyConnection | None = None
        self._widgets: list[Closeable] = []
        self.attached: Path | None = None
        """The Parquet export ``%%wb sql`` reads instead of :attr:`db`, after ``%wb attach``."""

    # -- the database ---------------------------------------------------------------------
    @property
    def workbench(self) -> Workbench:
        """The Workbench on :attr:`db`, opened on first use."""
        if self._workbench is None:
            self._workbench = Workbench.open(self.db)
        return self._workbench

    @property
    def is_open(self) -> bool:
        return self._workbench is not None

    @property
    def cursor(self) -> duckdb.DuckDBPyConnection:
        """The cursor ``%%wb sql`` runs on: one per session, so temp tables, macros and
        ``SET`` variables created in one cell are there in the next, as in a SQL console."""
        if self._cursor is None:
            self._cursor = self.workbench.store.cursor()
        return self._cursor

    def attach(self, directory: Path) -> dict[str, int]:
        """Point ``%%wb sql`` at a Parquet export (another process's live recording): an
        in-memory DuckDB with one view per exported table. Rows per table."""
        if self._workbench is not None:
            raise UsageError(
                f"this kernel has {self.db} open; %wb attach reads another process's export "
                "instead: attach in a kernel that has not opened a database"
            )
        root = directory.expanduser().resolve()
        tables = sorted(
            p.name for p in root.glob("*") if p.is_dir() and next(p.rglob("*.parquet"), None)
        )
        if not tables:
            raise UsageError(
                f"{directory} holds no Parquet export (no <table>/**/*.parquet): write one "
                f"with workbench record ... --export-parquet {directory}"
            )
        con = duckdb.connect()
        rows = {}
        for name in tables:
            pattern = str(root / name / "**" / "*.parquet").replace("'", "''")
            con.execute(
                f'CREATE VIEW "{name}" AS SELECT * FROM '
                f"read_parquet('{pattern}', hive_partitioning = true)"
            )
            counted = con.execute(f'SELECT count(*) FROM "{name}"').fetchone()
            rows[name] = int(counted[0]) if counted else 0
        if self._cursor is not None:
            self._cursor.close()
        self._cursor, self.attached = con, root
        return rows

    # -- feeds ----------------------------------------------------------------------------
    def running_feeds(self) -> list[AnyFeed]:
        if self._workbench is None:
            return []
        return [feed for feed in self._workbench.feeds.values() if feed.running]

    def start_feed(
        self, venue: str, symbols: Sequence[str], *, sim: SimConfig | None, **options: Any
    ) -> Feed:
        """Start a feed; with ``sim``, first start an embedded simulator for it to record.

        The simulator belongs to the feed: stopping the feed stops it.
        """
        workbench = self.workbench  # open (and warm up) the store before any data flows
        if sim is None:
            return workbench.start_feed(venue, symbols, **options)
        return workbench.start_sim_feed(sim, symbols, **options)

    def simulator(self, feed: AnyFeed) -> SimServer | None:
        """The embedded simulator ``feed`` records from, if the session started one."""
        return None if self._workbench is None else self._workbench.simulator(feed.name)

    def stop_feed(self, name: str) -> AnyFeed:
        """Stop the feed (rows flushed to the writer), then the simulator it recorded."""
        feed = self.workbench.feed(name)
        self.workbench.stop_feed(name)
        return feed

    def feed_for(self, symbol: str, name: str | None = None) -> AnyFeed:
        """The feed a widget for ``symbol`` reads: the one named, or the only running feed
        that records the symbol."""
        if name is not None:
            feed = self.workbench.feed(name)
            if symbol not in feed.symbols:
                raise UsageError(
                    f"feed {name!r} does not record {symbol!r} (it has {feed.symbols})"
                )
            return feed
        running = self.running_feeds()
        matches = [feed for feed in running if symbol in feed.symbols]
        if len(matches) == 1:
            return matches[0]
        if matches:
            names = ", ".join(repr(feed.name) for feed in matches)
            raise UsageError(
                f"{symbol!r} is recorded by several feeds ({names}); pick one with --feed"
            )
        recorded = sorted({s for feed in running for s in feed.symbols})
        hint = f"running feeds record {', '.join(recorded)}" if recorded else "no feed is running"
        raise UsageError(
            f"no running feed records {symbol!r} ({hint}); start one: %wb feed start sim {symbol}"
        )

    # -- widgets --------------------------------------------------------------------------
    def add_widget(self, widget: W) -> W:
        """Keep ``widget`` so closing the session stops its pump."""
        self._widgets.append(widget)
        return widget

    # -- teardown -------------------------------------------------------------------------
    def close(self) -> None:
        """Close widgets, stop feeds and simulators, close the cursor and the database.

        Every step runs even if an earlier one fails (the first failure is re-raised at the
        end), so one broken widget cannot leave feed threads or the DuckDB lock behind.
        """
        workbench, cursor, widgets = self._workbench, self._cursor, self._widgets
        self._workbench, self._cursor, self._widgets = None, None, []
        self.attached = None
        with ExitStack() as stack:  # callbacks run last-in first-out
            if workbench is not None:
                stack.callback(workbench.close)
            if cursor is not None:
                stack.callback(cursor.close)
            if workbench is not None:
                stack.callback(workbench.stop_all)  # feeds, then their simulators
            for widget in widgets:
                stack.callback(widget.close)
