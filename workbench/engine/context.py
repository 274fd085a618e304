"""The Context: a strategy's only window on the market, its account and its orders.

Every callback gets it. It submits orders (checked here, so a mistake fails where it is
made), answers for the account as of the current event, gives indicators over the data
seen so far, and keeps the strategy's decision log. The engine behind it (an
:class:`Engine`: the bar engine, or the trade/book engine of :mod:`workbench.engine.ticks`)
decides where orders go (the simulated broker in a backtest) and where time comes from.
What only one kind of engine has — bar columns for indicators, an order book and timers for
the trade/book one — the other refuses with a UsageError that says what to use instead.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt

from workbench.core import indicators
from workbench.errors import UsageError
from workbench.events import Order, OrderType, Side, TimeInForce

if TYPE_CHECKING:
    from workbench.core.book import OrderBook
    from workbench.core.clock import Clock
    from workbench.core.portfolio import Portfolio

INDICATORS: dict[str, Callable[..., Any]] = {
    "sma": indicators.sma,
    "ema": indicators.ema,
    "vol": indicators.rolling_vol,
    "returns": indicators.returns,
}
"""Indicators by name (see :mod:`workbench.core.indicators`); ``ctx.indicator`` also takes
a function of a float array (and arguments) returning an array of the same length."""

_TYPES = ("market", "limit", "stop")
_TIFS = ("gtc", "ioc", "post_only")


KEEP = 1_000
"""Values a series holds by default: the newest ``keep`` (ask for more with ``keep=``)."""


class Series(deque[float]):
    """Values up to now, read backwards: ``s[-1]`` is the value as of the current bar,
    ``s[-2]`` the one before; NaN where the data does not reach back that far. The engine
    appends each bar's value as the bar closes, so a value from the future is never in it:
    look-ahead is impossible, not merely checked. Indexing is a deque's, in C."""

    def __init__(self, past: Sequence[float], keep: int) -> None:
        if isinstance(keep, bool) or not isinstance(keep, int) or keep < 1:
            raise UsageError(f"keep must be a positive number of values, got {keep!r}")
        padding = [math.nan] * max(0, keep - len(past))
        super().__init__(padding + list(past[-keep:]), maxlen=keep)


class Engine(Protocol):
    """What a Context asks of the engine behind it."""

    @property
    def symbol(self) -> str: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def portfolio(self) -> Portfolio: ...

    @property
    def last_price(self) -> float:
        """The price the account is marked at now."""
        ...

    def working_orders(self) -> list[Order]: ...

    def submit(
        self,
        side: Side,
        size: float | None,
        target: float | None,
        type: OrderType,
        price: float | None,
        tif: TimeInForce,
    ) -> Order:
        """Take an order the Context has checked."""
        ...

    def cancel(self, client_order_id: str, reason: str) -> bool:
        """Cancel a working order; False if it was no longer working."""
        ...

    def indicator(
        self, function: Callable[..., Any], args: tuple[Any, ...], source: str, keep: int
    ) -> Series:
        """A series of ``function(column, *args)`` over the bars' ``source`` column, each
        value shown once its bar has closed (UsageError from an engine without bars)."""
        ...

    def history(self, source: str, keep: int) -> Series:
        """The bars' ``source`` column as a series (UsageError from an engine without bars)."""
        ...

    def order_book(self) -> OrderBook:
        """The book as it stands now (UsageError from an engine without one)."""
        ...

    def timer(self, at_us: int) -> None:
        """Call ``on_timer`` once the clock reaches ``at_us`` (UsageError without timers)."""
        ...


def computed(
    function: Callable[..., Any], column: npt.NDArray[np.float64], args: tuple[Any, ...]
) -> npt.NDArray[np.float64]:
    """``function(column, *args)`` as float64, refused unless one value per bar."""
    values = np.asarray(function(column, *args), dtype=np.float64)
    if values.shape != column.shape:
        raise UsageError(
            f"indicator {getattr(function, '__name__', function)!r} returned "
            f"{values.shape[0] if values.ndim else 'a scalar'} values for {len(column)} bars"
        )
    return values


def client_order_id(strategy: str, number: int) -> str:
    """The id of a run's ``number``-th order (from 1): the same decisions give the same ids
    in every mode and on every rerun, what a restart or a parity report matches orders by."""
    return f"{strategy}-{number}"


