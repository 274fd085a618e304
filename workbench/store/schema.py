"""The store's schema as data: one place that defines every table, its DDL and its INSERT.

Keeping the schema as data (not scattered SQL strings) lets the writer derive its Arrow schema
and INSERT from the same definition the README documents, so the three can never drift apart.

Conventions shared by every table:

- Timestamps are DuckDB ``TIMESTAMP`` (no time zone) holding naive UTC at microsecond
  precision. Feed code hands them over as ``int`` microseconds since the Unix epoch, the unit of
  :mod:`workbench.events`; the writer reinterprets them as ``timestamp[us]`` without arithmetic.
- ``ts`` is the exchange's time, ``recv_ts`` the moment our socket read the bytes.
- There are no CHECK or NOT NULL constraints: the writer's hot path does no per-row validation,
  and one bad value must not make DuckDB refuse a whole batch of good rows. Allowed values are
  documented here and produced by the venue parsers, which own that validation.

Bump :data:`SCHEMA_VERSION` whenever a table changes shape and add the step to
:mod:`workbench.store.migrate`; :func:`create_schema` migrates an older file in one transaction
and refuses a newer one instead of guessing.

Market rows (trades, book changes, quotes, book snapshots, quality events) carry ``ingest_seq``:
one ordinal per applied event, increasing across all of those tables in the order the feed
applied them, so a recording replays in exactly its live order. The rows of one event (the
levels of one book message) share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

import duckdb
import pyarrow as pa

from workbench.errors import StoreError

SCHEMA_VERSION = 2
"""Shape of the tables below; stored in ``schema_info`` when a file is created."""

RAW_LIMIT = 64 * 1024
"""Bytes of a quarantined message kept in ``quarantine.raw``; ``size`` keeps the full length."""

QUALITY_KINDS: Mapping[str, str] = {
    "gap": "a sequence number was skipped; the book is invalid until the next snapshot",
    "duplicate": "a message was seen twice (same seq or trade id) and ignored",
    "crossed": "best bid >= best ask after applying an update",
    "checksum": "the venue's book checksum did not match ours",
    "stale": "no message (not even a heartbeat) within the watchdog timeout",
    "disconnect": "the connection closed or failed",
    "reconnect": "a new connection was established after a disconnect",
    "resync": "the book was rebuilt from a fresh snapshot",
    "backfill": "missed trades were fetched over REST",
    "mismatch": "a redundant connection's copy of a message disagreed with the applied one",
    "recording_gap": "nothing was recorded from the file's last row to a restart (e.g. a kill)",
    "thread_error": "a feed thread's work raised; detail names the thread, the exception's type "
    "and message, and whether it was restarted",
    "subscriber_overflow": "a subscriber of the feed fell a full queue behind and its oldest "
    "undelivered events were dropped (the recording is unaffected); detail names it",
}
"""Every ``quality_events.kind`` and what it means."""

_ARROW_TYPES: Mapping[str, pa.DataType] = {
    "VARCHAR": pa.string(),
    "TIMESTAMP": pa.timestamp("us"),
    "DOUBLE": pa.float64(),
    "BIGINT": pa.int64(),
    "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(),
}


@dataclass(frozen=True)
class Column:
    """One column: its DuckDB type and what a reader needs to know to use it."""

    name: str
    type: str
    doc: str
    optional: bool = False
    """A submission may leave it out: the writer fills ``default`` (``ingest_seq``: the next
    ordinals, in submission order), so callers without the information need not invent it."""
    default: str | None = None

    @property
    def arrow_type(self) -> pa.DataType:
        """The Arrow type the writer converts submitted values to before handing them to DuckDB."""
        return _ARROW_TYPES[self.type]


@dataclass(frozen=True)
class Table:
    """One table: columns, uniqueness, and how its rows are partitioned on Parquet export.

    ``unique`` names the columns of a UNIQUE constraint; a table that has one is inserted with
    ``ON CONFLICT DO NOTHING`` so a row delivered twice (redundant connections, backfill that
    overlaps live data) is stored once. ``time_column`` is the timestamp whose date partitions
    the export (None for reference tables without one).
    """

    name: str
    doc: str
    columns: tuple[Column, ...]
    time_column: str | None
    unique: tuple[str, ...] = ()
    partition_by: tuple[str, ...] = ("exchange", "symbol")

    @cached_property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @cached_property
    def optional_names(self) -> frozenset[str]:
        return frozenset(c.name for c in self.columns if c.optional)

    @cached_property
    def ddl(self) -> str:
        """Idempotent CREATE statement."""
        lines = [f"    {c.name} {c.type}" for c in self.columns]
        if self.unique:
            lines.append(f"    UNIQUE ({', '.join(self.unique)})")
        body = ",\n".join(lines)
        return f"CREATE TABLE IF NOT EXISTS {self.name} (\n{body}\n)"

    @property
    def staging_name(self) -> str:
        """Name under which the writer registers a batch's Arrow table before inserting it."""
        return f"staged_{self.name}"

    @cached_property
    def insert_sql(self) -> str:
        """The writer's INSERT: all rows of the staged Arrow table, columns named explicitly."""
        names = ", ".join(self.column_names)
        conflict = " ON CONFLICT DO NOTHING" if self.unique else ""
        return (
            f"INSERT INTO {self.name} ({names}) SELECT {names} FROM {self.staging_name}{conflict}"
        )

    @cached_property
    def arrow_schema(self) -> pa.Schema:
        return pa.schema([pa.field(c.name, c.arrow_type) for c in self.columns])


