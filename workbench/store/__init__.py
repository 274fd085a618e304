"""DuckDB storage: the schema, a batched columnar writer thread, readers and Parquet export.

Feed threads fill a :class:`TableBatch` per table and hand it to ``store.writer.submit``;
notebooks and the runner read with ``store.sql`` or their own ``store.cursor()``.
"""

from workbench.store.batch import TableBatch
from workbench.store.export import PeriodicExport, export_parquet
from workbench.store.schema import (
    QUALITY_KINDS,
    RAW_LIMIT,
    SCHEMA_VERSION,
    TABLES,
    Column,
    Table,
    describe,
    raw_text,
)
from workbench.store.store import DEFAULT_DB, Store
from workbench.store.writer import StoreWriter, WriterStats

__all__ = [
    "DEFAULT_DB",
    "QUALITY_KINDS",
    "RAW_LIMIT",
    "SCHEMA_VERSION",
    "TABLES",
    "Column",
    "PeriodicExport",
    "Store",
    "StoreWriter",
    "Table",
    "TableBatch",
    "WriterStats",
    "describe",
    "export_parquet",
    "raw_text",
]
