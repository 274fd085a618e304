"""Cleaning inside DuckDB: the rules of :mod:`workbench.core.clean` as set-based SQL.

The rules, their stages and their exact definitions live in ``workbench.core.clean`` (read its
module docstring); this module says the same thing in SQL so that millions of rows are cleaned
where they are stored, and a test holds both paths to the same flags on a fixture with known
defects. :func:`clean_table` is the notebook door, ``workbench clean`` the CLI twin.

The raw tables are only read, inside one transaction on a cursor of its own (so rows the
recorder appends meanwhile are either all in or all out, and the ``_clean_*`` temp tables of
the stages vanish with the cursor). Each run replaces what an earlier run derived from the same
source:

- ``clean_<source>``: ``row_id`` (the raw row's ``rowid``) and the source's columns for the
  rows that pass, missing values filled; ordered by ``(exchange, symbol, ts, row_id)``.
- ``clean_flags``: one row per (source, row, rule) hit:
  ``source, row_id, exchange, symbol, ts, rule, action`` (``action``: ``drop``, ``flag``,
  and for ``missing`` ``fill`` or ``drop``). Join it to the raw table on ``rowid`` to see
  why a row is missing from the clean table.
- ``clean_windows``: ``source, rule, exchange, symbol, start, end, rows, detail``: the
  quality-event windows, stale runs and time gaps of the report.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from workbench.core.clean import (
    EXAMPLES,
    FILLS,
    OPENING_KINDS,
    RULES,
    TABLE_SPECS,
    WINDOW_COLUMNS,
    CleanConfig,
    CleanReport,
    Hampel,
    TableSpec,
    ZScore,
    duration_micros,
    make_report,
    micros,
    rules_for,
    table_spec,
)
from workbench.errors import StoreError, UsageError
from workbench.store import DEFAULT_DB, Store

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_ARRIVAL = "ORDER BY recv_ts NULLS LAST, row_id"
"""Arrival order, as defined in workbench.core.clean."""

_FLAGS_DDL = """CREATE TABLE IF NOT EXISTS clean_flags (
    source VARCHAR, row_id BIGINT, exchange VARCHAR, symbol VARCHAR, ts TIMESTAMP,
    rule VARCHAR, action VARCHAR)"""
_WINDOWS_DDL = """CREATE TABLE IF NOT EXISTS clean_windows (
    source VARCHAR, rule VARCHAR, exchange VARCHAR, symbol VARCHAR, start TIMESTAMP,
    "end" TIMESTAMP, rows BIGINT, detail VARCHAR)"""


def clean_table(
    store: Store,
    kind: str = "trades",
    config: CleanConfig | None = None,
    *,
    source: str | None = None,
    now: datetime | None = None,
) -> CleanReport:
    """Clean the store's ``source`` table (default: the recorder table ``kind``) in DuckDB.

    ``source`` may name any table with the columns of ``kind`` (an imported vendor file, say).
    ``now`` bounds the ``future`` rule; default: the current time. Writes ``clean_<source>``,
    ``clean_flags`` and ``clean_windows`` (see the module docstring) and returns the report.
    """
    spec = table_spec(kind)
    config = CleanConfig() if config is None else config
    source = kind if source is None else source
    if not _NAME.fullmatch(source):
        raise UsageError(f"table names are letters, digits and _, not {source!r}")
    moment = datetime.now(UTC) if now is None else now
    rules = rules_for(kind, config, now=True, quality=True)
    plan = _Plan(spec, config, source, micros(moment))
    with store.cursor() as cursor:
        _check_source(cursor, source, spec)
        cursor.begin()
        try:
            for sql, params in plan.statements():
                cursor.execute(sql, params)
            report = _report(cursor, plan, rules)
            cursor.commit()
        except duckdb.Error as exc:
            cursor.rollback()
            raise StoreError(f"cleaning {source} failed: {exc}") from exc
        except BaseException:
            cursor.rollback()
            raise
    return report


def _check_source(cursor: duckdb.DuckDBPyConnection, source: str, spec: TableSpec) -> None:
    found = cursor.execute(
        "SELECT column_name FROM information_schema.columns c JOIN information_schema.tables t "
        "USING (table_catalog, table_schema, table_name) "
        "WHERE table_name = ? AND table_type = 'BASE TABLE'",
        [source],
    ).fetchall()
    if not found:
        raise UsageError(f"no table {source!r} in the store (a view has no rowid to flag)")
    absent = sorted(set(spec.columns) - {name for (name,) in found})
    if absent:
        raise UsageError(f"{source} lacks the {spec.kind} columns {absent}")


class _Plan:
    """The SQL statements of one cleaning run, built from the spec and config.

    Identifiers come from :data:`TABLE_SPECS` and a checked source name; every value from the
    config or the caller is a bound parameter. Window frame sizes are validated ints (SQL
    does not accept parameters there).
    """

    def __init__(self, spec: TableSpec, config: CleanConfig, source: str, now_us: int) -> None:
        self.spec = spec
        self.config = config
        self.source = source
        self.now_us = now_us
        self.columns = ", ".join(spec.columns)
        self.series = ", ".join(spec.series)
        self.timeline = f"PARTITION BY {self.series} ORDER BY ts, row_id"
        self.src = f'SELECT rowid AS row_id, {self.columns} FROM "{source}"'
        # The clean rows: what stage 3 does not drop, or (no sequence rules) what stage 2 kept.
        self.passed = (
            f"_clean_s3 WHERE NOT ({self._dropping(3)})"
            if spec.sequence
            else "_clean_s2 WHERE NOT unfilled"
        )

    @property
    def target(self) -> str:
        return f"clean_{self.source}"

    def statements(self) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = [
            (self._quality_windows(), {}),
            (self._quality_hits(), {}),
            (self._stage1(), {"now": self.now_us, "skew": duration_micros(self.config.max_skew)}),
            (self._stage2(), {}),
        ]
        if self.spec.sequence:
            out.append(self._stage3())
        out += [
            (
                f'CREATE OR REPLACE TABLE "{self.target}" AS SELECT row_id, {self.columns} '
                f"FROM {self.passed} "
                "ORDER BY exchange, symbol, ts, row_id",
                {},
            ),
            (_FLAGS_DDL, {}),
            (_WINDOWS_DDL, {}),
            ("DELETE FROM clean_flags WHERE source = $source", {"source": self.source}),
            ("DELETE FROM clean_windows WHERE source = $source", {"source": self.source}),
            self._flags(),
            self._windows(),
        ]
        return out

    def _quality_windows(self) -> str:
        """One window per opening event and symbol, ending at that symbol's next resync."""
        kinds = ", ".join(f"'{k}'" for k in OPENING_KINDS)
        return f"""
CREATE OR REPLACE TEMP TABLE _clean_qw AS
WITH symbols AS (
    SELECT DISTINCT exchange, symbol FROM "{self.source}"
    WHERE exchange IS NOT NULL AND symbol IS NOT NULL),
events AS (
    SELECT e.exchange, s.symbol, e.ts, e.kind FROM quality_events e
    JOIN symbols s ON s.exchange = e.exchange AND (e.symbol IS NULL OR e.symbol = s.symbol)
    WHERE e.ts IS NOT NULL),
opens AS (SELECT * FROM events WHERE kind IN ({kinds})),
resyncs AS (SELECT exchange, symbol, ts FROM events WHERE kind = 'resync')
SELECT row_number() OVER () AS window_id, o.exchange, o.symbol, o.ts AS start,
       r.ts AS "end", o.kind AS detail
FROM opens o ASOF LEFT JOIN resyncs r
  ON o.exchange = r.exchange AND o.symbol = r.symbol AND o.ts <= r.ts"""

    def _quality_hits(self) -> str:
        return f"""
CREATE OR REPLACE TEMP TABLE _clean_qhit AS
SELECT w.window_id, s.row_id FROM ({self.src}) s JOIN _clean_qw w
  ON s.exchange = w.exchange AND s.symbol = w.symbol
 AND s.ts >= w.start AND s.ts < coalesce(w."end", 'infinity'::TIMESTAMP)"""

    def _stage1(self) -> str:
        spec = self.spec
        helpers = [f"row_number() OVER (PARTITION BY {self.columns} {_ARRIVAL}) > 1 AS _dup"]
        rules = {
            "required": " OR ".join(f"{c} IS NULL" for c in spec.keys),
            "non_positive": f"coalesce({' OR '.join(f'{c} <= 0' for c in spec.positive)}, false)",
            "future": "coalesce(epoch_us(ts) > $now, false)",
            "clock_skew": "coalesce(abs(epoch_us(recv_ts) - epoch_us(ts)) > $skew, false)",
            "duplicate": "_dup",
            "quality_window": "row_id IN (SELECT row_id FROM _clean_qhit)",
        }
        window = ""
        if spec.kind == "trades":
            helpers.append(
                f"row_number() OVER (PARTITION BY exchange, symbol, trade_id {_ARRIVAL}) > 1 "
                "AND exchange IS NOT NULL AND symbol IS NOT NULL AND trade_id IS NOT NULL "
                "AS _id_seen"
            )
            rules["duplicate_id"] = "_id_seen AND NOT _dup"
        if spec.kind == "quotes":
            rules["crossed"] = "coalesce(ask_price <= bid_price, false)"
        if spec.kind == "book_snapshots":
            helpers += [
                "max(CASE WHEN level = 0 AND side = 'bid' THEN price END) OVER snap AS _best_bid",
                "min(CASE WHEN level = 0 AND side = 'ask' THEN price END) OVER snap AS _best_ask",
            ]
            window = " WINDOW snap AS (PARTITION BY exchange, symbol, ts, recv_ts)"
            rules["crossed"] = "coalesce(_best_bid >= _best_ask, false)"
            rules["invalid_book"] = "coalesce(NOT valid, false)"
        judged = ",\n       ".join(f"{expr} AS {name}" for name, expr in rules.items())
        return f"""
CREATE OR REPLACE TEMP TABLE _clean_s1 AS
SELECT row_id, {self.columns},
       {judged}
FROM (SELECT *, {", ".join(helpers)} FROM ({self.src}){window})"""

    def _stage2(self) -> str:
        """Fill per column policy from the latest earlier / earliest later value (time order)."""
        around: list[str] = []
        filled: list[str] = []
        before = f"({self.timeline} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING)"
        after = f"({self.timeline} ROWS BETWEEN 1 FOLLOWING AND UNBOUNDED FOLLOWING)"
        for c in self.spec.columns:
            policy = self.config.policy(c) if c in self.spec.values else "drop"
            if policy == "drop":
                filled.append(c)
                continue
            around.append(f"last_value({c} IGNORE NULLS) OVER {before} AS _prev_{c}")
            if policy == "ffill":
                filled.append(f"coalesce({c}, _prev_{c}) AS {c}")
                continue
            known_t = f"CASE WHEN {c} IS NOT NULL THEN epoch_us(ts) END"
            around += [
                f"last_value({known_t} IGNORE NULLS) OVER {before} AS _tprev_{c}",
                f"first_value({c} IGNORE NULLS) OVER {after} AS _next_{c}",
                f"first_value({known_t} IGNORE NULLS) OVER {after} AS _tnext_{c}",
            ]
            fraction = (
                f"CASE WHEN _tnext_{c} = _tprev_{c} THEN 0::DOUBLE ELSE "
                f"(epoch_us(ts) - _tprev_{c})::DOUBLE / (_tnext_{c} - _tprev_{c})::DOUBLE END"
            )
            filled.append(f"coalesce({c}, _prev_{c} + (_next_{c} - _prev_{c}) * {fraction}) AS {c}")
        had_null = " OR ".join(f"{c} IS NULL" for c in self.spec.values)
        extra = "".join(f", {a}" for a in around)
        return f"""
CREATE OR REPLACE TEMP TABLE _clean_s2 AS
SELECT *, {" OR ".join(f"{c} IS NULL" for c in self.spec.values)} AS unfilled
FROM (SELECT row_id, {", ".join(filled)}, {had_null} AS missing
      FROM (SELECT *{extra} FROM _clean_s1 WHERE NOT ({self._dropping(1)})))"""

    def _stage3(self) -> tuple[str, dict[str, Any]]:
        config = self.config
        spec = self.spec
        signal = "price" if spec.signal == "price" else "(bid_price + ask_price) / 2"
        params: dict[str, Any] = {
            "tolerance": duration_micros(config.reorder_tolerance),
        }
        arrival = f"PARTITION BY {self.series} {_ARRIVAL}"
        measures = [
            f"max(_t) OVER ({arrival} ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS _latest",
            f"lag(ts) OVER ({self.timeline}) AS _prev_ts",
            "(row_number() OVER tl = 1"
            + "".join(f" OR {c} IS DISTINCT FROM lag({c}) OVER tl" for c in spec.positive)
            + ") AS _changed",
        ]
        rules = {"out_of_order": "coalesce(_t < _latest - $tolerance, false)"}
        if config.zscore is not None:
            z = config.zscore
            frame = f"({self.timeline} ROWS BETWEEN {int(z.window)} PRECEDING AND 1 PRECEDING)"
            measures += [
                f"avg(_x) OVER {frame} AS _z_mean",
                f"stddev_samp(_x) OVER {frame} AS _z_std",
                f"count(_x) OVER {frame} AS _z_n",
            ]
            rules["zscore"] = (
                f"coalesce(_z_n = {int(z.window)} AND _z_std > 0 "
                "AND abs(_x - _z_mean) > $z_threshold * _z_std, false)"
            )
            params["z_threshold"] = float(z.threshold)
        if config.hampel is not None:
            h = config.hampel
            k = int(h.half_window)
            frame = f"({self.timeline} ROWS BETWEEN {k} PRECEDING AND {k} FOLLOWING)"
            measures += [
                f"median(_x) OVER {frame} AS _h_median",
                f"mad(_x) OVER {frame} AS _h_mad",
                f"count(_x) OVER {frame} AS _h_n",
            ]
            rules["hampel"] = (
                f"coalesce(_h_n = {h.width} AND _h_mad > 0 "
                "AND abs(_x - _h_median) > $h_factor * _h_mad, false)"
            )
            params["h_factor"] = float(h.factor)
        if config.stale_rows is not None:
            rules["stale"] = "NOT _changed AND _run_length >= $stale_rows"
            params["stale_rows"] = int(config.stale_rows)
        if config.max_gap is not None:
            rules["time_gap"] = "coalesce(_t - epoch_us(_prev_ts) > $max_gap, false)"
            params["max_gap"] = duration_micros(config.max_gap)
        judged = ",\n       ".join(f"{expr} AS {name}" for name, expr in rules.items())
        sql = f"""
CREATE OR REPLACE TEMP TABLE _clean_s3 AS
WITH kept AS (
    SELECT row_id, {self.columns}, epoch_us(ts) AS _t, {signal} AS _x
    FROM _clean_s2 WHERE NOT unfilled),
measured AS (
    SELECT *, {", ".join(measures)}
    FROM kept WINDOW tl AS ({self.timeline})),
runs AS (
    SELECT *, sum(_changed::INTEGER) OVER ({self.timeline} ROWS UNBOUNDED PRECEDING) AS _run
    FROM measured),
sized AS (
    SELECT *, count(*) OVER (PARTITION BY {self.series}, _run) AS _run_length FROM runs)
SELECT *,
       {judged}
FROM sized"""
        return sql, params

    def _dropping(self, stage: int) -> str:
        """SQL true for rows a dropping rule of ``stage`` hit (earlier stages' drops never
        reach a later stage's table)."""
        ran = self._rules_in(stage)
        dropping = [r for r in ran if self.config.action(r) == "drop"]
        return " OR ".join(dropping) if dropping else "false"

    def _rules_in(self, stage: int) -> list[str]:
        rules = rules_for(self.spec.kind, self.config, now=True, quality=True)
        return [r for r in rules if RULES[r].stage == stage]

    def _flags(self) -> tuple[str, dict[str, Any]]:
        tables = {1: "_clean_s1", 2: "_clean_s2", 3: "_clean_s3"}
        rules = rules_for(self.spec.kind, self.config, now=True, quality=True)
        parts = []
        for order, rule in enumerate(rules):
            action = (
                "CASE WHEN unfilled THEN 'drop' ELSE 'fill' END"
                if rule == "missing"
                else f"'{self.config.action(rule)}'"
            )
            parts.append(
                f"SELECT row_id, exchange, symbol, ts, '{rule}' AS rule, {action} AS action, "
                f"{order} AS _order FROM {tables[RULES[rule].stage]} WHERE {rule}"
            )
        union = "\nUNION ALL ".join(parts)
        sql = f"""
INSERT INTO clean_flags
SELECT $source, row_id, exchange, symbol, ts, rule, action
FROM ({union}) ORDER BY _order, row_id"""
        return sql, {"source": self.source}

    def _windows(self) -> tuple[str, dict[str, Any]]:
        parts = [
            """SELECT 'quality_window', w.exchange, w.symbol, w.start, w."end",
                      count(h.row_id), w.detail
               FROM _clean_qw w LEFT JOIN _clean_qhit h USING (window_id)
               GROUP BY w.window_id, w.exchange, w.symbol, w.start, w."end", w.detail"""
        ]
        params: dict[str, Any] = {"source": self.source}
        if self.spec.sequence and self.config.stale_rows is not None:
            parts.append(
                f"""SELECT 'stale', exchange, symbol, min(ts), max(ts), count(*) - 1, NULL
                    FROM _clean_s3 WHERE _run_length >= $stale_rows
                    GROUP BY {self.series}, _run"""
            )
            params["stale_rows"] = int(self.config.stale_rows)
        if self.spec.sequence and self.config.max_gap is not None:
            parts.append(
                "SELECT 'time_gap', exchange, symbol, _prev_ts, ts, 1, NULL "
                "FROM _clean_s3 WHERE time_gap"
            )
        union = "\nUNION ALL ".join(parts)
        return f"INSERT INTO clean_windows SELECT $source, * FROM ({union})", params