_EXCHANGE = Column("exchange", "VARCHAR", "venue name as registered in workbench.venues")
_SYMBOL = Column("symbol", "VARCHAR", "the venue's instrument symbol, e.g. `BTC-USD`")
_TS = Column("ts", "TIMESTAMP", "exchange time, naive UTC, µs")
_RECV_TS = Column("recv_ts", "TIMESTAMP", "when our socket read the message, naive UTC, µs")
_SEQ = Column("seq", "BIGINT", "venue sequence number of the message (NULL if the venue has none)")
_BOOK_SIDE = Column("side", "VARCHAR", "`bid` or `ask`")
_PRICE = Column("price", "DOUBLE", "level price")
_INGEST_SEQ = Column(
    "ingest_seq",
    "BIGINT",
    "ordinal of the applied event in this file, across all market tables (replay order)",
    optional=True,
)

DELTA_KINDS: Mapping[str, str] = {
    "delta": "a level change from a book update",
    "reset": "the book is cleared (side, price and size NULL); the snapshot's levels follow",
    "snapshot": "a level of the snapshot applied after a reset",
}
"""Every ``book_deltas.kind``: replaying the rows in ``ingest_seq`` order rebuilds the book."""

TABLES: Mapping[str, Table] = {
    t.name: t
    for t in (
        Table(
            "trades",
            "every public trade, stored once even when delivered twice",
            (
                _EXCHANGE,
                _SYMBOL,
                _TS,
                _RECV_TS,
                Column("price", "DOUBLE", "trade price"),
                Column("size", "DOUBLE", "traded quantity, base currency"),
                Column("side", "VARCHAR", "TAKER side, `buy` or `sell`"),
                Column("trade_id", "VARCHAR", "venue trade id, unique per exchange and symbol"),
                Column(
                    "seq",
                    "BIGINT",
                    "venue sequence number (NULL if the venue has none)",
                    optional=True,
                ),
                _INGEST_SEQ,
            ),
            time_column="ts",
            unique=("exchange", "symbol", "trade_id"),
        ),
        Table(
            "book_deltas",
            "every applied level change and every applied snapshot (a `reset` row, then its "
            "levels), so the book at any `ingest_seq` can be rebuilt from this table alone",
            (
                _EXCHANGE,
                _SYMBOL,
                _TS,
                _RECV_TS,
                _SEQ,
                Column(
                    "kind",
                    "VARCHAR",
                    "one of: " + ", ".join(f"`{k}`" for k in DELTA_KINDS),
                    optional=True,
                    default="delta",
                ),
                _BOOK_SIDE,
                _PRICE,
                Column("size", "DOUBLE", "new absolute size at that price; 0 = level deleted"),
                _INGEST_SEQ,
            ),
            time_column="ts",
        ),
        Table(
            "book_snapshots",
            "top-N levels of the book as one row per level",
            (
                _EXCHANGE,
                _SYMBOL,
                _TS,
                _RECV_TS,
                _SEQ,
                Column("valid", "BOOLEAN", "false while a detected gap awaits a resync"),
                _BOOK_SIDE,
                Column("level", "INTEGER", "depth index, 0 = best"),
                _PRICE,
                Column("size", "DOUBLE", "absolute size at that price"),
                _INGEST_SEQ,
            ),
            time_column="ts",
        ),
        Table(
            "quotes",
            "top of book as tickers and vendor tick feeds publish it",
            (
                _EXCHANGE,
                _SYMBOL,
                _TS,
                _RECV_TS,
                Column("bid_price", "DOUBLE", "best bid price (NULL if the source omits it)"),
                Column("bid_size", "DOUBLE", "size at the best bid"),
                Column("ask_price", "DOUBLE", "best ask price"),
                Column("ask_size", "DOUBLE", "size at the best ask"),
                _INGEST_SEQ,
            ),
            time_column="ts",
        ),
        Table(
            "instruments",
            "each recorded venue symbol with its normalized `BASE-QUOTE` name",
            (
                _EXCHANGE,
                _SYMBOL,
                Column("pair", "VARCHAR", "normalized `BASE-QUOTE`, e.g. `BTC-USDT`"),
                Column("base", "VARCHAR", "base asset, e.g. `BTC`"),
                Column("quote", "VARCHAR", "quote asset, e.g. `USDT`"),
            ),
            time_column=None,
            unique=("exchange", "symbol"),
            partition_by=("exchange",),
        ),
        Table(
            "bars",
            "OHLCV bars resampled from trades (or imported); one row per bucket",
            (
                _EXCHANGE,
                _SYMBOL,
                Column("interval", "VARCHAR", "bar length as written by the user, e.g. `1m`, `1h`"),
                Column("ts", "TIMESTAMP", "bucket start, naive UTC"),
                Column("open", "DOUBLE", "first trade price in the bucket"),
                Column("high", "DOUBLE", "highest trade price"),
                Column("low", "DOUBLE", "lowest trade price"),
                Column("close", "DOUBLE", "last trade price"),
                Column("volume", "DOUBLE", "traded quantity"),
                Column("vwap", "DOUBLE", "volume-weighted average price (NULL with no volume)"),
                Column("trades", "BIGINT", "number of trades"),
                Column("buy_volume", "DOUBLE", "volume of taker buys"),
                Column("sell_volume", "DOUBLE", "volume of taker sells"),
            ),
            time_column="ts",
            unique=("exchange", "symbol", "interval", "ts"),
        ),
        Table(
            "quality_events",
            "data-quality incidents, stored next to the data so analyses can exclude the windows",
            (
                _EXCHANGE,
                Column("symbol", "VARCHAR", "instrument; NULL for connection-wide incidents"),
                Column("ts", "TIMESTAMP", "when the incident was detected, naive UTC, µs"),
                Column("kind", "VARCHAR", "one of: " + ", ".join(f"`{k}`" for k in QUALITY_KINDS)),
                Column("detail", "VARCHAR", "JSON text with kind-specific fields"),
                _INGEST_SEQ,
            ),
            time_column="ts",
        ),
        Table(
            "quarantine",
            "messages that could not be parsed, kept raw with the reason",
            (
                _EXCHANGE,
                _RECV_TS,
                Column("reason", "VARCHAR", "the parser's error message"),
                Column(
                    "raw",
                    "VARCHAR",
                    f"first {RAW_LIMIT // 1024} KiB of the bytes, decoded as UTF-8 with "
                    "backslashreplace (see `raw_text`)",
                ),
                Column(
                    "size",
                    "INTEGER",
                    "original length in bytes; NULL when only a prefix was read (oversized)",
                ),
            ),
            time_column="recv_ts",
            partition_by=("exchange",),
        ),
    )
}
"""Data tables by name, in the order they are created and documented."""

