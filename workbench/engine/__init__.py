"""The one kernel: drives a strategy from an event source on a Clock to a broker."""

from workbench.engine.bars import BarEngine, OrderRecord, Run
from workbench.engine.context import Context, Series

__all__ = ["BarEngine", "Context", "OrderRecord", "Run", "Series"]