class Context:
    """See the module docstring. Amounts are in the quote currency, sizes in base units."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self.symbol = engine.symbol
        self.decisions: list[tuple[int, str, dict[str, Any]]] = []

    # -- time and account ---------------------------------------------------------------------
    @property
    def clock(self) -> Clock:
        return self._engine.clock

    @property
    def now(self) -> int:
        """The current time on the Clock, µs since the epoch (a bar is seen at its close)."""
        return self._engine.clock.time_us()

    @property
    def position(self) -> float:
        return self._engine.portfolio.position

    @property
    def cash(self) -> float:
        return self._engine.portfolio.cash

    @property
    def equity(self) -> float:
        """Cash plus the position at the last price seen."""
        return self._engine.portfolio.equity(self._engine.last_price)

    @property
    def open_orders(self) -> list[Order]:
        return self._engine.working_orders()

    @property
    def book(self) -> OrderBook:
        """The order book as it stands now, with every event up to now applied (trade/book
        mode; read it, never change it)."""
        return self._engine.order_book()

    def timer(self, seconds: float) -> int:
        """Call the strategy's ``on_timer(ctx, ts)`` once, at ``seconds`` from now: when the
        clock passes that time, before the first event stamped later (trade/book mode).
        Returns that time, µs. Call it again from ``on_timer`` to repeat: the clock then
        reads the timer's own time, so the period does not drift."""
        if not (_finite(seconds) and seconds > 0):
            raise UsageError(f"a timer needs a positive number of seconds, got {seconds!r}")
        at = self.now + max(1, round(seconds * 1e6))
        self._engine.timer(at)
        return at

    # -- data ---------------------------------------------------------------------------------
    def indicator(
        self,
        name: str | Callable[..., Any],
        *args: Any,
        source: str = "close",
        keep: int = KEEP,
    ) -> Series:
        """An indicator over ``source`` (``sma``, ``ema``, ``vol``, ``returns`` or a function
        ``f(values, *args)`` of the whole column), e.g. ``ctx.indicator("sma", 20)``."""
        function = INDICATORS.get(name) if isinstance(name, str) else name
        if function is None:
            raise UsageError(
                f"unknown indicator {name!r}; choose from {', '.join(INDICATORS)}, "
                "or pass a function"
            )
        return self._engine.indicator(function, args, source, keep)

    def history(self, source: str = "close", keep: int = KEEP) -> Series:
        """The bars' ``source`` column up to now."""
        return self._engine.history(source, keep)

    # -- orders -------------------------------------------------------------------------------
    def submit(
        self,
        side: Side,
        size: float | None = None,
        *,
        target: float | None = None,
        type: OrderType = "market",
        price: float | None = None,
        tif: TimeInForce = "gtc",
    ) -> Order:
        """Submit an order of ``size`` base units, or one that brings the position to
        ``target`` × equity (sized when it fills); ``price`` for limit and stop orders."""
        if side not in ("buy", "sell"):
            raise UsageError(f"side must be 'buy' or 'sell', got {side!r}")
        if type not in _TYPES:
            raise UsageError(f"order type must be one of {', '.join(_TYPES)}, got {type!r}")
        if tif not in _TIFS:
            raise UsageError(f"tif must be one of {', '.join(_TIFS)}, got {tif!r}")
        if (size is None) == (target is None):
            raise UsageError("give an order either a size or a target, not both or neither")
        if size is not None and not (_finite(size) and size > 0):
            raise UsageError(f"an order's size must be a positive number, got {size!r}")
        if target is not None and not _finite(target):
            raise UsageError(f"a target must be a finite fraction of equity, got {target!r}")
        if type == "market":
            if price is not None:
                raise UsageError("a market order takes no price (use type='limit')")
            if tif != "gtc":
                raise UsageError(f"tif applies to limit orders, not to a market order ({tif!r})")
        elif price is None or not (_finite(price) and price > 0):
            raise UsageError(f"a {type} order needs a positive price, got {price!r}")
        elif type == "stop" and tif != "gtc":
            raise UsageError("a stop order rests until it triggers: tif must be 'gtc'")
        return self._engine.submit(side, size, target, type, price, tif)

    def buy(self, size: float, **kwargs: Any) -> Order:
        return self.submit("buy", size, **kwargs)

    def sell(self, size: float, **kwargs: Any) -> Order:
        return self.submit("sell", size, **kwargs)

    def target(self, fraction: float, **kwargs: Any) -> Order | None:
        """Move the position to ``fraction`` of equity (1 all in long, 0 flat, -1 all in
        short); None when it is already there."""
        equity = self.equity
        wanted = fraction * equity - self.position * self._engine.last_price
        if not wanted or abs(wanted) <= 1e-9 * max(abs(equity), 1.0):
            return None
        return self.submit("buy" if wanted > 0 else "sell", target=fraction, **kwargs)

    def close(self) -> Order | None:
        """Flatten the position: sell what is held, buy back what is short."""
        position = self.position
        if not position:
            return None
        return self.submit("sell" if position > 0 else "buy", abs(position))

    def cancel(self, order: Order | str) -> bool:
        """Cancel a working order; False if it was no longer working."""
        client_order_id = order if isinstance(order, str) else order.client_order_id
        return self._engine.cancel(client_order_id, "cancelled by the strategy")

    def cancel_all(self) -> int:
        return sum(self.cancel(order) for order in self.open_orders)

    def log(self, message: str, **fields: Any) -> None:
        """Write a line in the decision log, stamped with the current time."""
        self.decisions.append((self.now, message, fields))


def _finite(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
