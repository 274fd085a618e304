"""One DuckDB file per process: the connection, its writer thread, readers and Parquet export.

DuckDB lets one process own a file (its lock blocks every other process, even read-only), and
within that process a connection must not be shared across threads. So a :class:`Store` holds
the process's single connection to its file and hands every thread its own cursor: the
writer thread gets one, :meth:`Store.cursor` gives one to whoever asks, and :meth:`Store.sql`
uses a fresh one per call. Opening the same file again in the same process returns the same
Store, so re-running a notebook cell does not trip over the lock.

Other processes read the data through :func:`export_parquet` (hive-partitioned Parquet).
"""

from __future__ import annotations

import atexit
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar

import duckdb
import pandas as pd
import pyarrow as pa

from workbench.errors import BadStoreError, StoreError, UsageError
from workbench.store.check import check_store
from workbench.store.migrate import create_schema
from workbench.store.schema import ORDERED_TABLES, TABLES
from workbench.store.writer import MAX_QUEUED_ROWS, CommitCallback, StoreWriter

log = logging.getLogger(__name__)

DEFAULT_DB = Path("data") / "workbench.duckdb"
"""The one recording every command and the notebook use unless told otherwise (relative to
the current directory)."""

MEMORY_LIMIT = "64MB"
"""DuckDB's buffer pool cap. DuckDB keeps every block it has written or read cached until it
reaches its limit, 80% of RAM by default, so a recorder's memory grew with its recording
(~0.6 MB/s at 10,000 msgs/s); capped, the oldest blocks are evicted (re-read from the file when
a query needs them) and sorts, joins and aggregations beyond it spill to ``<file>.tmp``. Enough
for recording and imports; for heavy analysis raise it: ``store.sql("SET memory_limit='4GB'")``."""


@dataclass(frozen=True)
class Recorded:
    """Where a symbol's recording in a file stopped (see :meth:`Store.last_recorded`)."""

    last_recv_us: int
    """``recv_ts`` of its newest row, µs since the epoch."""
    last_trade_id: int | None
    """Its highest numeric trade id (None without trades or with opaque ids)."""


