"""The one kernel: drives a strategy from an event source on a Clock to a broker."""

from workbench.engine.bars import BarEngine, OrderRecord, Run
from workbench.engine.context import Context, Series
from workbench.engine.data import BarData
from workbench.engine.modes import MODES, simulate
from workbench.engine.ticks import TickEngine

__all__ = [
    "MODES",
    "BarData",
    "BarEngine",
    "Context",
    "OrderRecord",
    "Run",
    "Series",
    "TickEngine",
    "simulate",
]
