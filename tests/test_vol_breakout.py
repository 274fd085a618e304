"""The built-in vol_breakout: hand-derived entries, exits and stops on real engine runs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from workbench.backtest import backtest
from workbench.engine import Context
from workbench.errors import UsageError
from workbench.events import Bar
from workbench.strategy.vol_breakout import VolBreakout, prior_mean, realised_vol, vol_quantile

SMALL = {"window": 5, "lookback": 20, "volume_window": 5}  # warm-up: 5 + 20 = 25 bars
TS = pd.date_range("2024-01-01", periods=45, freq="1min")

# A flat 100 for bars 0..29, then a burst: bar 30 closes at 102 on volume 5 (1 elsewhere),
# bar 31 at 104, flat at 104 after. Only r[30] = 0.02 and r[31] = 104/102 - 1 are nonzero, so
# vol[t] (returns t-4..t) is > 0 for t = 30..35 and exactly 0 elsewhere. The bands over the 20
# vols before t are 0 up to t = 30, and the median stays 0 while at most 6 of the 20 are > 0.
# Bar 30: vol > upper = 0, volume 5 > mean 1, close[30] - close[25] = +2: buy, filled at bar
# 31's open 102. Bars 31..35: vol > lower = 0, hold. Bar 36: vol 0 <= 0: close, filled at bar
# 37's open 104, and the stop is cancelled. The stop, 102 * exp(-3 * vol[30]) with
# vol[30] = std([0, 0, 0, 0, 0.02], ddof=1) = sqrt(8e-5), is 99.33: never reached.
ENTRY_BAR, EXIT_BAR = 30, 36
VOL_30 = math.sqrt(8e-5)


def burst(up: bool = True) -> list[float]:
    step = 2.0 if up else -2.0
    return [100.0] * 30 + [100 + step] + [100 + 2 * step] * 14


def bars(close: list[float], volume: list[float], opens: list[float] | None = None) -> pd.DataFrame:
    """Bars opening at the previous close (unless ``opens``), ranging 0.1 beyond the body."""
    opens = opens or [close[0], *close[:-1]]
    return pd.DataFrame(
        {
            "ts": TS[: len(close)],
            "open": opens,
            "high": [max(o, c) + 0.1 for o, c in zip(opens, close, strict=True)],
            "low": [min(o, c) - 0.1 for o, c in zip(opens, close, strict=True)],
            "close": close,
            "volume": volume,
        }
    )


def spike(at: int = ENTRY_BAR, n: int = 45) -> list[float]:
    return [5.0 if i == at else 1.0 for i in range(n)]


def test_an_upward_burst_on_volume_goes_long_and_exits_when_vol_normalises() -> None:
    result = backtest(VolBreakout, bars(burst(), spike()), interval="1m", params=SMALL)
    orders = result.orders
    assert orders["side"].tolist() == ["buy", "sell", "sell"]
    assert orders["type"].tolist() == ["market", "stop", "market"]
    assert orders["target"].tolist()[:2] == [1.0, 0.0]
    assert orders["status"].tolist() == ["filled", "cancelled", "filled"]
    # decided at the closes of bars 30, 30 and 36, i.e. at the starts of bars 31, 31 and 37
    assert orders["created"].tolist() == list(TS[[ENTRY_BAR + 1, ENTRY_BAR + 1, EXIT_BAR + 1]])
    assert orders["price"].iloc[1] == pytest.approx(102 * math.exp(-3 * VOL_30))
    assert result.fills["ts"].tolist() == list(TS[[ENTRY_BAR + 1, EXIT_BAR + 1]])
    assert result.fills["price"].tolist() == [102.0, 104.0]
    held = result.equity["position"].to_numpy() != 0
    assert held.nonzero()[0].tolist() == list(range(31, 37))
    assert result.trades["direction"].tolist() == ["long"]
    assert result.trades["pnl"].tolist() == pytest.approx([10_000 / 102 * 2])
    assert result.decisions["message"].tolist() == ["breakout", "vol normalised"]


def test_a_downward_burst_goes_short_only_with_short_true() -> None:
    down = bars(burst(up=False), spike())
    result = backtest(VolBreakout, down, interval="1m", params={**SMALL, "short": True})
    assert result.orders["side"].tolist() == ["sell", "buy", "buy"]
    assert result.orders["status"].tolist() == ["filled", "cancelled", "filled"]
    assert result.orders["price"].iloc[1] == pytest.approx(98 * math.exp(3 * VOL_30))
    assert result.fills["ts"].tolist() == list(TS[[ENTRY_BAR + 1, EXIT_BAR + 1]])
    assert result.fills["price"].tolist() == [98.0, 96.0]
    assert result.trades["direction"].tolist() == ["short"]
    long_only = backtest(VolBreakout, down, interval="1m", params=SMALL)
    assert long_only.orders.empty


def test_a_vol_burst_without_a_volume_spike_is_no_breakout() -> None:
    result = backtest(VolBreakout, bars(burst(), [1.0] * 45), interval="1m", params=SMALL)
    assert result.orders.empty


@pytest.mark.parametrize(("gap", "price"), [(False, 102 * math.exp(-VOL_30)), (True, 100.0)])
def test_a_move_against_the_position_exits_through_the_stop_order(gap: bool, price: float) -> None:
    """With stop=1 the stop is 102 * exp(-vol[30]) = 101.09: bar 31 (low 101.9) leaves it;
    bar 32 falls to 100.5 from an open of 104 (fill at the stop) or gaps open at 100 (fill at
    that open). Flat again at bar 32, its volume 1 is below the mean 1.8: no re-entry."""
    close = [100.0] * 30 + [102.0, 104.0] + [100.5] * 13
    opens = [close[0], *close[:-1]]
    if gap:
        opens[32] = 100.0
    result = backtest(
        VolBreakout, bars(close, spike(), opens), interval="1m", params={**SMALL, "stop": 1.0}
    )
    assert result.orders["type"].tolist() == ["market", "stop"]
    assert result.orders["status"].tolist() == ["filled", "filled"]
    assert result.fills["ts"].tolist() == list(TS[[31, 32]])
    assert result.fills["price"].tolist() == pytest.approx([102.0, price])
    assert result.trades["exit_price"].tolist() == pytest.approx([price])
    assert result.equity["position"].iloc[32:].eq(0).all()


def test_stop_zero_places_no_stop() -> None:
    result = backtest(
        VolBreakout, bars(burst(), spike()), interval="1m", params={**SMALL, "stop": 0.0}
    )
    assert result.orders["type"].tolist() == ["market", "market"]


class Recording(VolBreakout):
    """Keeps the bars it decided on and the indicator values it saw on the first."""

    def on_start(self, ctx: Context) -> None:
        super().on_start(ctx)
        self.seen: list[int] = []
        self.first: list[float] = []

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        if not self.seen:
            self.first = [
                self._vol[-1],
                self._upper[-1],
                self._lower[-1],
                self._volume_mean[-1],
                self._close[0],
            ]
        self.seen.append(bar.ts)
        super().on_bar(ctx, bar)


def test_no_decision_during_the_warm_up_and_the_first_one_has_every_value() -> None:
    """A burst on volume at bar 10, inside the warm-up, is never traded; at bar 25 (the
    first decision) vol is back to 0, so nothing is."""
    close = [100.0] * 10 + [102.0] * 35
    strategy = Recording(**SMALL)
    result = backtest(strategy, bars(close, spike(at=10)), interval="1m")
    assert strategy.warmup() == 25
    assert strategy.seen[0] == TS[25].value // 1000
    assert all(math.isfinite(value) for value in strategy.first)
    assert result.orders.empty
    # one bar earlier the bands are not yet defined: the warm-up is no longer than needed
    column = np.array(close)
    assert math.isnan(vol_quantile(column, 5, 20, 0.9)[24])
    assert math.isnan(realised_vol(column, 5)[4])
    assert VolBreakout(**{**SMALL, "volume_window": 40}).warmup() == 40
    assert prior_mean(np.array([1.0, 2.0, 3.0, 4.0]), 2).tolist()[2:] == [1.5, 2.5]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"quantile": 1.0}, "'quantile' must be strictly between 0 and 1, got 1.0"),
        ({"quantile": "0"}, "'quantile' must be strictly between 0 and 1, got 0.0"),
        ({"quantile": 1.5}, r"'quantile' must be in 0.0..1.0, got 1.5"),
        ({"exit_quantile": 0.0}, "'exit_quantile' must be strictly between 0 and 1"),
        ({"exit_quantile": 0.95}, r"'exit_quantile' \(0.95\) must not exceed quantile \(0.9\)"),
        ({"window": 1}, "parameter 'window' must be in 2"),
        ({"lookback": 1}, "parameter 'lookback' must be in 2"),
        ({"volume_window": 0}, "parameter 'volume_window' must be in 1"),
        ({"stop": -1.0}, "parameter 'stop' must be in 0"),
        ({"short": "maybe"}, "parameter 'short' takes true or false"),
    ],
)
def test_a_bad_parameter_is_a_usage_error_naming_it(params: dict, message: str) -> None:
    with pytest.raises(UsageError, match=f"vol_breakout: .*{message}"):
        backtest(VolBreakout, bars(burst(), spike()), interval="1m", params=params)


def clustered_bars(n: int, seed: int = 7) -> pd.DataFrame:
    """A random walk whose vol switches between calm and 5x bursts, volume rising with |r|."""
    rng = np.random.default_rng(seed)
    sigma = np.where(rng.random(n // 50).repeat(50)[:n] < 0.2, 0.005, 0.001)
    r = rng.standard_normal(n) * sigma
    close = 100 * np.exp(np.cumsum(r))
    opens = np.r_[100.0, close[:-1]]
    wick = np.abs(rng.standard_normal(n)) * sigma * close
    return pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=n, freq="1min"),
            "open": opens,
            "high": np.maximum(opens, close) + wick,
            "low": np.minimum(opens, close) - wick,
            "close": close,
            "volume": np.abs(r) / 0.001 + rng.exponential(1.0, n),
        }
    )


def test_a_prefix_of_the_bars_gives_the_same_orders_up_to_the_cut() -> None:
    bars_ = clustered_bars(3_000)
    params = {"window": 10, "lookback": 100, "volume_window": 20, "stop": 2.0, "short": True}
    full = backtest(VolBreakout, bars_, interval="1m", params=params)
    cut = backtest(VolBreakout, bars_.iloc[:2_000], interval="1m", params=params)
    placed = ["client_order_id", "created", "side", "type", "size", "target", "price"]
    before = full.orders[full.orders["created"] <= cut.orders["created"].max()]
    pd.testing.assert_frame_equal(before[placed], cut.orders[placed])
    fills = full.fills[full.fills["ts"] < bars_["ts"].iloc[2_000]]
    pd.testing.assert_frame_equal(fills, cut.fills)
    assert set(cut.trades["direction"]) == {"long", "short"}
    assert (cut.orders.query("type == 'stop'")["status"] == "filled").any()
    assert len(cut.trades) >= 5
