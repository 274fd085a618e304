"""Schema v2: every market row carries its apply order, applied snapshots are in the delta
stream, and a file written by the version-1 release migrates without losing a row."""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from workbench.errors import StoreError
from workbench.store import Store
from workbench.store.migrate import columns_at
from workbench.store.schema import ORDERED_TABLES, SCHEMA_VERSION, TABLES

FIXTURE = Path(__file__).parent / "fixtures" / "v1_sim_session.duckdb.gz"
"""Recorded by the version-1 release: `workbench record sim BTC-USD ETH-USD --duration 4
--seed 11 --rate 100 --drop-every 1.5 --gap 0.02 --duplicate 0.02 --malformed 0.01`."""


def v1_copy(tmp_path: Path) -> Path:
    path = tmp_path / "v1.duckdb"
    with gzip.open(FIXTURE) as src, path.open("wb") as dst:
        shutil.copyfileobj(src, dst)
    return path


def v1_rows(path: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table, in insertion order, as version 1 stored it."""
    with duckdb.connect(str(path), read_only=True) as con:
        ((version,),) = con.execute("SELECT max(version) FROM schema_info").fetchall()
        names = {
            str(n) for (n,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()
        }
        return {
            table.name: con.execute(
                f"SELECT {', '.join(c.name for c in columns_at(table, version))} "
                f"FROM {table.name} ORDER BY rowid"
            ).fetchall()
            for table in TABLES.values()
            if table.name in names
        }


def workbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args], capture_output=True, text=True, timeout=120
    )


def test_the_v1_fixture_migrates_keeping_every_row_and_numbering_its_events(
    tmp_path: Path,
) -> None:
    path = v1_copy(tmp_path)
    before = v1_rows(path)
    assert len(before["trades"]) > 100 and len(before["book_deltas"]) > 500  # a real session
    assert len(before["quarantine"]) > 0

    with pytest.raises(StoreError, match=r"schema version 1, older .* `workbench migrate"):
        Store.open(path, read_only=True)  # nothing could migrate it: refused, not misread

    done = workbench("migrate", "--db", str(path))
    assert done.returncode == 0, done.stderr
    assert f"schema version {SCHEMA_VERSION} (created as version 1, migrated" in done.stdout

    with Store.open(path, read_only=True) as store:
        versions = store.sql("SELECT version FROM schema_info ORDER BY version")
        assert versions["version"].tolist() == [1, SCHEMA_VERSION]
        with store.cursor() as cursor:  # every v1 column of every row, in the same order
            for name, rows in before.items():
                columns = ", ".join(c.name for c in columns_at(TABLES[name], 1))
                after = cursor.execute(f"SELECT {columns} FROM {name} ORDER BY rowid").fetchall()
                assert after == rows, name
        kinds = store.sql("SELECT DISTINCT kind FROM book_deltas")["kind"].tolist()
        assert kinds == ["delta"]  # v1 never stored the snapshots it applied
        ordinals = store.sql(
            " UNION ALL ".join(
                f"SELECT '{t.name}' AS tbl, ingest_seq, recv_ts AS at FROM {t.name}"
                if "recv_ts" in t.column_names
                else f"SELECT '{t.name}', ingest_seq, ts FROM {t.name}"
                for t in ORDERED_TABLES
            )
        )
    assert ordinals["ingest_seq"].notna().all()
    # One ordinal per event: a book message's rows share theirs, no two tables share one.
    assert ordinals.groupby("ingest_seq")["tbl"].nunique().max() == 1
    events = ordinals.groupby("ingest_seq")["at"].min().sort_index()
    assert events.is_monotonic_increasing  # numbered in receive order
    assert events.index.tolist() == list(range(1, len(events) + 1))

    again = workbench("migrate", "--db", str(path))  # already current: nothing happens twice
    assert again.returncode == 0 and "version 2 (created as version 1" in again.stdout
    with Store.open(path) as store:  # a writer continues the numbering
        store.writer.submit(
            "quality_events",
            {"exchange": ["sim"], "symbol": [None], "ts": [0], "kind": ["gap"], "detail": ["{}"]},
        )
        store.flush()
        last = store.sql("SELECT max(ingest_seq) AS n FROM quality_events")["n"].item()
    assert last == len(events) + 1


def test_a_recording_rebuilds_its_books_from_the_deltas_alone(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    done = workbench(
        "record", "sim", "BTC-USD", "ETH-USD", "--db", str(db), "--duration", "4",
        "--seed", "4", "--rate", "150", "--drop-every", "1.5", "--gap", "0.01",
        "--duplicate", "0.02",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    with Store.open(db, read_only=True) as store:
        deltas = store.sql(
            "SELECT symbol, kind, side, price, size, ingest_seq FROM book_deltas "
            "ORDER BY ingest_seq, rowid"
        )
        # the last snapshot written while each book was in sync
        stored = store.sql(
            "SELECT symbol, side, level, price, size, ingest_seq FROM book_snapshots "
            "WHERE ingest_seq = (SELECT max(ingest_seq) FROM book_snapshots b "
            "WHERE b.symbol = book_snapshots.symbol AND b.valid) ORDER BY symbol, side, level"
        )
        resets = store.sql(
            "SELECT symbol, count(*) AS n FROM book_deltas WHERE kind = 'reset' GROUP BY symbol"
        )
        resyncs = store.sql(
            "SELECT symbol, count(*) AS n FROM quality_events WHERE kind = 'resync' GROUP BY symbol"
        )
    # Every applied snapshot, initial and after each resync, is in the delta stream.
    assert dict(resets.itertuples(index=False)) == dict(resyncs.itertuples(index=False))
    assert resets["n"].min() >= 2  # the drops and gaps forced resyncs

    assert sorted(stored["symbol"].unique()) == ["BTC-USD", "ETH-USD"]
    for symbol, snapshot in stored.groupby("symbol"):
        # The book as of the snapshot's ingest_seq, from the deltas alone.
        book: dict[str, dict[float, float]] = {}
        before = deltas[
            (deltas["symbol"] == symbol) & (deltas["ingest_seq"] < snapshot["ingest_seq"].iloc[0])
        ]
        for kind, side, price, size in before[["kind", "side", "price", "size"]].itertuples(
            index=False
        ):
            if kind == "reset":
                book = {"bid": {}, "ask": {}}
            elif size > 0:
                book[side][price] = size
            else:
                book[side].pop(price, None)
        for side, levels in snapshot.groupby("side"):
            best = sorted(book[str(side)].items(), reverse=side == "bid")
            expected = list(zip(levels["price"], levels["size"], strict=True))
            assert best[: len(expected)] == expected, (symbol, side)