class Store:
    """The process's connection to one DuckDB file; create with :meth:`Store.open`."""

    _open: ClassVar[dict[Path, Store]] = {}
    _open_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path, connection: duckdb.DuckDBPyConnection, read_only: bool) -> None:
        self.path = path
        self.read_only = read_only
        self._connection = connection
        self._lock = threading.Lock()
        self._writer: StoreWriter | None = None
        self._closed = False

    @classmethod
    def open(cls, path: str | Path, *, read_only: bool = False, create: bool = True) -> Store:
        """Open (creating if needed) the store at ``path``, or return this process's open Store.

        An existing file is checked first (:func:`~workbench.store.check.check_store`): one
        that is not DuckDB, is truncated, is some other DuckDB database, or has workbench
        tables of another shape raises BadStoreError and is left untouched. ``create=False``
        (commands that read a recording) refuses a missing file or an empty database instead
        of making a new store. Raises StoreError if another process owns the file.
        """
        resolved = Path(path).expanduser().resolve()
        with cls._open_lock:
            existing = cls._open.get(resolved)
            if existing is not None:
                if existing.read_only != read_only:
                    mode = "read-only" if existing.read_only else "read-write"
                    raise StoreError(f"{resolved} is already open {mode} in this process")
                return existing
            store = cls(resolved, _connect(resolved, read_only, create), read_only)
            cls._open[resolved] = store
        return store

    @classmethod
    def opened(cls, path: str | Path) -> Store | None:
        """The Store this process has open at ``path``, if any."""
        with cls._open_lock:
            return cls._open.get(Path(path).expanduser().resolve())

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def writer(self) -> StoreWriter:
        """The running writer, started with default settings on first use."""
        with self._lock:
            if self._writer is None:
                self._writer = self._new_writer(0.05, None, MAX_QUEUED_ROWS)
            return self._writer

    def start_writer(
        self,
        *,
        commit_interval: float = 0.05,
        on_commit: CommitCallback | None = None,
        max_queued_rows: int = MAX_QUEUED_ROWS,
    ) -> StoreWriter:
        """Start the writer with non-default settings; it must not be running yet."""
        with self._lock:
            if self._writer is not None:
                raise UsageError(f"the writer of {self.path} is already running")
            self._writer = self._new_writer(commit_interval, on_commit, max_queued_rows)
            return self._writer

    def _new_writer(
        self,
        commit_interval: float,
        on_commit: CommitCallback | None,
        max_queued_rows: int,
    ) -> StoreWriter:
        self._check_open()
        if self.read_only:
            raise StoreError(f"{self.path} is open read-only; it has no writer")
        writer = StoreWriter(
            self._connection,
            commit_interval=commit_interval,
            on_commit=on_commit,
            first_ingest_seq=self._last_ingest_seq() + 1,
            max_queued_rows=max_queued_rows,
        )
        return writer.start()

    def _last_ingest_seq(self) -> int:
        highest = " UNION ALL ".join(
            f"SELECT max(ingest_seq) FROM {t.name}" for t in ORDERED_TABLES
        )
        with self.cursor() as cursor:
            ((last,),) = cursor.execute(f"SELECT max(m) FROM ({highest}) AS t(m)").fetchall()
        return int(last or 0)

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor for the calling thread; it sees every committed write.

        Close it when done (or use it as a context manager); :meth:`close` closes it anyway.
        """
        self._check_open()
        return self._connection.cursor()

    def sql(
        self, query: str, params: Sequence[Any] | Mapping[str, Any] | None = None
    ) -> pd.DataFrame:
        """Run ``query`` with ``params`` bound (``?`` or ``$name``) and return a DataFrame."""
        with self.cursor() as cursor:
            return cursor.execute(query, params).df()

    def table_counts(self) -> dict[str, int]:
        """Rows per data table, committed rows only."""
        query = " UNION ALL ".join(f"SELECT '{name}', count(*) FROM {name}" for name in TABLES)
        with self.cursor() as cursor:
            return {name: int(count) for name, count in cursor.execute(query).fetchall()}

    def last_recorded(self, exchange: str, symbols: Sequence[str]) -> dict[str, Recorded]:
        """Per symbol of ``exchange`` that has rows: when its last row was received and its
        highest numeric trade id, so a restarted feed can mark and backfill the outage."""
        self.flush()
        market = ("trades", "book_deltas", "book_snapshots", "quotes")
        times = " UNION ALL ".join(
            f"SELECT symbol, max(recv_ts) AS at FROM {t} WHERE exchange = $x AND "
            "list_contains($s, symbol) GROUP BY symbol"
            for t in market
        )
        query = (
            f"SELECT l.symbol, epoch_us(max(l.at)), (SELECT max(TRY_CAST(trade_id AS BIGINT)) "
            "FROM trades t WHERE t.exchange = $x AND t.symbol = l.symbol) "
            f"FROM ({times}) AS l GROUP BY l.symbol"
        )
        with self.cursor() as cursor:
            rows = cursor.execute(query, {"x": exchange, "s": list(symbols)}).fetchall()
        return {
            str(symbol): Recorded(int(at), None if trade is None else int(trade))
            for symbol, at, trade in rows
            if at is not None
        }

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until everything submitted so far is committed; a no-op without a writer."""
        with self._lock:
            writer = self._writer
        if writer is not None:
            writer.flush(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Stop the writer (committing what it holds), CHECKPOINT and close. Idempotent.

        Closes the file for every holder of this Store in the process, and every cursor it
        handed out. Raises StoreError if the writer could not commit everything.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            writer = self._writer
        with Store._open_lock:
            if Store._open.get(self.path) is self:
                del Store._open[self.path]
        error: StoreError | None = None
        if writer is not None:
            try:
                writer.stop(timeout)
            except StoreError as exc:
                error = exc
            if writer.alive:
                # Closing under a running INSERT would take the data with it; leave the
                # connection to process exit and say so.
                raise StoreError(f"{self.path}: writer still running, connection left open")
        try:
            if not self.read_only:
                self._connection.execute("CHECKPOINT")
        except duckdb.Error as exc:
            error = error or StoreError(f"CHECKPOINT of {self.path} failed: {exc}")
        finally:
            self._connection.close()
        if error is not None:
            raise error

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"{self.path} is closed")

    def __enter__(self) -> Store:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "read-only" if self.read_only else "open"
        return f"Store({str(self.path)!r}, {state})"


