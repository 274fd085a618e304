"""The no-look-ahead gate: honest strategies pass both tests in both modes; strategies that
peek at the next bar, or only once, fail both, with the first differing decision computed
here by hand; the decision bookkeeping around a cut (on_fill at the open of the first bar
cut off, on_stop, NaN in logs, stateful instances); the perturbation's bars; bad input."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from tests.helpers.bars import walk_bars
from workbench.backtest import backtest
from workbench.core.fills import BarFills
from workbench.engine import Context
from workbench.errors import StrategyError, UsageError
from workbench.events import Bar, Fill
from workbench.strategy import Param, SmaCross, Strategy
from workbench.validation.lookahead import (
    LookaheadCheck,
    check_lookahead,
    check_perturbation,
    check_prefix,
    default_cuts,
    perturb_bars,
)

MINUTE = pd.Timedelta(minutes=1)
MODES = ("event", "vectorized")


def bars_of(n: int, seed: int = 0) -> pd.DataFrame:
    """A seeded random walk with wicks and varying volume."""
    bars = walk_bars(n, seed, sigma=0.01, wick=0.002, symbol="BTC-USD")
    bars["volume"] = np.random.default_rng(seed + 100).uniform(1.0, 10.0, n)
    return bars


def close_of(bars: pd.DataFrame, bar: int) -> pd.Timestamp:
    return pd.Timestamp(bars["ts"].iloc[bar]) + MINUTE


# -- strategies ------------------------------------------------------------------------------
class NextClose(Strategy):
    """Buys when the next close is higher, sells when lower: it reads the future through an
    indicator function that is not causal, or ``shift(-1)`` in signals()."""

    def on_start(self, ctx: Context) -> None:
        self._next = ctx.indicator(lambda close: np.append(close[1:], np.nan))

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        upcoming = self._next[-1]
        if not math.isnan(upcoming):  # the guard a careful leak has
            ctx.submit("buy" if upcoming > bar.close else "sell", 1.0)

    def signals(self, bars: pd.DataFrame) -> pd.Series:
        close = bars["close"]
        upcoming = close.shift(-1)
        return (upcoming > close).astype(float).where(upcoming.notna())


class RarePeek(SmaCross):
    """sma_cross, except that on bar ``at`` alone it trades on the close 30 bars ahead."""

    name = "rare_peek"
    at = Param(0, low=0)
    AHEAD = 30

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        ahead = self.AHEAD
        self._ahead = ctx.indicator(lambda c: np.append(c[ahead:], np.full(ahead, np.nan)))
        self._bar = self.warmup() - 1

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        super().on_bar(ctx, bar)
        self._bar += 1
        later = self._ahead[-1]
        if self._bar == self.at and not math.isnan(later):
            ctx.submit("buy" if later > bar.close else "sell", 0.5)

    def signals(self, bars: pd.DataFrame) -> npt.NDArray[np.float64]:
        targets = super().signals(bars)
        close = bars["close"].to_numpy()
        if self.at + self.AHEAD < len(close):
            targets[self.at] = 0.5 if close[self.at + self.AHEAD] > close[self.at] else -0.5
        return targets


class Churn(Strategy):
    """Honest, and busy around every cut: buys above a short SMA; on the buy's fill (at the
    next open) places a take-profit limit and logs, NaN included; cancels and closes after
    three bars, logging a list it goes on growing; logs and orders in on_stop."""

    def on_start(self, ctx: Context) -> None:
        self._sma = ctx.indicator("sma", 3)
        self._held = 0
        self._exits: list[int] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if ctx.position == 0 and not ctx.open_orders and bar.close > self._sma[-1]:
            ctx.buy(1.0)
            ctx.log("enter", close=bar.close, spare=float("nan"))
        elif ctx.position > 0:
            self._held += 1
            if self._held >= 3:
                ctx.cancel_all()
                ctx.close()
                self._exits.append(bar.ts)
                ctx.log("timeout", held=self._held, exits=self._exits)

    def on_fill(self, ctx: Context, fill: Fill) -> None:
        if fill.side == "buy":
            self._held = 0
            ctx.sell(fill.size, type="limit", price=fill.price * 1.002)
            ctx.log("filled", price=fill.price, levels=[fill.price, float("nan")])

    def on_stop(self, ctx: Context) -> None:
        ctx.log("done", position=ctx.position)
        ctx.close()


class Counting(Strategy):
    """Honest, with state from ``__init__``: it counts the bars it has seen in a list, as a
    notebook strategy might, and trades on the count."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[int] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        self.seen.append(bar.ts)
        if len(self.seen) % 10 == 0:
            ctx.target(1.0 if len(self.seen) % 20 == 0 else 0.0)


