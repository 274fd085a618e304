"""The one thread that writes to DuckDB: columnar batches in, one transaction per cycle out.

Feed threads must never wait on the database, so :meth:`StoreWriter.submit` only checks the
batch's shape (per column, never per row) and appends it to a queue under a lock. The writer
thread wakes every ``commit_interval``, drains the queue, converts each submission to an Arrow
table, concatenates them per table and inserts each table with a single ``INSERT ... SELECT``
from the registered Arrow data, all in ONE transaction. Row-at-a-time ``execute`` costs
~1000x more per row (see ``benchmarks/bench_store.py``). A backlog is committed in slices of
about ``commit_interval`` worth of conversion, so commits keep their pace under load.

Memory is bounded by backpressure, not by dropping rows: while more than ``max_queued_rows``
rows wait for the writer thread, :meth:`StoreWriter.wait_for_room` holds a producer back (a
feed's connection thread, outside its lock, so the kernel's socket buffer and then the
venue slow down). ``submit`` itself never waits.

Write-failure policy (the writer thread never dies of a bad batch):

- A submission whose values do not convert to the table's Arrow schema (a string in a DOUBLE
  column, ...) can never succeed: it is rejected at once, alone.
- If DuckDB refuses the cycle's transaction, it is rolled back and every submission is retried
  in its own transaction. A submission that then fails on a constraint or a conversion while
  others succeed is caused by its data and is rejected. Any other failure (table dropped or
  renamed away, disk full) is the database's: the rows are kept, in memory, and retried
  together with newer submissions after a backoff that grows from ``commit_interval`` to 1 s,
  and :attr:`StoreWriter.fault` says why until a commit succeeds again (a feed stops on it
  rather than keep producing rows that cannot be stored). ``flush`` raises
  when its timeout expires with the error as cause; ``stop`` gives the rows up and reports
  them.
- Rejected rows are counted in :attr:`WriterStats.rejected`, logged, and the next
  :meth:`StoreWriter.flush` (or :meth:`StoreWriter.stop`) raises :class:`StoreError` naming
  them, once. Nothing is dropped silently.

Shape errors (unknown table, missing or extra columns, unequal lengths) are the caller's bug
and raise :class:`UsageError` from ``submit`` itself, where the traceback is useful.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import duckdb
import numpy.typing as npt
import pyarrow as pa

from workbench.errors import StoreError, UsageError
from workbench.store.schema import TABLES, Table
from workbench.threads import SupervisedThread, ThreadError

log = logging.getLogger(__name__)

ColumnData: TypeAlias = Sequence[Any] | npt.NDArray[Any] | pa.Array | pa.ChunkedArray
"""One column of a submission: a list, a NumPy array or an Arrow array."""

CommitCallback: TypeAlias = Callable[[dict[str, int]], None]
"""Called in the writer thread after each commit with the rows stored per table."""

_MAX_BACKOFF = 1.0
MAX_QUEUED_ROWS = 100_000
"""Rows waiting for the writer thread beyond which producers are held back (see above): a
few hundred ms of a burst, a few tens of MB as Python lists."""
_CHUNK_ROWS = 4_096  # rows converted between GIL yields; see _to_arrow


@dataclass(frozen=True)
class WriterStats:
    """A consistent snapshot of what the writer has done, for status lines and tests."""

    rows: dict[str, int]
    """Rows stored per table (duplicates ignored by a UNIQUE constraint not counted)."""
    duplicates: dict[str, int]
    """Rows per table that a UNIQUE constraint ignored because they were already stored."""
    rejected: dict[str, int]
    """Rows per table refused for good (see the module's write-failure policy)."""
    batches: int
    """Submissions committed."""
    commits: int
    failed_commits: int
    last_commit: float | None
    """``time.time()`` of the latest commit."""
    queue_depth: int
    """Submissions waiting for the writer thread."""
    queued_rows: int
    """Their rows, and those held for a retry: what :meth:`StoreWriter.wait_for_room` bounds."""
    waits: int
    """Times a producer was held back because ``queued_rows`` was over the bound."""
    pending_rows: int
    """Rows converted and awaiting a retry after a failed commit."""
    last_error: str | None
    """The most recent write failure, kept after recovery for post-mortems."""


@dataclass(frozen=True)
class _Submission:
    seq: int
    table: Table
    columns: Mapping[str, ColumnData]
    rows: int


@dataclass(frozen=True)
class _Staged:
    """A submission converted to Arrow, ready to insert (possibly again, after a failure)."""

    seq: int
    table: Table
    data: pa.Table


@dataclass(frozen=True)
class _Commit:
    batches: int
    stored: dict[str, int]
    """Rows the INSERTs reported, per table: offered minus duplicates."""
    offered: dict[str, int]
    at: float


@dataclass(frozen=True)
class _Rejection:
    table: str
    rows: int
    error: BaseException


class StoreWriter:
    """Owns the write cursor and the thread that uses it; see the module docstring."""

    def __init__(
        self,
        connection: duckdb.DuckDBPyConnection,
        *,
        commit_interval: float = 0.05,
        on_commit: CommitCallback | None = None,
        first_ingest_seq: int = 1,
        max_queued_rows: int = MAX_QUEUED_ROWS,
    ) -> None:
        if not 0 < commit_interval <= 0.1:
            raise UsageError("commit_interval must be in (0, 0.1] s: the design commits ≥ 10 Hz")
        if max_queued_rows < 1:
            raise UsageError(f"max_queued_rows must be at least 1, got {max_queued_rows}")
        self._max_queued_rows = max_queued_rows
        self._connection = connection
        self.ingest_seqs: Iterator[int] = itertools.count(first_ingest_seq)
        """The file's ``ingest_seq`` ordinals, shared by every feed writing to it: ``next()``
        on it is atomic, and each feed draws under its own lock, in apply order."""
        self._interval = commit_interval
        self._on_commit = on_commit
        self._lock = threading.Lock()
        self._progress = threading.Condition(self._lock)
        self._wake = threading.Event()
        # Not restarted after a bug: a cycle may have died mid-transaction with rows staged,
        # so the writer is marked failed and every feed writing to it stops (see ``fault``).
        self._thread = SupervisedThread(
            self._run, name="workbench-store-writer", restart=False, on_error=self._failed
        )
        # Everything below is guarded by self._lock.
        self._queue: list[_Submission] = []
        self._queued_rows = 0  # not converted yet (queued or taken by a cycle), or held to retry
        self._waits = 0
        self._submitted = 0
        self._resolved = 0  # every submission with seq <= this is committed or rejected
        self._accepting = True
        self._staged: list[_Staged] = []  # only the writer thread mutates this list
        self._unreported: list[_Rejection] = []
        self._rows: dict[str, int] = dict.fromkeys(TABLES, 0)
        self._duplicates: dict[str, int] = dict.fromkeys(TABLES, 0)
        self._rejected: dict[str, int] = dict.fromkeys(TABLES, 0)
        self._batches = 0
        self._commits = 0
        self._failed_commits = 0
        self._last_commit: float | None = None
        self._last_error: BaseException | None = None
        self._fault: str | None = None
        self._dead = False  # the thread failed: nothing will be committed any more

    def start(self) -> StoreWriter:
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    @property
    def fault(self) -> str | None:
        """Why the database is refusing rows right now (they are held and retried), or why
        the writer thread died; None while writes succeed. Feeds stop on it."""
        with self._lock:
            return self._fault

    def submit(self, table: str, columns: Mapping[str, ColumnData]) -> None:
        """Queue a columnar batch for the next commit; never waits on DuckDB.

        The caller hands over ownership: the column objects must not be mutated afterwards
        (:meth:`TableBatch.take` returns fresh lists for exactly this reason).
        """
        spec = TABLES.get(table)
        if spec is None:
            raise UsageError(f"unknown table {table!r}; tables: {', '.join(TABLES)}")
        names = set(spec.column_names)
        missing = sorted(names - columns.keys() - spec.optional_names)
        extra = sorted(columns.keys() - names)
        if missing or extra:
            raise UsageError(
                f"{table}: columns do not match, missing {missing}, unexpected {extra}"
            )
        lengths = {len(values) for values in columns.values()}
        if len(lengths) != 1:
            raise UsageError(f"{table}: columns have different lengths {sorted(lengths)}")
        rows = lengths.pop()
        if rows == 0:
            return
        if columns.keys() != names:
            columns = {**columns, **self._filled(spec, columns.keys(), rows)}
        with self._lock:
            if not self._accepting:
                raise StoreError(
                    "the store writer is stopped; reopen the store to write again "
                    f"(last error: {self._last_error})"
                ) from self._last_error
            self._submitted += 1
            self._queue.append(_Submission(self._submitted, spec, columns, rows))
            self._queued_rows += rows
            if self._queued_rows >= self._max_queued_rows:
                self._wake.set()  # a backlog: no need to wait for the next interval

    def wait_for_room(self, timeout: float) -> bool:
        """Block while ``max_queued_rows`` or more rows wait for the writer thread, at most
        ``timeout`` s; True once there is room. Producers call it between batches of work,
        never holding a lock a reader needs. A writer that cannot write (``fault``) or is
        stopping holds nobody back: the feeds stop on the fault instead."""
        with self._lock:
            if self._queued_rows < self._max_queued_rows:
                return True
            self._waits += 1
            return self._progress.wait_for(self._has_room, timeout)

    def _has_room(self) -> bool:
        return (
            self._queued_rows < self._max_queued_rows
            or self._fault is not None
            or not self._accepting
        )

    def _filled(self, spec: Table, given: Iterable[str], rows: int) -> dict[str, list[Any]]:
        """Values of the optional columns a submission left out."""
        filled: dict[str, list[Any]] = {}
        for column in spec.columns:
            if column.optional and column.name not in given:
                if column.name == "ingest_seq":
                    filled[column.name] = list(itertools.islice(self.ingest_seqs, rows))
                else:
                    filled[column.name] = [column.default] * rows
        return filled

    def flush(self, timeout: float = 5.0) -> None:
        """Block until every batch submitted before this call is committed (or rejected).

        Raises StoreError if rows were rejected since the last report, or if the rows are not
        committed within ``timeout`` (with the pending write error as the cause).
        """
        if threading.current_thread() is self._thread:
            raise UsageError(
                "flush() called from the writer thread (e.g. on_commit) would deadlock"
            )
        deadline = time.monotonic() + timeout
        with self._lock:
            target = self._submitted
        self._wake.set()
        with self._lock:
            while self._resolved < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._dead or not self._thread.is_alive():
                    raise StoreError(
                        f"store writer did not commit {target - self._resolved} submissions "
                        f"within {timeout:g} s; last error: {self._last_error}"
                    ) from self._last_error
                self._progress.wait(remaining)
            self._raise_rejections()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop accepting batches, commit what is queued, and join the thread.

        Idempotent. Raises StoreError (once) if rows were rejected or could not be committed
        before the thread stopped; those rows are counted in ``stats().rejected``.
        """
        with self._lock:
            self._accepting = False
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout)
        if self._thread.is_alive():
            raise StoreError(f"store writer thread did not stop within {timeout:g} s")
        with self._lock:
            if self._resolved < self._submitted:
                # Only a database that kept refusing rows (or a crashed thread) leaves any:
                # give them up now, counted as rejected, and report them with the rest.
                reason = StoreError(f"not committed before stop; last error: {self._last_error}")
                reason.__cause__ = self._last_error
                for item in self._staged:
                    self._note_rejection(item.table.name, item.data.num_rows, reason)
                for submission in self._queue:
                    self._note_rejection(submission.table.name, submission.rows, reason)
                self._staged, self._queue = [], []
                self._queued_rows = 0
                self._resolved = self._submitted
            self._raise_rejections()

    def stats(self) -> WriterStats:
        with self._lock:
            return WriterStats(
                rows=dict(self._rows),
                duplicates=dict(self._duplicates),
                rejected=dict(self._rejected),
                batches=self._batches,
                commits=self._commits,
                failed_commits=self._failed_commits,
                last_commit=self._last_commit,
                queue_depth=len(self._queue),
                queued_rows=self._queued_rows,
                waits=self._waits,
                pending_rows=sum(s.data.num_rows for s in self._staged),
                last_error=None if self._last_error is None else str(self._last_error),
            )

    def _raise_rejections(self) -> None:
        """Raise (once) for rows rejected since the last report; caller holds the lock."""
        if not self._unreported:
            return
        rejections, self._unreported = self._unreported, []
        summary = "; ".join(f"{r.rows} {r.table} rows: {r.error}" for r in rejections)
        raise StoreError(f"store writer rejected {summary}") from rejections[-1].error

    # --- writer thread -------------------------------------------------------------------

    def _run(self) -> None:
        cursor = self._connection.cursor()
        try:
            delay = self._interval
            while True:
                with self._lock:
                    final = not self._accepting
                started = time.monotonic()
                delay = self._cycle(cursor, delay)
                if final and delay > 0:
                    return  # queue drained, or the database refuses rows: stop() reports
                self._wake.wait(max(0.0, started + delay - time.monotonic()))
                self._wake.clear()
        finally:
            cursor.close()

    def _failed(self, error: ThreadError) -> None:
        """A bug, not a bad batch (those are handled in ``_cycle``; the supervisor logged the
        traceback): stop taking rows that would only pile up, and let submit/flush/stop
        raise with this as the cause. The rows held stay counted; stop() reports them."""
        with self._lock:
            self._accepting = False
            self._dead = True
            self._last_error = error
            self._fault = f"store writer thread failed: {error.type}: {error.message}"
            self._progress.notify_all()

    def _cycle(self, cursor: duckdb.DuckDBPyConnection, delay: float) -> float:
        """Convert what is queued, write it in one transaction, and return the next delay.

        Conversion stops once ``commit_interval`` is spent (after at least one submission) and
        the rest goes back to the head of the queue, so a backlog is committed in slices at
        the usual rate instead of as one huge, late transaction. The delay is 0 while a
        backlog remains and grows from ``commit_interval`` to 1 s while commits fail.
        """
        budget_end = time.monotonic() + self._interval
        with self._lock:
            queued, self._queue = self._queue, []
            queued_up_to = self._submitted
        staged = list(self._staged)
        taken = 0
        for submission in queued:
            if taken and time.monotonic() > budget_end:
                break
            taken += 1
            try:
                staged.append(_Staged(submission.seq, submission.table, _to_arrow(submission)))
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                self._reject(submission.table.name, submission.rows, exc)
        backlog = queued[taken:]
        with self._lock:
            # The converted rows no longer hold producers back: they insert while the next
            # ones are received. The backlog still does — releasing it too at the start of a
            # cycle let a starved writer's queue grow without bound (2.3 M rows, 600 MB, in a
            # 1 M-message Binance burst against a bound of 100,000).
            self._queued_rows -= sum(submission.rows for submission in queued[:taken])
            self._progress.notify_all()
        commits: list[_Commit] = []
        retry: list[_Staged] = []
        error: BaseException | None = None
        fault: str | None = None
        if staged:
            try:
                commits.append(_write(cursor, staged))
            except (duckdb.Error, pa.ArrowException) as exc:
                error = exc
                failed: list[tuple[_Staged, BaseException]] = []
                for item in staged:
                    try:
                        commits.append(_write(cursor, [item]))
                    except (duckdb.Error, pa.ArrowException) as item_error:
                        failed.append((item, item_error))
                for item, cause in failed:
                    if commits and _is_data_error(cause):
                        self._reject(item.table.name, item.data.num_rows, cause)
                    else:
                        retry.append(item)
                if retry:
                    tables = ", ".join(sorted({item.table.name for item in retry}))
                    fault = f"store writer cannot write {tables}: {_one_line(failed[-1][1])}"
        with self._lock:
            self._queue[:0] = backlog
            self._staged = retry
            self._queued_rows = sum(s.rows for s in self._queue) + sum(
                item.data.num_rows for item in retry
            )
            if retry:
                self._resolved = retry[0].seq - 1
            elif backlog:
                self._resolved = backlog[0].seq - 1
            else:
                self._resolved = queued_up_to
            for commit in commits:
                self._commits += 1
                self._batches += commit.batches
                self._last_commit = commit.at
                for name, stored in commit.stored.items():
                    self._rows[name] += stored
                    self._duplicates[name] += commit.offered[name] - stored
            if error is not None:
                self._failed_commits += 1
                self._last_error = error
            self._fault = fault
            self._progress.notify_all()
        if retry:
            log.warning("store write failed, %d submissions kept for retry: %s", len(retry), error)
        if self._on_commit is not None:
            for commit in commits:
                try:
                    self._on_commit(dict(commit.stored))
                except Exception:
                    log.exception("store writer on_commit callback failed")
        if retry:
            return min(max(2 * delay, self._interval), _MAX_BACKOFF)
        return 0.0 if backlog else self._interval

    def _reject(self, table: str, rows: int, error: BaseException) -> None:
        log.error("store writer rejected %d %s rows: %s", rows, table, error)
        with self._lock:
            self._note_rejection(table, rows, error)

    def _note_rejection(self, table: str, rows: int, error: BaseException) -> None:
        """Count rows given up for good; the next flush/stop reports them. Caller holds lock."""
        self._rejected[table] += rows
        self._unreported.append(_Rejection(table, rows, error))
        self._last_error = error


def _one_line(error: BaseException) -> str:
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _is_data_error(error: BaseException) -> bool:
    """A refusal caused by the rows themselves (a constraint, a value DuckDB cannot convert);
    anything else — a missing table, a full disk — is the database's, and retrying may fix it."""
    return isinstance(error, duckdb.ConstraintException | duckdb.ConversionException)


def _to_arrow(submission: _Submission) -> pa.Table:
    """Convert one submission to the table's exact Arrow schema, yielding the GIL as it goes.

    Exact types matter twice: DuckDB then inserts without casts, and a value that does not fit
    fails here, for this submission alone, instead of failing a whole transaction. Integer
    timestamps become ``timestamp[us]`` as they are (no arithmetic); datetime64 arrays of any
    unit are converted exactly or refused.

    Why the ``time.sleep(0)``: converting Python lists, pyarrow briefly releases and retakes
    the GIL many times; each handover resets CPython's switch-interval timer, so a thread
    waiting for the GIL (a feed thread, a notebook query) never gets to request it and
    starves for as long as conversion runs (measured: 0.5 s stalls while converting 3 M rows).
    An explicit sleep(0) per chunk of at most ``_CHUNK_ROWS`` rows caps that wait at about 2 ms
    (bench_store, a reader's p99 during ingest paced at 1 M rows/s: 13–17 ms with chunks of
    16,384 rows, 7–13 ms with 4,096; the ingest rate is within the run-to-run noise).
    """
    table = submission.table
    parts: list[pa.Table] = []
    for start in range(0, submission.rows, _CHUNK_ROWS):
        arrays: list[pa.Array | pa.ChunkedArray] = []
        for column in table.columns:
            values = submission.columns[column.name]
            if submission.rows > _CHUNK_ROWS:
                values = values[start : start + _CHUNK_ROWS]
            target = column.arrow_type
            if isinstance(values, pa.Array | pa.ChunkedArray):
                arrays.append(values if values.type == target else values.cast(target))
            else:
                arrays.append(pa.array(values, type=target))
        parts.append(pa.Table.from_arrays(arrays, schema=table.arrow_schema))
        time.sleep(0)
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


def _write(cursor: duckdb.DuckDBPyConnection, staged: list[_Staged]) -> _Commit:
    """Insert all staged data, one INSERT per table, in one transaction.

    The Arrow tables are registered before BEGIN and unregistered after COMMIT/ROLLBACK:
    unregistering inside an aborted transaction fails and would mask the real error.
    """
    by_table: dict[Table, list[_Staged]] = {}
    for item in staged:
        by_table.setdefault(item.table, []).append(item)
    data = {
        table: pa.concat_tables([item.data for item in items]) for table, items in by_table.items()
    }
    stored: dict[str, int] = {}
    for table, rows in data.items():
        cursor.register(table.staging_name, rows)
    try:
        cursor.begin()
        try:
            for table in data:
                row = cursor.execute(table.insert_sql).fetchone()
                stored[table.name] = int(row[0]) if row else 0
            cursor.commit()
        except BaseException:
            with contextlib.suppress(duckdb.Error):
                cursor.rollback()
            raise
    finally:
        for table in data:
            cursor.unregister(table.staging_name)
    offered = {table.name: rows.num_rows for table, rows in data.items()}
    return _Commit(len(staged), stored, offered, time.time())
