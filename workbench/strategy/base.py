"""The Strategy contract (version 1): what a strategy declares and which callbacks it gets.

A strategy declares its parameters as class attributes (:class:`~workbench.strategy.Param`),
how many bars it needs before it can decide (:meth:`Strategy.warmup`), and overrides the
callbacks it needs. Every callback gets the :class:`~workbench.engine.Context` — its only
window on the market and its account — so the same class runs in a backtest and, later, in
the headless runner, where only the engine's source, clock and broker differ::

    class SmaCross(Strategy):
        fast = Param(10, low=1)
        slow = Param(30, low=2)

        def warmup(self) -> int:
            return self.slow + 1

        def on_start(self, ctx):
            self.f, self.s = ctx.indicator("sma", self.fast), ctx.indicator("sma", self.slow)

        def on_bar(self, ctx, bar):
            if self.f[-2] <= self.s[-2] and self.f[-1] > self.s[-1]:
                ctx.target(1.0)

A bar backtest calls ``on_bar``. A trade/book backtest
(:func:`~workbench.backtest.backtest_ticks`) calls ``on_trade`` for every print,
``on_book`` for every book change and ``on_timer`` for each timer set with ``ctx.timer``,
and ignores ``warmup`` (a tick strategy counts what it has seen itself). Both call
``on_start``, ``on_fill`` and ``on_stop``.

Framework methods (``params``, ``describe``) are not callbacks; callbacks start with
``on_``. An exception in a callback becomes a :class:`~workbench.errors.StrategyError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from workbench.errors import UsageError
from workbench.strategy.params import Param

if TYPE_CHECKING:
    import numpy.typing as npt
    import pandas as pd

    from workbench.engine.context import Context
    from workbench.events import Bar, BookChange, Fill, Trade

API_VERSION = 1


class Strategy:
    """Base class of every strategy; see the module docstring."""

    api_version: ClassVar[int] = API_VERSION
    name: ClassVar[str] = ""
    """The registry name; defaults to the class name."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not cls.__dict__.get("name"):
            cls.name = cls.__name__

    def __init__(self, **params: object) -> None:
        declared = self.declared()
        unknown = sorted(set(params) - set(declared))
        if unknown:
            known = ", ".join(declared) or "none"
            raise UsageError(
                f"{self.name} has no parameter {', '.join(unknown)} (it takes: {known})"
            )
        self.params: dict[str, Any] = {
            name: param.check(params.get(name, param.default), self.name)
            for name, param in declared.items()
        }

    @classmethod
    def declared(cls) -> dict[str, Param[Any]]:
        """The class's parameters by name, in declaration order (base classes' first)."""
        found: dict[str, Param[Any]] = {}
        for klass in reversed(cls.__mro__):
            for key, value in vars(klass).items():
                if isinstance(value, Param):
                    found[key] = value
        return found

    @classmethod
    def describe(cls) -> str:
        """The strategy's name, its first docstring line and its parameters, for help texts."""
        summary = (cls.__doc__ or "").strip().splitlines()
        lines = [f"{cls.name}: {summary[0] if summary else ''}".rstrip(": ")]
        lines += [f"  {param.describe()}" for param in cls.declared().values()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{self.name}({args})"

    def warmup(self) -> int:
        """Bars seen before the first ``on_bar``: enough for the indicators it reads."""
        return 0

    def signals(self, bars: pd.DataFrame) -> pd.Series | npt.ArrayLike:
        """Optional, for ``mode="vectorized"``: the target position (a fraction of equity,
        as ``ctx.target`` takes it) decided at each bar's close, NaN where it decides
        nothing; one value per row of ``bars``, by position. It must decide what the
        callbacks decide, bar for bar, and the value at bar t may use only bars up to t."""
        raise NotImplementedError(f"{self.name} has no signals()")

    @classmethod
    def has_signals(cls) -> bool:
        return cls.signals is not Strategy.signals

    # Callbacks: each a no-op unless overridden.
    def on_start(self, ctx: Context) -> None:
        """Before the first event: declare indicators, set up state."""

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        """A bar closed (once the warm-up has passed)."""

    def on_trade(self, ctx: Context, trade: Trade) -> None:
        """A print of the market (trade/book mode), after the fills it gave our orders."""

    def on_book(self, ctx: Context, change: BookChange) -> None:
        """The book changed (trade/book mode); ``ctx.book`` already shows the change."""

    def on_timer(self, ctx: Context, ts: int) -> None:
        """A timer set with ``ctx.timer`` is due; ``ts`` (= ``ctx.now``) is its time, µs."""

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        """One of this strategy's orders (partly) filled."""

    def on_stop(self, ctx: Context) -> None:
        """After the last event."""