def _report(cursor: duckdb.DuckDBPyConnection, plan: _Plan, rules: tuple[str, ...]) -> CleanReport:
    """Read the report back from what the run wrote, in the pure layer's canonical form."""
    source = {"source": plan.source}
    rows_in = _scalar(cursor, f'SELECT count(*) FROM "{plan.source}"')
    rows_out = _scalar(cursor, f'SELECT count(*) FROM "{plan.target}"')
    tallies = cursor.execute(
        "SELECT rule, count(*) AS rows, count(*) FILTER (WHERE action = 'drop') AS dropped "
        "FROM clean_flags WHERE source = $source GROUP BY rule",
        source,
    ).df()
    examples = cursor.execute(
        f"""SELECT f.rule, f.action, s.*
            FROM (SELECT rule, action, row_id,
                         row_number() OVER (PARTITION BY rule ORDER BY row_id) AS n
                  FROM clean_flags WHERE source = $source) f
            JOIN ({plan.src}) s USING (row_id)
            WHERE f.n <= {EXAMPLES}""",
        source,
    ).df()
    columns = ", ".join(f'"{c}"' for c in WINDOW_COLUMNS)
    windows = cursor.execute(
        f"SELECT {columns} FROM clean_windows WHERE source = $source", source
    ).df()
    return make_report(
        plan.spec.kind, plan.source, rules, rows_in, rows_out, tallies, examples, windows
    )


