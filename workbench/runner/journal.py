"""The runner's own DuckDB file, its intent log: every order before it reaches the broker.

A runner writes what it decides and what comes of it here, so that after a crash (kill -9,
power loss of the process) a restart knows every order it may have sent, can ask the broker
what became of each (by its deterministic ``client_order_id``) and resumes without sending
any order twice. One file per runner: DuckDB lets one process hold a file, and a second
runner on the same journal is refused (:class:`JournalLockedError`) before it writes anything.

Durability. :meth:`Journal.intent` commits before it returns: once it has returned, the order
survives any crash, and only then may the runner hand it to the broker (if it raises, the
order must not be sent). Everything else — order status changes, fills, positions, P&L marks,
risk decisions — is written into an open transaction that :meth:`Journal.flush` commits
(the runner calls it at most every ~100 ms and on shutdown), and that the next ``intent`` or
:meth:`Journal.checkpoint` commits too. So a kill -9 can lose only what was written since the
last commit: status changes, fills and marks the broker still knows (reconciliation replays
the broker's fills through :meth:`Journal.fill`, which skips the ones already here), never an
intent, a checkpoint or anything committed before them. The file itself is never left
half-written: DuckDB's write-ahead log makes each commit all or nothing.

Reads (:meth:`Journal.orders`, :meth:`Journal.positions_from_fills`, …) see the uncommitted
writes too: they run on the same connection.

Threads. A journal is one DuckDB connection, used from ONE thread: the runner's engine
thread, which decides, journals and sends. DuckDB 2.0 fails on a connection shared across
threads; anything else that wants the data reads the journal after the runner stopped.

Times are integers, µs since the Unix epoch (UTC), as on the events. Writes are single
parameterised statements: the runner journals orders, fills and marks at human rates, not
per market message, so there is no hot path here to batch.

Schema (version :data:`SCHEMA_VERSION`, in :data:`TABLES`): ``meta`` (the file's format and
version), ``runs`` (one row per open: ``run`` increasing from 1, when it started and stopped,
its pid and exit code, the workbench version and the run's configuration as JSON — a run
whose ``stopped_us`` is NULL ended in a crash), ``orders``, ``fills``, ``positions``, ``pnl``,
``risk_decisions`` and ``checkpoints``. A file of another shape or version is refused
(:class:`~workbench.errors.BadStoreError`) and left exactly as it was.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from types import TracebackType
from typing import Any, ClassVar, NamedTuple

import duckdb
import pandas as pd

from workbench.engine.bars import OrderRecord
from workbench.errors import BadStoreError, StoreError, UsageError
from workbench.events import Fill, Order
from workbench.runner.jsonlog import jsonable
from workbench.store.store import MEMORY_LIMIT

FORMAT = "workbench-runner-journal"
SCHEMA_VERSION = 1

TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "meta": (("key", "VARCHAR PRIMARY KEY"), ("value", "VARCHAR NOT NULL")),
    "runs": (
        ("run", "BIGINT PRIMARY KEY"),
        ("started_us", "BIGINT NOT NULL"),
        ("pid", "INTEGER NOT NULL"),
        ("workbench_version", "VARCHAR NOT NULL"),
        ("config", "JSON NOT NULL"),
        ("stopped_us", "BIGINT"),
        ("exit_code", "INTEGER"),
    ),
    "orders": (
        ("client_order_id", "VARCHAR PRIMARY KEY"),
        ("seq", "BIGINT NOT NULL"),
        ("run", "BIGINT NOT NULL"),
        ("symbol", "VARCHAR NOT NULL"),
        ("side", "VARCHAR NOT NULL"),
        ("type", "VARCHAR NOT NULL"),
        ("size", "DOUBLE"),
        ("target", "DOUBLE"),
        ("price", "DOUBLE"),
        ("tif", "VARCHAR NOT NULL"),
        ("created_us", "BIGINT NOT NULL"),
        ("status", "VARCHAR NOT NULL"),
        ("reason", "VARCHAR NOT NULL"),
        ("filled", "DOUBLE NOT NULL"),
        ("average_price", "DOUBLE"),
        ("updated_us", "BIGINT NOT NULL"),
    ),
    "fills": (
        ("fill_id", "VARCHAR PRIMARY KEY"),
        ("client_order_id", "VARCHAR NOT NULL"),
        ("symbol", "VARCHAR NOT NULL"),
        ("side", "VARCHAR NOT NULL"),
        ("ts", "BIGINT NOT NULL"),
        ("price", "DOUBLE NOT NULL"),
        ("size", "DOUBLE NOT NULL"),
        ("fee", "DOUBLE NOT NULL"),
        ("liquidity", "VARCHAR NOT NULL"),
        ("run", "BIGINT NOT NULL"),
    ),
    "positions": (
        ("symbol", "VARCHAR PRIMARY KEY"),
        ("position", "DOUBLE NOT NULL"),
        ("cash", "DOUBLE NOT NULL"),
        ("updated_us", "BIGINT NOT NULL"),
    ),
    "pnl": (
        ("ts", "BIGINT NOT NULL"),
        ("equity", "DOUBLE NOT NULL"),
        ("cash", "DOUBLE NOT NULL"),
        ("position", "DOUBLE NOT NULL"),
        ("price", "DOUBLE NOT NULL"),
        ("fees_paid", "DOUBLE NOT NULL"),
        ("run", "BIGINT NOT NULL"),
    ),
    "risk_decisions": (
        ("time_us", "BIGINT NOT NULL"),
        ("client_order_id", "VARCHAR NOT NULL"),
        ("symbol", "VARCHAR NOT NULL"),
        ("rule", "VARCHAR NOT NULL"),
        ("accepted", "BOOLEAN NOT NULL"),
        ("action", "VARCHAR NOT NULL"),
        ("reason", "VARCHAR NOT NULL"),
        ("detail", "JSON NOT NULL"),
        ("run", "BIGINT NOT NULL"),
    ),
    "checkpoints": (
        ("id", "BIGINT PRIMARY KEY"),
        ("ts", "BIGINT NOT NULL"),
        ("run", "BIGINT NOT NULL"),
        ("state", "BLOB NOT NULL"),
        ("order_count", "BIGINT NOT NULL"),
        ("fill_count", "BIGINT NOT NULL"),
    ),
}
"""Every table: its columns, each with its DuckDB type (the first word) and constraints.

