"""``backtest_ticks()``: a strategy over a recording's trades and book, on the trade/book engine."""

from __future__ import annotations

from collections.abc import Mapping
from operator import attrgetter
from pathlib import Path

from workbench.backtest.result import BacktestResult, build_result
from workbench.core.bookfills import BookFills
from workbench.core.intervals import Interval, parse_interval
from workbench.core.portfolio import starting_cash
from workbench.engine.ticks import TickEngine
from workbench.errors import UsageError
from workbench.replay import TimeLike, recorded_markets, replay
from workbench.store import Store
from workbench.strategy.base import Strategy
from workbench.strategy.registry import make_strategy


def backtest_ticks(
    strategy: str | type[Strategy] | Strategy,
    db: str | Path | Store,
    *,
    symbol: str,
    exchange: str | None = None,
    start: TimeLike | None = None,
    end: TimeLike | None = None,
    params: Mapping[str, object] | None = None,
    fills: BookFills | None = None,
    cash: float = 10_000.0,
    mark_interval: str | Interval = "1s",
    bar_interval: str | Interval | None = None,
) -> BacktestResult:
    """Run ``strategy`` (a name, ``file.py:Class``, a class or an instance) with ``params``
    over the trades and book changes ``db`` (a recording's path, or its open Store) holds
    for ``symbol`` — on ``exchange``, needed when several have it — with receipt times from
    ``start`` (inclusive) to ``end`` (exclusive), from ``cash``, filled by ``fills`` (default:
    no fees, no latency). The account is marked every ``mark_interval`` (``"1s"`` to
    ``"1d"``): the result's ``equity`` rows and the metrics' periods. A bar strategy (one with
    ``on_bar``) gets bars of ``bar_interval`` built from the prints, closed on the clock. The
    rules are those of :mod:`workbench.engine.ticks`."""
    chosen = make_strategy(strategy, params)
    every = parse_interval(mark_interval)
    bar_us = None if bar_interval is None else parse_interval(bar_interval).micros
    cash = starting_cash(cash)
    model = fills or BookFills()
    venue = _exchange(db, symbol, exchange)
    replayed = replay(
        db, exchange=venue, symbols=[symbol], start=start, end=end, kinds=("trade", "book")
    ).__iter__()
    try:
        engine = TickEngine(
            chosen,
            map(attrgetter("event"), replayed),
            model,
            symbol=symbol,
            cash=cash,
            mark_interval_us=every.micros,
            bar_interval_us=bar_us,
        )
        run = engine.run()
    finally:
        replayed.close()  # a run stopped by an error closes its file here, not at collection
    return build_result(
        run,
        strategy=chosen.name,
        params=dict(chosen.params),
        interval=every.name,
        interval_seconds=every.seconds,
        fills_model=model,
    )


def _exchange(db: str | Path | Store, symbol: str, exchange: str | None) -> str:
    """The one exchange whose ``symbol`` the run replays."""
    found = [venue for venue, recorded in recorded_markets(db) if recorded == symbol]
    if exchange is not None and exchange not in found:
        raise UsageError(f"no trades or book changes for {symbol} on {exchange} in {db}")
    if exchange is not None:
        return exchange
    if not found:
        raise UsageError(f"no trades or book changes for {symbol} in {db}")
    if len(found) > 1:
        raise UsageError(f"{symbol} is recorded for {', '.join(found)}: choose an exchange")
    return found[0]