def _scalar(cursor: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = cursor.execute(sql).fetchone()
    return int(row[0]) if row else 0


# --- workbench clean ---------------------------------------------------------------------


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``clean`` and its flags on the CLI's sub-command parsers."""
    d = CleanConfig()
    z, h = ZScore(), Hampel()
    p = sub.add_parser(
        "clean",
        help="clean recorded trades, quotes and books into clean_* tables with flags",
        description="Run the cleaning rules over a store's tables in DuckDB: writes "
        "clean_<table>, clean_flags and clean_windows, never touches the raw tables, and "
        "prints a report per table.",
    )
    p.add_argument("--db", type=Path, default=DEFAULT_DB, help="the DuckDB file to clean")
    p.add_argument(
        "--table",
        action="append",
        choices=list(TABLE_SPECS),
        help="table to clean (repeatable; default: all three)",
    )
    p.add_argument("--source", help="clean this table, shaped like --table, instead")
    p.add_argument("--now", type=_moment, help="ISO time bounding `future` (default: now, UTC)")
    p.add_argument(
        "--max-skew", type=_seconds, default=d.max_skew, metavar="S", help="clock_skew limit"
    )
    p.add_argument(
        "--tolerance",
        type=_seconds,
        default=d.reorder_tolerance,
        metavar="S",
        help="out_of_order tolerance",
    )
    p.add_argument("--max-gap", type=_seconds, default=d.max_gap, metavar="S", help="time_gap")
    p.add_argument(
        "--stale-rows", type=int, default=d.stale_rows, metavar="N", help="shortest stale run"
    )
    p.add_argument("--z", type=float, default=z.threshold, help="z-score threshold")
    p.add_argument("--window", type=int, default=z.window, help="z-score window (rows)")
    p.add_argument("--no-zscore", action="store_true", help="skip the z-score rule")
    p.add_argument("--hampel-window", type=int, default=h.half_window, help="rows each side")
    p.add_argument("--sigmas", type=float, default=h.n_sigmas, help="Hampel threshold")
    p.add_argument("--no-hampel", action="store_true", help="skip the Hampel rule")
    p.add_argument(
        "--fill",
        action="append",
        default=[],
        metavar="COLUMN=POLICY",
        help=f"missing-value policy per column, one of {', '.join(FILLS)} (default drop)",
    )
    p.add_argument("--drop", action="append", default=[], metavar="RULE", help="drop its rows")
    p.add_argument("--flag", action="append", default=[], metavar="RULE", help="only flag")


def config_from_args(args: argparse.Namespace) -> CleanConfig:
    """The flags as a validated config; UsageError names what is wrong."""
    fill: dict[str, str] = {}
    for item in args.fill:
        column, sep, policy = item.partition("=")
        if not sep:
            raise UsageError(f"--fill takes COLUMN=POLICY, got {item!r}")
        fill[column] = policy
    actions = {rule: "drop" for rule in args.drop} | {rule: "flag" for rule in args.flag}
    return replace(
        CleanConfig(fill=fill, actions=actions),
        max_skew=args.max_skew,
        reorder_tolerance=args.tolerance,
        max_gap=args.max_gap,
        stale_rows=args.stale_rows,
        zscore=None if args.no_zscore else ZScore(args.window, args.z),
        hampel=None if args.no_hampel else Hampel(args.hampel_window, args.sigmas),
    )


def run(args: argparse.Namespace) -> int:
    """Clean each table, print its report; exit 0 (2 for usage mistakes via the CLI)."""
    config = config_from_args(args)
    kinds = args.table or list(TABLE_SPECS)
    if args.source is not None and len(kinds) != 1:
        raise UsageError("--source needs exactly one --table saying what it holds")
    if not args.db.is_file():
        raise UsageError(f"no database at {args.db}")
    store = Store.open(args.db, create=False)
    try:
        for kind in kinds:
            print(clean_table(store, kind, config, source=args.source, now=args.now).summary())
            print()
    finally:
        store.close()
    return 0


def _seconds(text: str) -> timedelta:
    try:
        return timedelta(seconds=float(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text}") from None


def _moment(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {text}") from None