``orders.seq`` numbers the orders in the order they were journaled (from 1, across runs):
DuckDB moves a row whose text columns change to the end of its table, so ``rowid`` does not
keep that order for a table that is updated (``fills``, never updated, keeps it)."""

OPEN_STATUSES = ("intent", "open")
"""``intent``: journaled, maybe not yet at the broker; ``open``: the broker acknowledged it."""
STATUSES = (*OPEN_STATUSES, "filled", "cancelled", "rejected")

_RISK_REQUIRED = ("time_us", "client_order_id", "rule", "accepted", "reason")
_RISK_OPTIONAL = {"symbol": "", "action": "", "detail": "{}"}
_ORDER_COLUMNS = "client_order_id, symbol, side, type, created_us, size, target, price, tif"
_LOCK_PID = re.compile(r"\(PID (\d+)\)")


class JournalLockedError(StoreError):
    """Another process holds the journal's file (most likely another runner on the same
    journal). Nothing was written: stop that runner, or give this one its own file."""

    def __init__(self, message: str, *, path: Path, pid: int | None) -> None:
        super().__init__(message)
        self.path = path
        self.pid = pid


class DuplicateOrderError(StoreError):
    """An order's ``client_order_id`` is already journaled: sending it would send an order
    twice (the runner's order numbering did not resume after the journal's last order)."""


@dataclass(frozen=True)
class Checkpoint:
    """The strategy state the runner saved (opaque bytes: it pickles them) and how many
    orders and fills the journal held when it did."""

    id: int
    ts: int
    run: int
    state: bytes
    order_count: int
    fill_count: int


class JournaledFill(NamedTuple):
    fill_id: str
    new: bool
    """False: a fill with this id was journaled already and this one was skipped."""


class Journal:
    """The runner's intent log; create with :meth:`Journal.open` (see the module docstring)."""

    _open_paths: ClassVar[set[Path]] = set()
    _open_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, path: Path, connection: duckdb.DuckDBPyConnection, run: int) -> None:
        self.path = path
        self.run = run
        """This open's run number (``runs.run``)."""
        self._connection = connection
        self._pending = False  # a transaction holds writes not committed yet
        self._closed = False
        self._last_seq = int(self._read("SELECT coalesce(max(seq), 0) FROM orders")[0][0])

    @classmethod
    def open(cls, path: str | Path, *, run: Mapping[str, object]) -> Journal:
        """Open the journal at ``path`` (created with its schema if new) and record a run.

        ``run`` is the run's configuration (artifact path, strategy, venue, symbols, …),
        stored as JSON in ``runs.config`` with secrets masked as the JSON log masks them.
        Raises :class:`JournalLockedError` if another process holds the file,
        :class:`~workbench.errors.BadStoreError` if the file is not a journal this version
        can use (it is left as it was), StoreError if this process has it open already.
        """
        resolved = Path(path).expanduser().resolve()
        config = json.dumps(jsonable(run), sort_keys=True)
        with cls._open_lock:
            if resolved in cls._open_paths:
                raise StoreError(f"the journal {resolved} is already open in this process")
            connection, fresh = _connect(resolved)
            try:
                number = _start(resolved, connection, fresh, config)
            except BaseException:
                connection.close()
                raise
            cls._open_paths.add(resolved)
        return cls(resolved, connection, number)

    @property
    def closed(self) -> bool:
        return self._closed

    # -- writes -------------------------------------------------------------------------------
    def intent(self, order: Order) -> None:
        """Journal ``order`` as an intent and COMMIT (with everything pending) before
        returning: only then may it be sent. Raises :class:`DuplicateOrderError` if its
        ``client_order_id`` is journaled already (the pending writes are kept)."""
        inserted = self._write(
            f"INSERT INTO orders ({_ORDER_COLUMNS}, seq, run, status, reason, filled, "
            "updated_us) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'intent', '', 0, ?) "
            "ON CONFLICT DO NOTHING RETURNING client_order_id",
            [
                order.client_order_id,
                order.symbol,
                order.side,
                order.type,
                order.created_us,
                order.size,
                order.target,
                order.price,
                order.tif,
                self._last_seq + 1,
                self.run,
                order.created_us,
            ],
        )
        if not inserted:
            raise DuplicateOrderError(
                f"{self.path}: order {order.client_order_id} is journaled already; sending it "
                "would send an order twice (resume numbering after last_order_number())"
            )
        self.flush()
        self._last_seq += 1

    def order_status(
        self,
        client_order_id: str,
        status: str,
        *,
        updated_us: int,
        reason: str = "",
        filled: float = 0.0,
        average_price: float | None = None,
    ) -> None:
        """Record what became of an order: ``filled`` is the size filled so far,
        ``average_price`` its average price (None or NaN while nothing filled)."""
        if status not in STATUSES or status == "intent":
            allowed = ", ".join(s for s in STATUSES if s != "intent")
            raise UsageError(f"an order's status is one of {allowed}, not {status!r}")
        if average_price is not None and math.isnan(average_price):
            average_price = None
        updated = self._write(
            "UPDATE orders SET status = ?, reason = ?, filled = ?, average_price = ?, "
            "updated_us = ? WHERE client_order_id = ? RETURNING client_order_id",
            [status, reason, filled, average_price, updated_us, client_order_id],
        )
        if not updated:
            raise UsageError(f"{self.path}: no order {client_order_id} in the journal")

    def fill(self, fill: Fill, *, n: int | None = None) -> JournaledFill:
        """Journal ``fill`` as its order's ``n``-th (from 1), id ``"{client_order_id}#{n}"``.

        A fill whose id is journaled already is skipped (``new`` False), so reconciliation
        can replay the broker's fills of an order, numbered in the broker's order, safely.
        Without ``n`` it is the order's next: the live path, where each fill is heard once.
        """
        coid = fill.client_order_id
        if n is None:
            row = self._write(
                "SELECT coalesce(max(TRY_CAST(substr(fill_id, length(client_order_id) + 2) "
                "AS BIGINT)), 0) + 1 FROM fills WHERE client_order_id = ?",
                [coid],
            )
            n = int(row[0][0])
        elif n < 1:
            raise UsageError(f"a fill's number counts from 1, not {n}")
        fill_id = f"{coid}#{n}"
        inserted = self._write(
            "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT DO NOTHING RETURNING fill_id",
            [
                fill_id,
                coid,
                fill.symbol,
                fill.side,
                fill.ts,
                fill.price,
                fill.size,
                fill.fee,
                fill.liquidity,
                self.run,
            ],
        )
        return JournaledFill(fill_id, bool(inserted))

    def position(self, symbol: str, *, position: float, cash: float, updated_us: int) -> None:
        """The account's current position in ``symbol`` and its cash (kept current: one row
        per symbol; derived from the fills, which :meth:`positions_from_fills` checks)."""
        self._write(
            "INSERT INTO positions VALUES (?, ?, ?, ?) ON CONFLICT (symbol) DO UPDATE SET "
            "position = excluded.position, cash = excluded.cash, updated_us = excluded.updated_us",
            [symbol, position, cash, updated_us],
        )

    def pnl(
        self,
        *,
        ts: int,
        equity: float,
        cash: float,
        position: float,
        price: float,
        fees_paid: float,
    ) -> None:
        """One mark of the account: equity = cash + position × price."""
        self._write(
            "INSERT INTO pnl VALUES (?, ?, ?, ?, ?, ?, ?)",
            [ts, equity, cash, position, price, fees_paid, self.run],
        )

    def risk(self, decision: Mapping[str, object]) -> None:
        """One risk decision, as :meth:`RiskDecision.as_row <workbench.core.risk.RiskDecision.
        as_row>` gives it: ``time_us``, ``client_order_id``, ``rule``, ``accepted``, ``reason``
        and optionally ``symbol``, ``action`` and ``detail`` (JSON text or a mapping)."""
        missing = [key for key in _RISK_REQUIRED if key not in decision]
        unknown = sorted(set(decision) - set(_RISK_REQUIRED) - set(_RISK_OPTIONAL))
        if missing or unknown:
            raise UsageError(
                f"a risk decision row has the keys {', '.join(_RISK_REQUIRED)} and optionally "
                f"{', '.join(_RISK_OPTIONAL)}; missing {missing}, unknown {unknown}"
            )
        row = {**_RISK_OPTIONAL, **decision}
        detail = row["detail"]
        if isinstance(detail, str):
            try:  # refused here: a failed INSERT would end the pending transaction
                json.loads(detail)
            except ValueError as exc:
                raise UsageError(f"a risk decision's detail is not JSON: {detail!r}") from exc
        else:
            detail = json.dumps(jsonable(detail), sort_keys=True)
        self._write(
            "INSERT INTO risk_decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                row["time_us"],
                row["client_order_id"],
                row["symbol"],
                row["rule"],
                row["accepted"],
                row["action"],
                row["reason"],
                detail,
                self.run,
            ],
        )

    def checkpoint(self, state: bytes, *, ts: int) -> Checkpoint:
        """Save the strategy's ``state`` and COMMIT it with everything pending, so a
        checkpoint and the orders and fills it reflects are durable together."""
        ((number, orders, fills),) = self._write(
            "SELECT (SELECT coalesce(max(id), 0) + 1 FROM checkpoints), "
            "(SELECT count(*) FROM orders), (SELECT count(*) FROM fills)"
        )
        saved = Checkpoint(int(number), ts, self.run, bytes(state), int(orders), int(fills))
        self._write(
            "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)",
            [saved.id, saved.ts, saved.run, saved.state, saved.order_count, saved.fill_count],
        )
        self.flush()
        return saved

    def flush(self) -> None:
        """COMMIT what is pending (status changes, fills, positions, marks, decisions)."""
        if not self._pending:
            return
        self._check_open()
        self._pending = False
        try:
            self._connection.execute("COMMIT")
        except duckdb.Error as exc:
            self._rollback()
            raise StoreError(
                f"committing to the journal {self.path} failed, the writes since the last "
                f"commit were lost: {exc}"
            ) from exc

    # -- reads --------------------------------------------------------------------------------
    def last_checkpoint(self) -> Checkpoint | None:
        """The newest checkpoint of any run, or None."""
        rows = self._read(
            "SELECT id, ts, run, state, order_count, fill_count FROM checkpoints "
            "ORDER BY id DESC LIMIT 1"
        )
        if not rows:
            return None
        number, ts, run, state, orders, fills = rows[0]
        return Checkpoint(int(number), int(ts), int(run), bytes(state), int(orders), int(fills))

    def open_orders(self) -> list[OrderRecord]:
        """The orders still ``intent`` or ``open``, oldest first, each with its Order as it
        was submitted: what a restart asks the broker about."""
        rows = self._read(
            f"SELECT {_ORDER_COLUMNS}, status, reason, filled, average_price FROM orders "
            "WHERE status IN ('intent', 'open') ORDER BY seq"
        )
        records = []
        for *fields, status, reason, filled, average in rows:
            coid, symbol, side, kind, created_us, size, target, price, tif = fields
            order = Order(
                coid, symbol, side, kind, created_us, size=size, target=target, price=price, tif=tif
            )
            records.append(
                OrderRecord(order, status, reason, filled, math.nan if average is None else average)
            )
        return records

    def order_count(self) -> int:
        """How many orders the journal holds, of every run."""
        return int(self._read("SELECT count(*) FROM orders")[0][0])

    def last_order_number(self, strategy: str) -> int:
        """The highest ``n`` of the journaled ids ``"{strategy}-{n}"`` (0 if none): a restart
        numbers its orders from the next, so no id (and no order) repeats. The highest, not a
        count: a number the runner never journaled (an order refused before its intent)
        must not be reused."""
        prefix = f"{strategy}-"
        rows = self._read(
            "SELECT coalesce(max(TRY_CAST(substr(client_order_id, ?) AS UBIGINT)), 0) "
            "FROM orders WHERE starts_with(client_order_id, ?)",
            [len(prefix) + 1, prefix],
        )
        return int(rows[0][0])

    def positions_from_fills(self) -> dict[str, float]:
        """Each symbol's position as the sum of its signed fills (buys +, sells −)."""
        rows = self._read(
            "SELECT symbol, sum(CASE side WHEN 'buy' THEN size ELSE -size END) FROM fills "
            "GROUP BY symbol ORDER BY symbol"
        )
        return {str(symbol): float(total) for symbol, total in rows}

    def orders(self) -> pd.DataFrame:
        """Every journaled order, in the order they were journaled."""
        return self.sql("SELECT * FROM orders ORDER BY seq")

    def fills(self) -> pd.DataFrame:
        """Every journaled fill, in the order they were journaled."""
        return self.sql("SELECT * FROM fills ORDER BY rowid")

    def positions(self) -> pd.DataFrame:
        """The ``positions`` table, by symbol."""
        return self.sql("SELECT * FROM positions ORDER BY symbol")

    def sql(self, query: str, params: list[object] | None = None) -> pd.DataFrame:
        """Run ``query`` (``?`` parameters bound from ``params``) on the journal; a
        DataFrame. For the other tables: ``runs``, ``pnl``, ``risk_decisions``, …"""
        self._check_open()
        try:
            return self._connection.execute(query, params).df()
        except duckdb.Error as exc:
            raise StoreError(f"reading the journal {self.path} failed: {exc}") from exc

    # -- closing ------------------------------------------------------------------------------
    def close(self, exit_code: int = 0) -> None:
        """Commit what is pending, stamp the run's ``stopped_us`` and ``exit_code``,
        CHECKPOINT and close. Idempotent."""
        if self._closed:
            return
        try:
            self._write(
                "UPDATE runs SET stopped_us = ?, exit_code = ? WHERE run = ?",
                [_now_us(), exit_code, self.run],
            )
            self.flush()
            self._connection.execute("CHECKPOINT")
        except duckdb.Error as exc:
            raise StoreError(f"closing the journal {self.path} failed: {exc}") from exc
        finally:
            self._closed = True
            self._connection.close()
            with Journal._open_lock:
                Journal._open_paths.discard(self.path)

    def __enter__(self) -> Journal:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close(0 if exc is None else 1)

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, run {self.run}{', closed' if self._closed else ''})"

    # -- plumbing -----------------------------------------------------------------------------
    def _write(self, query: str, params: list[object] | None = None) -> list[tuple[Any, ...]]:
        """Run ``query`` inside the pending transaction (begun if none is)."""
        self._check_open()
        try:
            if not self._pending:
                self._connection.execute("BEGIN TRANSACTION")
                self._pending = True
            return self._connection.execute(query, params).fetchall()
        except duckdb.Error as exc:
            self._rollback()
            raise StoreError(
                f"writing to the journal {self.path} failed, the writes since the last "
                f"commit were lost: {exc}"
            ) from exc

    def _read(self, query: str, params: list[object] | None = None) -> list[tuple[Any, ...]]:
        self._check_open()
        try:
            return self._connection.execute(query, params).fetchall()
        except duckdb.Error as exc:
            raise StoreError(f"reading the journal {self.path} failed: {exc}") from exc

    def _rollback(self) -> None:
        if self._pending:
            self._pending = False
            with contextlib.suppress(duckdb.Error):  # the failure may have ended it already
                self._connection.execute("ROLLBACK")

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(f"the journal {self.path} is closed")


