"""Incremental Hive-partitioned Parquet export: how a second process reads a live recording.

DuckDB lets one process own a file, so the owner (the recorder, or the notebook's kernel)
writes what it committed to ``DIR/<table>/exchange=…/symbol=…/date=…/part-LO-HI-N.parquet``
and anyone queries ``read_parquet('DIR/trades/**/*.parquet', hive_partitioning = true)``.

Each run exports the rows appended since the previous one: the recorded tables are
append-only, so a table's ``rowid`` range ``[LO, HI)`` names exactly the new rows, all read
in one transaction (one consistent snapshot). Files are written under ``DIR/.staging`` and
renamed into place, so a reader never sees a half-written file; ``DIR/_export.json`` holds
each table's ``HI`` and is replaced atomically after the files. A run cut short before its
manifest leaves files whose ``LO`` is at or past the manifest's mark: the next run deletes
them before writing the range again, so no row is exported twice or skipped.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import threading
from collections.abc import Iterable
from pathlib import Path

import duckdb

from workbench.errors import StoreError, UsageError
from workbench.store.schema import TABLES
from workbench.store.store import Store
from workbench.threads import SupervisedThread, ThreadError, join_all

log = logging.getLogger(__name__)

MANIFEST = "_export.json"
STAGING = ".staging"
_PART = re.compile(r"part-(\d+)-(\d+)-\d+\.parquet")


def export_parquet(
    store: Store, directory: str | Path, tables: Iterable[str] | None = None
) -> dict[str, int]:
    """Append the rows committed since the last export of ``directory``; rows written per table."""
    names = list(TABLES) if tables is None else list(tables)
    unknown = [name for name in names if name not in TABLES]
    if unknown:
        raise UsageError(f"unknown tables {unknown}; tables: {', '.join(TABLES)}")
    store.flush()
    root = Path(directory).expanduser().resolve()
    root.mkdir(parents=True, exist_ok=True)
    marks = read_manifest(root)
    staging = root / STAGING
    shutil.rmtree(staging, ignore_errors=True)
    written: dict[str, int] = {}
    with store.cursor() as cursor:
        cursor.execute("BEGIN TRANSACTION")  # every table from the same snapshot
        for name in names:
            low = marks.get(name, 0)
            _drop_unrecorded(root / name, low)
            row = cursor.execute(f"SELECT coalesce(max(rowid) + 1, 0) FROM {name}").fetchone()
            high = int(row[0]) if row else 0
            written[name] = 0
            if high > low:
                written[name] = _copy(cursor, name, low, high, staging / name, root / name)
            marks[name] = max(high, low)
        cursor.execute("COMMIT")
    _write_manifest(root, marks)
    shutil.rmtree(staging, ignore_errors=True)
    return written


def read_manifest(root: Path) -> dict[str, int]:
    """Each table's exported rowid mark; an unreadable manifest is an error, never a restart
    from zero (that would export every row again)."""
    path = root / MANIFEST
    if not path.exists():
        return {}
    try:
        marks = json.loads(path.read_text())["tables"]
        return {str(name): int(mark) for name, mark in marks.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StoreError(
            f"{path} is not a workbench export manifest ({exc}); export into a new directory, "
            f"or delete {root} to export everything again"
        ) from exc


def _write_manifest(root: Path, marks: dict[str, int]) -> None:
    tmp = root / f"{MANIFEST}.tmp"
    tmp.write_text(json.dumps({"tables": marks}, indent=1, sort_keys=True))
    os.replace(tmp, root / MANIFEST)


def _drop_unrecorded(table_dir: Path, mark: int) -> None:
    """Delete files of a run that ended before its manifest (their rows are exported again)."""
    if not table_dir.is_dir():
        return
    for path in table_dir.rglob("part-*.parquet"):
        match = _PART.fullmatch(path.name)
        if match and int(match.group(1)) >= mark:
            log.warning("removing %s, left by an export that did not finish", path)
            path.unlink()


def _copy(
    cursor: duckdb.DuckDBPyConnection, name: str, low: int, high: int, staged: Path, final: Path
) -> int:
    table = TABLES[name]
    dated = table.time_column is not None
    keys = ", ".join((*table.partition_by, *(["date"] if dated else [])))
    date = f", CAST({table.time_column} AS DATE) AS date" if dated else ""
    staged.mkdir(parents=True)
    query = f"SELECT *{date} FROM {name} WHERE rowid >= {low} AND rowid < {high}"
    cursor.execute(
        f"COPY ({query}) TO ? (FORMAT parquet, PARTITION_BY ({keys}), "
        f"FILENAME_PATTERN 'part-{low}-{high}-{{i}}')",
        [str(staged)],
    )
    for path in staged.rglob("*.parquet"):
        target = final / path.relative_to(staged)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(path, target)  # atomic: a reader sees the whole file or none
    return high - low


class PeriodicExport:
    """Exports ``store`` to ``directory`` every ``every`` seconds on a supervised thread,
    and once more on :meth:`stop`, so the export ends with everything committed."""

    def __init__(self, store: Store, directory: str | Path, every: float) -> None:
        if every <= 0:
            raise UsageError(f"the export interval must be > 0 s, got {every:g}")
        self.store = store
        self.directory = Path(directory)
        read_manifest(self.directory.expanduser().resolve())  # a bad DIR fails now, not later
        self.every = every
        self.rows = 0
        self.runs = 0
        self.last_error: str | None = None
        self._stop = threading.Event()
        self._thread = SupervisedThread(
            self._loop,
            name=f"wb-export-{self.directory.name}",
            restart=True,
            on_error=self._failed,
            stop=self._stop,
        )

    def start(self) -> PeriodicExport:
        self._thread.start()
        return self

    def run_once(self) -> None:
        written = export_parquet(self.store, self.directory)
        self.rows += sum(written.values())
        self.runs += 1

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread, then export the rest (an error there is raised, not recorded)."""
        if not self.stop_thread(timeout):
            self.run_once()

    def stop_thread(self, timeout: float = 10.0) -> list[str]:
        """Stop the thread without a last run; the names of threads still alive (logged)."""
        self._stop.set()
        return join_all([self._thread], timeout, owner="parquet export")

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self.run_once()

    def _failed(self, error: ThreadError) -> None:
        self.last_error = str(error)