def _connect(path: Path, read_only: bool, create: bool) -> duckdb.DuckDBPyConnection:
    if not path.exists():
        if read_only or not create:
            why = "opened read-only" if read_only else "a recording is read from it"
            raise StoreError(f"{path} does not exist ({why}, so it is not created)")
        path.parent.mkdir(parents=True, exist_ok=True)
    elif not path.is_file():
        raise BadStoreError(f"{path} is not a file")
    else:
        # Checked read-only first, so a file we refuse is not touched (a read-write open
        # could replay and checkpoint its WAL, or start writing into a foreign database).
        checked = _duckdb_connect(path, read_only=True)
        try:
            check_store(path, checked, workbench_only=read_only or not create, read_only=read_only)
        except duckdb.Error as exc:
            checked.close()
            raise BadStoreError(f"{path} cannot be read as a workbench store: {exc}") from exc
        except BaseException:
            checked.close()
            raise
        if read_only:
            return checked
        checked.close()
    connection = _duckdb_connect(path, read_only=False)
    try:
        create_schema(connection)
        _warm_up(connection)
    except duckdb.Error as exc:
        connection.close()
        raise StoreError(f"{path} is not a workbench store: {exc}") from exc
    except StoreError:
        connection.close()
        raise
    return connection


def _duckdb_connect(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(path, read_only=read_only, config={"memory_limit": MEMORY_LIMIT})
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            raise StoreError(
                f"{path} is open in another process, which owns it (DuckDB allows one process "
                f"per file); stop that process, or read the Parquet export it writes when "
                f"recording with --export-parquet DIR. ({exc})"
            ) from exc
        if "not a valid DuckDB database" in str(exc):
            raise BadStoreError(
                f"{path} is not a DuckDB database; nothing in it was changed"
            ) from exc
        raise BadStoreError(f"cannot open {path}: {exc}") from exc
    except duckdb.Error as exc:
        raise BadStoreError(f"cannot open {path}: {exc}") from exc


def _warm_up(connection: duckdb.DuckDBPyConnection) -> None:
    """Pay the first-Arrow-insert import cost (~0.2-0.5 s holding the GIL) now, not in a feed.

    The first conversion of Python lists to Arrow and the first DuckDB scan of an Arrow table
    import pandas and pyarrow machinery; one tiny insert through the same path loads it.
    """
    table = TABLES["book_snapshots"]
    sample = pa.Table.from_arrays(
        [pa.array([None], type=c.arrow_type) for c in table.columns], schema=table.arrow_schema
    )
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE TEMP TABLE warm_up AS SELECT * FROM {table.name} LIMIT 0")
        cursor.register("warm_up_batch", sample)
        cursor.execute("INSERT INTO warm_up SELECT * FROM warm_up_batch")
        cursor.unregister("warm_up_batch")
        cursor.execute("DROP TABLE warm_up")


@atexit.register
def _close_all() -> None:
    """Commit and checkpoint stores left open at interpreter exit (the writer is a daemon)."""
    for store in list(Store._open.values()):
        try:
            store.close()
        except StoreError:
            log.exception("closing %s at exit failed", store.path)
