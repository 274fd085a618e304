"""workbench: live market data into DuckDB from background threads, for notebooks and headless runs.

The public API is exactly ``__all__`` (a test guards it); everything else is internal.
``load_ipython_extension``/``unload_ipython_extension`` are here for ``%load_ext workbench``
and import IPython only when called, so headless imports stay light; ``validate``,
``ValidationReport`` and ``Thresholds`` import the validation gate (and statsmodels, half a
second) when first used.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from workbench.analysis.bars import mid_spread, resample
from workbench.analysis.csv_import import read_ohlcv_csv
from workbench.backtest import BacktestResult, SweepResult, backtest, sweep
from workbench.core.book import OrderBook
from workbench.core.clean import CleanConfig, CleanReport, clean_frame
from workbench.core.fills import BarFills
from workbench.core.indicators import (
    StreamingEMA,
    StreamingReturns,
    StreamingSMA,
    StreamingVol,
    ema,
    returns,
    rolling_vol,
    sma,
)
from workbench.errors import (
    FeedError,
    ProtocolError,
    SimulatorError,
    StoreError,
    StrategyError,
    UsageError,
    WorkbenchError,
)
from workbench.events import (
    Applied,
    Bar,
    BookChange,
    BookDelta,
    BookSnapshot,
    BookTop,
    Fill,
    Heartbeat,
    Order,
    QualityEvent,
    Quote,
    Trade,
)
from workbench.feeds.feed import Feed
from workbench.feeds.status import FeedStatus
from workbench.feeds.subscription import SubscriberStatus, Subscription
from workbench.replay import Replay, replay
from workbench.sim import SimConfig, SimServer
from workbench.sim.synth_command import synthesize
from workbench.store import DEFAULT_DB, Store
from workbench.strategy import Param, Strategy
from workbench.workbench import Workbench, open

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

    from workbench.validation.config import Thresholds
    from workbench.validation.report import ValidationReport, validate

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_DB",
    "Applied",
    "BacktestResult",
    "Bar",
    "BarFills",
    "BookChange",
    "BookDelta",
    "BookSnapshot",
    "BookTop",
    "CleanConfig",
    "CleanReport",
    "Feed",
    "FeedError",
    "FeedStatus",
    "Fill",
    "Heartbeat",
    "Order",
    "OrderBook",
    "Param",
    "ProtocolError",
    "QualityEvent",
    "Quote",
    "Replay",
    "SimConfig",
    "SimServer",
    "SimulatorError",
    "Store",
    "StoreError",
    "Strategy",
    "StrategyError",
    "StreamingEMA",
    "StreamingReturns",
    "StreamingSMA",
    "StreamingVol",
    "SubscriberStatus",
    "Subscription",
    "SweepResult",
    "Thresholds",
    "Trade",
    "UsageError",
    "ValidationReport",
    "Workbench",
    "WorkbenchError",
    "__version__",
    "backtest",
    "clean_frame",
    "ema",
    "mid_spread",
    "open",
    "read_ohlcv_csv",
    "replay",
    "resample",
    "returns",
    "rolling_vol",
    "sma",
    "sweep",
    "synthesize",
    "validate",
]

_LAZY = {
    "Thresholds": "workbench.validation.config",
    "ValidationReport": "workbench.validation.report",
    "validate": "workbench.validation.report",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'workbench' has no attribute {name!r}")


def load_ipython_extension(ipython: InteractiveShell) -> None:
    """``%load_ext workbench``: the ``%wb`` magics (see ``%wb?``)."""
    from workbench.notebook.extension import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: InteractiveShell) -> None:
    """``%unload_ext workbench``: close widgets, stop feeds and simulators, close the database."""
    from workbench.notebook.extension import unload_ipython_extension as unload

    unload(ipython)
