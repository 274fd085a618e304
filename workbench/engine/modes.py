"""The two ways to run a bar strategy: its callbacks, or its ``signals()`` vectorized."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from workbench.core.fills import BarFills
from workbench.engine.bars import BarEngine, Run
from workbench.engine.data import BarData
from workbench.engine.vectorized import Execution, execute
from workbench.errors import StrategyError, UsageError
from workbench.strategy.base import Strategy

MODES = ("event", "vectorized")


def check_mode(mode: str, strategy: type[Strategy]) -> None:
    if mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if mode == "vectorized" and not strategy.has_signals():
        raise UsageError(
            f"{strategy.name} has no signals(), which mode='vectorized' runs; use mode='event'"
        )


def simulate(
    strategy: Strategy, data: BarData, fills: BarFills, *, cash: float, mode: str = "event"
) -> Run:
    """One run of ``strategy`` over ``data``: ``mode="event"`` calls its callbacks bar by
    bar (:class:`BarEngine`); ``"vectorized"`` executes what its ``signals()`` decide
    (:mod:`workbench.engine.vectorized`): the same orders, fills and account."""
    check_mode(mode, type(strategy))
    if mode == "event":
        return BarEngine(strategy, data, fills, cash=cash).run()
    return vectorized(strategy, data, fills, cash=cash).to_run()


def vectorized(strategy: Strategy, data: BarData, fills: BarFills, *, cash: float) -> Execution:
    """``strategy.signals()`` over ``data``, checked, and executed."""
    if not len(data):
        raise UsageError("no bars to run on")
    try:
        decided = strategy.signals(data.frame)
    except Exception as exc:
        raise StrategyError(
            f"strategy {strategy.name} raised {type(exc).__name__}: {exc} in signals"
        ) from exc
    targets: npt.NDArray[np.float64] = np.asarray(decided, dtype=np.float64)
    if targets.shape != (len(data),):
        raise StrategyError(
            f"strategy {strategy.name}: signals() gave {targets.size} values for {len(data)} bars"
        )
    if np.isinf(targets).any():
        raise StrategyError(f"strategy {strategy.name}: signals() gave an infinite target")
    return execute(
        data, targets, warmup=strategy.warmup(), fills=fills, cash=cash, strategy=strategy.name
    )