class Fragile(Strategy):
    """Honest decisions, but its on_start reads bar 299 by number: fine on the 300 bars it
    is checked on, an IndexError once they are cut."""

    def on_start(self, ctx: Context) -> None:
        self._last = ctx.indicator(lambda c: np.full(len(c), c[299]))
        self._sma = ctx.indicator("sma", 5)

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if bar.close > self._sma[-1]:
            ctx.target(1.0)


# -- honest strategies pass ------------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "fills", [BarFills(), BarFills(fill_at="close", taker_fee_bps=10)], ids=["next_open", "close"]
)
@pytest.mark.parametrize("short", [False, True])
def test_sma_cross_passes_both_tests(mode: str, fills: BarFills, short: bool) -> None:
    bars = bars_of(600, seed=1)
    checks = check_lookahead(
        "sma_cross",
        bars,
        interval="1m",
        params={"fast": 5, "slow": 20, "short": short},
        fills=fills,
        mode=mode,
    )
    assert checks.passed
    for check in checks:
        assert check.passed and check.differences == () and check.first is None
        assert check.mode == mode
        assert check.cuts == default_cuts(600, 20)
        assert check.compared > 50  # not vacuous: many decisions were compared
        assert "passed" in check.description
    assert checks.perturbation.seed == 0 and checks.prefix.seed is None


def test_vol_breakout_with_stops_cancels_and_logs_passes() -> None:
    bars = bars_of(700, seed=2)
    params = {"lookback": 100, "window": 10, "volume_window": 10, "quantile": 0.8}
    ran = backtest("vol_breakout", bars, interval="1m", params=params)
    assert len(ran.orders) > 10 and len(ran.decisions) > 5  # it did trade and log
    checks = check_lookahead("vol_breakout", bars, interval="1m", params=params, cuts=8)
    assert checks.passed, checks.description
    assert checks.prefix.compared > 40


def test_orders_placed_on_the_fill_at_the_first_bar_cut_off_are_not_before_the_cut() -> None:
    """Churn's take-profit is placed in on_fill at the open of bar k, stamped with bar k-1's
    close: a cut keeping k bars must not count it (the truncated run cannot have it)."""
    bars = bars_of(300, seed=3)
    ran = backtest(Churn, bars, interval="1m")
    limits = ran.orders[ran.orders["type"] == "limit"]
    starts = bars["ts"].tolist()
    # Cuts right before the bars whose open filled a buy: the trickiest place.
    cuts = [starts.index(ts) for ts in ran.fills[ran.fills["side"] == "buy"]["ts"]][5:12]
    assert len(cuts) == 7
    for k in cuts:  # the full run did place a take-profit stamped at the cut's time
        assert (limits["created"] == close_of(bars, k - 1)).any()
    assert ran.decisions["message"].iloc[-1] == "done"  # on_stop logged
    checks = check_lookahead(Churn, bars, interval="1m", cuts=cuts)
    assert checks.passed, checks.description
    assert checks.prefix.cuts == tuple(cuts)


def test_a_stateful_instance_gets_a_fresh_copy_for_every_run() -> None:
    bars = bars_of(300, seed=4)
    strategy = Counting()
    checks = check_lookahead(strategy, bars, interval="1m")
    assert checks.passed, checks.description
    assert checks.prefix.compared > 0
    assert strategy.seen == []  # the caller's instance never ran


# -- strategies that look ahead fail ---------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_reading_the_next_close_fails_both_tests_at_every_cut(mode: str, seed: int) -> None:
    bars = bars_of(300, seed=seed)
    close = bars["close"].to_numpy()
    checks = check_lookahead(NextClose, bars, interval="1m", mode=mode, seed=seed)
    assert not checks.passed
    prefix, perturbed = checks
    # Default cuts keep 150, 180, 210, 240 and 270 of the 300 bars.
    assert prefix.cuts == perturbed.cuts == (150, 180, 210, 240, 270)
    for check in checks:
        assert not check.passed
        assert [d.cut for d in check.differences] == list(check.cuts)
        for difference in check.differences:  # each cut parts on its last bar kept
            assert difference.bar == difference.cut - 1
        first = check.first
        assert first is not None
        assert first.bar == 149 and first.time == close_of(bars, 149)
        assert first.cut_time == close_of(bars, 149)
        assert first.error is None and first.full is not None
        up = close[150] > close[149]
        if mode == "event":
            assert first.full.as_dict()["side"] == ("buy" if up else "sell")
            assert first.full.as_dict()["size"] == 1.0
        else:
            assert first.full.as_dict()["target"] == (1.0 if up else 0.0)
        assert first.full.bar == 149 and first.full.time == close_of(bars, 149)
        assert "failed: 5 of 5 cuts" in check.description
        assert str(first.time) in check.description
    # Truncated, the strategy saw no next close on bar 149 and decided nothing there.
    assert prefix.first is not None and prefix.first.other is None
    assert "the truncated run decided nothing" in prefix.first.description
    # Changed, the next close moved the other way: the opposite decision.
    other = perturbed.first.other if perturbed.first else None
    assert other is not None and other.bar == 149
    if mode == "event":
        assert other.as_dict()["side"] == ("sell" if up else "buy")
    else:
        assert other.as_dict()["target"] == (0.0 if up else 1.0)