ORDERED_TABLES = tuple(t for t in TABLES.values() if "ingest_seq" in t.column_names)
"""The market tables, whose rows carry ``ingest_seq``."""

SCHEMA_INFO = Table(
    "schema_info",
    "one row for the schema version that created the file and one per migration since; the "
    "highest version is the file's",
    (
        Column("version", "INTEGER", "value of `SCHEMA_VERSION` that created or migrated the file"),
        Column("created_at", "TIMESTAMP", "when the file was created or migrated, naive UTC"),
    ),
    time_column="created_at",
    partition_by=(),
)


def raw_text(data: bytes) -> str:
    """Text for ``quarantine.raw``: bad input must be kept even when it is not valid UTF-8.

    Truncating before decoding bounds the work on hostile input; backslashreplace keeps every
    undecodable byte visible as ``\\xNN`` instead of dropping it.
    """
    return data[:RAW_LIMIT].decode("utf-8", "backslashreplace")


def stored_version(cursor: duckdb.DuckDBPyConnection) -> int:
    """The file's schema version; StoreError for one newer than this code, which it cannot
    read (an older one is migrated by :func:`workbench.store.migrate.create_schema`)."""
    # fetchall, not fetchone: a result left unread keeps its transaction open, and while it is
    # open no checkpoint can follow a schema change, so the WAL and memory grow without end.
    ((version,),) = cursor.execute("SELECT max(version) FROM schema_info").fetchall()
    if version is None or not 1 <= version <= SCHEMA_VERSION:
        raise StoreError(
            f"database schema version is {version}, this workbench reads versions 1 to "
            f"{SCHEMA_VERSION}; open it with the workbench version that wrote it"
        )
    return int(version)


def describe() -> str:
    """The schema as Markdown, generated so the README cannot drift from the code."""
    parts: list[str] = []
    for table in (*TABLES.values(), SCHEMA_INFO):
        parts.append(f"**`{table.name}`**: {table.doc}.")
        if table.unique:
            parts[-1] += f" Unique on ({', '.join(table.unique)}); duplicates are ignored."
        parts.append("")
        parts.append("| column | type | meaning |")
        parts.append("|---|---|---|")
        parts.extend(f"| `{c.name}` | {c.type} | {c.doc} |" for c in table.columns)
        parts.append("")
        if table.name == "book_deltas":
            parts.extend(["| kind | meaning |", "|---|---|"])
            parts.extend(f"| `{kind}` | {meaning} |" for kind, meaning in DELTA_KINDS.items())
            parts.append("")
        if table.name == "quality_events":
            parts.extend(["| kind | meaning |", "|---|---|"])
            parts.extend(f"| `{kind}` | {meaning} |" for kind, meaning in QUALITY_KINDS.items())
            parts.append("")
    return "\n".join(parts).rstrip() + "\n"