def _connect(path: Path) -> tuple[duckdb.DuckDBPyConnection, bool]:
    """A read-write connection to ``path`` and whether it still needs its schema.

    An existing file is checked through a read-only connection first, so a file we refuse is
    not touched (a read-write open could replay its WAL into it)."""
    fresh = True
    if path.exists():
        if not path.is_file():
            raise BadStoreError(f"{path} is not a file")
        checked = _duckdb_connect(path, read_only=True)
        try:
            fresh = _check(path, checked)
        except duckdb.Error as exc:
            raise BadStoreError(f"{path} cannot be read as a runner journal: {exc}") from exc
        finally:
            checked.close()
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
    return _duckdb_connect(path, read_only=False), fresh


def _duckdb_connect(path: Path, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(path, read_only=read_only, config={"memory_limit": MEMORY_LIMIT})
    except duckdb.IOException as exc:
        text = str(exc)
        if "lock" in text.lower():
            found = _LOCK_PID.search(text)
            pid = int(found.group(1)) if found else None
            holder = f"process {pid}" if pid is not None else "another process"
            raise JournalLockedError(
                f"the journal {path} is held by {holder}, probably another runner using the "
                "same journal (DuckDB lets one process hold a file); stop that runner or give "
                f"this one its own journal. Nothing was written. (DuckDB: {text})",
                path=path,
                pid=pid,
            ) from exc
        if "not a valid DuckDB database" in text:
            raise BadStoreError(
                f"{path} is not a DuckDB database; nothing in it was changed"
            ) from exc
        raise BadStoreError(f"cannot open {path}: {exc}") from exc
    except duckdb.Error as exc:
        raise BadStoreError(f"cannot open {path}: {exc}") from exc


def _check(path: Path, cursor: duckdb.DuckDBPyConnection) -> bool:
    """Raise BadStoreError unless ``cursor``'s file is a journal of this version or an empty
    database; True if it is empty (its schema is still to be created)."""
    rows = cursor.execute(
        "SELECT table_name, column_name, data_type FROM duckdb_columns() "
        "WHERE database_name = current_database() AND schema_name = 'main' AND NOT internal "
        "ORDER BY table_name, column_index"
    ).fetchall()
    found: dict[str, set[tuple[str, str]]] = {}
    for table, column, kind in rows:
        found.setdefault(str(table), set()).add((str(column), str(kind)))
    if not found:
        return True
    ours = found.get("meta") == _shape("meta") and cursor.execute(
        "SELECT value FROM meta WHERE key = 'format'"
    ).fetchall() == [(FORMAT,)]
    if not ours:
        listed = ", ".join(sorted(found)[:8]) + (", ..." if len(found) > 8 else "")
        raise BadStoreError(
            f"{path} is a DuckDB database but not a runner journal (it has tables {listed}); "
            "nothing in it was changed"
        )
    stored = cursor.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchall()
    if stored != [(str(SCHEMA_VERSION),)]:
        what = stored[0][0] if stored else "none"
        raise BadStoreError(
            f"{path} is a runner journal of schema version {what}; this workbench reads "
            f"version {SCHEMA_VERSION}. Nothing in it was changed"
        )
    for table in TABLES:
        if table not in found:
            raise BadStoreError(
                f"{path}: the runner journal has lost its table {table}; restore it from a "
                "copy (a restart without it could send orders twice)"
            )
        if found[table] != _shape(table):
            columns = ", ".join(f"{c} {t}" for c, t in sorted(found[table]))
            raise BadStoreError(
                f"{path}: table {table} has other columns ({columns}) than a runner journal's "
                "of this version; nothing in it was changed"
            )
    return False


def _shape(table: str) -> set[tuple[str, str]]:
    return {(column, declared.split()[0]) for column, declared in TABLES[table]}


def _start(path: Path, connection: duckdb.DuckDBPyConnection, fresh: bool, config: str) -> int:
    """Create the schema if ``fresh`` and record the run, in one transaction; the run's id."""
    try:
        connection.execute("BEGIN TRANSACTION")
        if fresh:
            for table, columns in TABLES.items():
                declared = ", ".join(f"{name} {kind}" for name, kind in columns)
                connection.execute(f"CREATE TABLE {table} ({declared})")
            connection.execute(
                "INSERT INTO meta VALUES ('format', ?), ('schema_version', ?)",
                [FORMAT, str(SCHEMA_VERSION)],
            )
        ((number,),) = connection.execute(
            "INSERT INTO runs (run, started_us, pid, workbench_version, config) "
            "SELECT coalesce(max(run), 0) + 1, ?, ?, ?, ? FROM runs RETURNING run",
            [_now_us(), os.getpid(), package_version("workbench"), config],
        ).fetchall()
        connection.execute("COMMIT")
    except duckdb.Error as exc:
        raise StoreError(f"starting a run in the journal {path} failed: {exc}") from exc
    return int(number)


def _now_us() -> int:
    return time.time_ns() // 1000