@pytest.mark.parametrize("mode", MODES)
def test_a_single_peek_among_many_honest_decisions_still_fails(mode: str) -> None:
    """sma_cross(5, 20) on 400 bars: cuts keep 210, 248, 286, 324, 362. A peek on bar 247
    at bar 277 reaches across the cut at 248 alone; every other decision is honest."""
    bars = bars_of(400, seed=5)
    close = bars["close"].to_numpy()
    at = 20 + round(380 * 0.6) - 1
    assert at == 247
    params = {"fast": 5, "slow": 20, "at": at}
    checks = check_lookahead(RarePeek, bars, interval="1m", params=params, mode=mode)
    assert checks.prefix.cuts == (210, 248, 286, 324, 362)
    up = close[at + 30] > close[at]
    for check in checks:
        assert not check.passed
        assert len(check.differences) == 1  # one cut of five, one decision
        assert check.compared > 20  # among many that agreed
        first = check.first
        assert first is not None and first.cut == 248
        assert first.bar == at and first.time == close_of(bars, at)
        assert first.full is not None
        if mode == "event":
            assert first.full.as_dict() == {
                "side": "buy" if up else "sell",
                "type": "market",
                "size": 0.5,
                "tif": "gtc",
            }
        else:
            assert first.full.as_dict() == {"target": 0.5 if up else -0.5}
    # The mirrored future moves the other way from bar 247's close.
    other = checks.perturbation.first.other if checks.perturbation.first else None
    assert other is not None
    if mode == "event":
        assert other.as_dict()["side"] == ("sell" if up else "buy")
    else:
        assert other.as_dict()["target"] == (-0.5 if up else 0.5)
    # Without a cut across the peek, nothing shows: the check compares, it does not guess.
    assert check_lookahead(RarePeek, bars, interval="1m", params=params, cuts=[210, 286]).passed


def test_a_run_that_breaks_once_the_bars_are_cut_fails_the_prefix_test() -> None:
    bars = bars_of(300, seed=6)
    checks = check_lookahead(Fragile, bars, interval="1m")
    prefix = checks.prefix
    assert not prefix.passed and len(prefix.differences) == 5
    first = prefix.first
    assert first is not None and first.error is not None
    assert "IndexError" in first.error and first.bar == -1  # in on_start
    assert first.full is None and first.other is None
    assert "failed on bar -1" in first.description
    assert checks.perturbation.passed  # the same number of bars: it runs, and decides alike


def test_a_strategy_failing_on_the_full_bars_raises() -> None:
    class Broken(Strategy):
        def on_bar(self, ctx: Context, bar: Bar) -> None:
            raise RuntimeError("boom")

    with pytest.raises(StrategyError, match="boom"):
        check_prefix(Broken, bars_of(100), interval="1m")


def test_the_single_checks_match_check_lookahead() -> None:
    bars = bars_of(300, seed=7)
    both = check_lookahead(NextClose, bars, interval="1m", seed=3, cuts=3)
    assert check_prefix(NextClose, bars, interval="1m", cuts=3) == both.prefix
    assert check_perturbation(NextClose, bars, interval="1m", seed=3, cuts=3) == both.perturbation
    assert isinstance(both.prefix, LookaheadCheck) and both.prefix.test == "prefix"
    assert both.perturbation.test == "perturbation" and both.perturbation.seed == 3
    assert both.description == f"{both.prefix.description}\n{both.perturbation.description}"


# -- cuts ------------------------------------------------------------------------------------
def test_cuts_as_times_keep_the_bars_closed_by_then() -> None:
    bars = bars_of(300, seed=8)
    last = close_of(bars, 149)  # bar 149's close: 150 bars have closed
    check = check_prefix(
        NextClose,
        bars,
        interval="1m",
        cuts=[last, str(last + pd.Timedelta(seconds=90)), last.tz_localize("UTC") + 60 * MINUTE],
    )
    assert check.cuts == (150, 151, 210)
    assert check.cut_times == (last, last + MINUTE, last + 60 * MINUTE)
    assert check.first is not None and check.first.bar == 149


