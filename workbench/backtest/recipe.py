"""What a backtest or a sweep ran, kept with its result so that it can be run again changed.

A validation gate re-runs a strategy many times with one thing changed: the bars truncated or
perturbed (look-ahead), cut into folds (walk-forward), the costs doubled (cost stress). The
:class:`Recipe` a result carries is everything that run needs, so ``validate(result)`` asks
for nothing the result does not already know.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.core.fills import BarFills
from workbench.errors import UsageError
from workbench.strategy.base import Strategy
from workbench.strategy.registry import find_strategy

if TYPE_CHECKING:
    from workbench.backtest.result import BacktestResult
    from workbench.backtest.sweep import SweepResult

StrategySpec = str | type[Strategy]


@dataclass(frozen=True)
class Recipe:
    """A strategy (a name, ``file.py:Class`` or a class) with its ``params``, over ``bars`` of
    ``interval``, filled by ``fills`` from ``cash``, in ``mode``, with ``exclude`` windows."""

    strategy: StrategySpec
    params: Mapping[str, object]
    bars: pd.DataFrame = field(repr=False)
    interval: str
    fills: BarFills
    cash: float
    mode: str
    exclude: pd.DataFrame | None = field(default=None, repr=False)

    def but(self, **changes: Any) -> Recipe:
        """This recipe with ``changes`` (any of its fields)."""
        return dataclasses.replace(self, **changes)

    def make(self) -> Strategy:
        """A fresh instance of the strategy with the recipe's params."""
        cls = find_strategy(self.strategy)
        try:
            return cls(**self.params)
        except TypeError as exc:  # an __init__ of its own, taking more than its Params
            raise UsageError(
                f"{cls.name} cannot be made again from its parameters ({exc}); declare what "
                "it takes as Params so that it can be re-run"
            ) from None

    def backtest(self) -> BacktestResult:
        """The backtest this recipe describes."""
        from workbench.backtest.run import backtest

        return backtest(
            self.make(),
            self.bars,
            interval=self.interval,
            fills=self.fills,
            cash=self.cash,
            mode=self.mode,
            exclude=self.exclude,
        )

    def sweep(self, grid: Mapping[str, object], **options: Any) -> SweepResult:
        """A sweep of ``grid`` over this recipe's bars, costs and mode, the params the grid
        leaves out held at the recipe's (``options``: those of
        :func:`~workbench.backtest.sweep.sweep`, e.g. ``n_jobs``)."""
        from workbench.backtest.sweep import sweep

        held = {name: [value] for name, value in self.params.items() if name not in grid}
        return sweep(
            self.strategy,
            {**held, **grid},
            self.bars,
            interval=self.interval,
            fills=self.fills,
            cash=self.cash,
            mode=self.mode,
            exclude=self.exclude,
            **options,
        )
