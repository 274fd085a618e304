"""Imports point inward (docs/architecture.md): pure layers never import I/O layers, and the
API is curated."""

from __future__ import annotations

import ast
from pathlib import Path

import workbench

PKG = Path(workbench.__file__).resolve().parent
PURE = ("core", "venues")
IO_LAYERS = (
    "workbench.feeds",
    "workbench.store",
    "workbench.sim",
    "workbench.notebook",
    "workbench.runner",
    "workbench.cli",
    "workbench.workbench",
    "workbench.threads",
)
PURE_FORBIDDEN_STDLIB = ("socket", "threading", "sqlite3", "duckdb", "websocket", "ipywidgets")


def imports_of(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_pure_layers_import_no_io_layer() -> None:
    offenders = []
    for layer in PURE:
        for path in (PKG / layer).rglob("*.py"):
            for name in imports_of(path):
                if name.startswith(IO_LAYERS) or name.split(".")[0] in PURE_FORBIDDEN_STDLIB:
                    offenders.append(f"{path.relative_to(PKG)} imports {name}")
    assert offenders == []


def test_public_api_is_exactly_the_curated_list() -> None:
    assert sorted(workbench.__all__) == sorted(
        [
            "DEFAULT_DB",
            "Applied",
            "BookChange",
            "BookDelta",
            "BookTop",
            "QualityEvent",
            "Replay",
            "SubscriberStatus",
            "Subscription",
            "replay",
            "CleanConfig",
            "CleanReport",
            "StreamingEMA",
            "StreamingReturns",
            "StreamingSMA",
            "StreamingVol",
            "clean_frame",
            "ema",
            "mid_spread",
            "read_ohlcv_csv",
            "resample",
            "returns",
            "rolling_vol",
            "sma",
            "BookSnapshot",
            "Feed",
            "FeedError",
            "FeedStatus",
            "Heartbeat",
            "OrderBook",
            "ProtocolError",
            "Quote",
            "SimConfig",
            "SimServer",
            "SimulatorError",
            "Store",
            "StoreError",
            "Trade",
            "UsageError",
            "Workbench",
            "WorkbenchError",
            "__version__",
            "open",
            "BacktestResult",
            "backtest",
            "BarFills",
            "StrategyError",
            "Bar",
            "Fill",
            "Order",
            "Param",
            "Strategy",
            "SweepResult",
            "sweep",
            "synthesize",
            "Thresholds",
            "ValidationReport",
            "validate",
        ]
    )
    for name in workbench.__all__:
        assert hasattr(workbench, name), name


def test_every_error_derives_from_the_root() -> None:
    for name in (
        "FeedError",
        "ProtocolError",
        "SimulatorError",
        "StoreError",
        "StrategyError",
        "UsageError",
    ):
        assert issubclass(getattr(workbench, name), workbench.WorkbenchError)