def test_default_cuts_fall_evenly_over_the_second_half_after_the_warm_up() -> None:
    assert default_cuts(200) == (100, 120, 140, 160, 180)
    assert default_cuts(400, 20) == (210, 248, 286, 324, 362)
    assert default_cuts(400, 20, 1) == (210,)
    assert default_cuts(10, 0) == (5, 6, 7, 8, 9)


# -- the perturbation ------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1])
def test_perturbed_bars_keep_the_past_and_change_a_consistent_future(seed: int) -> None:
    bars = bars_of(200, seed=9)
    bars["trades"] = np.arange(200)
    changed = perturb_bars(bars, 120, seed=seed)
    pd.testing.assert_frame_equal(changed.iloc[:120], bars.iloc[:120])
    assert changed["ts"].equals(bars["ts"]) and changed["symbol"].equals(bars["symbol"])
    after = changed.iloc[120:]
    assert (after["high"] >= np.maximum(after["open"], after["close"])).all()
    assert (after["low"] <= np.minimum(after["open"], after["close"])).all()
    assert (after["low"] > 0).all() and (after["volume"] > 0).all()
    for column in ("open", "high", "low", "close", "volume"):
        assert (after[column] != bars[column].iloc[120:]).all()
    # Every later move from the last close kept goes the other way.
    anchor = bars["close"].iloc[119]
    assert (np.sign(after["close"] - anchor) == -np.sign(bars["close"].iloc[120:] - anchor)).all()
    # Other columns are shuffled among the changed rows only.
    assert sorted(after["trades"]) == list(range(120, 200))
    assert not (after["trades"] == bars["trades"].iloc[120:]).all()
    pd.testing.assert_frame_equal(perturb_bars(bars, 120, seed=seed), changed)  # seeded
    assert not perturb_bars(bars, 120, seed=seed + 7).equals(changed)
    pd.testing.assert_frame_equal(bars, bars_of(200, seed=9).assign(trades=np.arange(200)))


# -- bad input -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"bars": bars_of(20)}, "too few for 5 cuts"),
        ({"bars": bars_of(33)}, "too few for 5 cuts"),
        ({"cuts": 0}, "positive number of cuts"),
        ({"cuts": -2}, "positive number of cuts"),
        ({"cuts": True}, "cuts must be"),
        ({"cuts": 2.5}, "cuts must be"),
        ({"cuts": "100"}, "cuts must be"),
        ({"cuts": []}, "no cuts given"),
        ({"cuts": [100, 100]}, "same bar"),
        ({"cuts": [30]}, "keeps 30 of the 200 bars"),
        ({"cuts": [200]}, "keeps 200 of the 200 bars"),
        ({"cuts": ["2023-01-01"]}, "keeps 0 of the 200 bars"),
        ({"cuts": ["not a time"]}, "a number of bars or a time"),
        ({"cuts": [None]}, "a number of bars or a time"),
        ({"seed": -1}, "seed must be"),
        ({"seed": 1.5}, "seed must be"),
        ({"mode": "fast"}, "mode must be"),
        ({"strategy": "vol_breakout", "params": None, "mode": "vectorized"}, "no signals"),
        ({"strategy": SmaCross()}, "pass parameters with a strategy's name"),
        ({"interval": "7m"}, "bad interval"),
        ({"cash": 0}, "cash must be"),
        ({"fills": {"fill_at": "close"}}, "fills must be a BarFills"),
        ({"bars": bars_of(200).iloc[::-1]}, "time order"),
    ],
)
def test_bad_input_is_a_usage_error(change: dict[str, Any], message: str) -> None:
    given: dict[str, Any] = {
        "strategy": "sma_cross",
        "bars": bars_of(200),
        "interval": "1m",
        "params": {"fast": 5, "slow": 30},
    }
    given.update(change)
    strategy, bars = given.pop("strategy"), given.pop("bars")
    with pytest.raises(UsageError, match=message):
        check_lookahead(strategy, bars, **given)


def test_bad_perturbation_input_is_a_usage_error() -> None:
    bars = bars_of(50)
    for keep in (0, 50, 2.0):
        with pytest.raises(UsageError, match="keep must be"):
            perturb_bars(bars, keep)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="seed must be"):
        perturb_bars(bars, 10, seed=-3)
    with pytest.raises(UsageError, match="missing"):
        perturb_bars(bars.drop(columns="volume"), 10)
    with pytest.raises(UsageError, match="positive number of cuts"):
        default_cuts(100, 0, 0)
