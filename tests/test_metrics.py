"""Backtest metrics: every definition of workbench.core.metrics pinned on small hand-computed
curves, edge cases (no trades, one point, flat equity) and the inputs refused."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from workbench.core.metrics import drawdown, performance, periods_per_year
from workbench.errors import UsageError

T0_US = 1_700_000_000_000_000
"""A realistic start time, so durations are measured from µs timestamps, not from zero."""

KEYS = [
    "total_return",
    "cagr",
    "annual_volatility",
    "sharpe",
    "sortino",
    "max_drawdown",
    "max_drawdown_duration_s",
    "calmar",
    "win_rate",
    "profit_factor",
    "average_trade",
    "exposure",
    "turnover",
    "fees_paid",
    "trades",
]

# The reference curve: returns 1/4, -1/5, 1/2, -1/5 at 10 s bars, 8 bars a year.
EQUITY = [100.0, 125.0, 100.0, 150.0, 120.0]
TIMES_S = [0, 10, 20, 30, 40]
PNL = [30.0, -10.0, 20.0, -5.0, 0.0]


def at(seconds: Sequence[int]) -> npt.NDArray[np.int64]:
    return T0_US + np.array(seconds, dtype=np.int64) * 1_000_000


def run(
    equity: Sequence[float] = EQUITY,
    times_s: Sequence[int] | None = None,
    pnl: Sequence[float] = PNL,
    **options: Any,
) -> dict[str, float]:
    """performance() with the reference options unless overridden; times default to 10 s bars."""
    times = at(range(0, 10 * len(equity), 10) if times_s is None else times_s)
    settings: dict[str, Any] = {
        "periods_per_year": 8.0,
        "fees_paid": 3.5,
        "traded_notional": 2500.0,
        "exposure": 0.6,
    }
    settings.update(options)
    return performance(
        np.array(equity, dtype=np.float64), times, np.array(pnl, dtype=np.float64), **settings
    )


def test_keys_come_in_the_metrics_json_order() -> None:
    assert list(run()) == KEYS


def test_every_value_is_a_python_float() -> None:
    for results in (run(), run(equity=[100.0], pnl=[])):
        assert {key: type(value) for key, value in results.items()} == dict.fromkeys(KEYS, float)


def test_periods_per_year_counts_bars_in_a_365_day_24_7_year() -> None:
    assert periods_per_year(86_400) == 365.0
    assert periods_per_year(3_600) == 8_760.0  # 365 * 24
    assert periods_per_year(60) == 525_600.0  # 365 * 24 * 60
    assert periods_per_year(0.5) == 63_072_000.0  # 365 * 86400 * 2


@pytest.mark.parametrize("seconds", [0, -60, math.nan, math.inf])
def test_periods_per_year_refuses_an_interval_that_is_not_positive(seconds: float) -> None:
    with pytest.raises(UsageError, match="positive number of seconds"):
        periods_per_year(seconds)


def test_drawdown_is_the_fraction_below_the_running_peak() -> None:
    # running max 100, 125, 125, 150, 150 → 0, 0, 100/125 - 1, 0, 120/150 - 1
    got = drawdown(np.array(EQUITY))
    assert got.tolist() == pytest.approx([0.0, 0.0, -0.2, 0.0, -0.2], abs=1e-15)


def test_drawdown_is_zero_again_when_equity_only_returns_to_the_peak() -> None:
    assert drawdown(np.array([100.0, 80.0, 100.0])).tolist() == pytest.approx([0.0, -0.2, 0.0])


def test_total_return_and_cagr_compound_over_the_bars_of_the_run() -> None:
    results = run()
    assert results["total_return"] == pytest.approx(0.2)  # 120 / 100 - 1
    assert results["cagr"] == pytest.approx(0.44)  # 1.2 ** (8 / 4) - 1 = 1.44 - 1


def test_volatility_sharpe_and_sortino_of_the_reference_curve() -> None:
    # mean r = (1/4 - 1/5 + 1/2 - 1/5) / 4 = 7/80
    # deviations 13/80, -23/80, 33/80, -23/80: squares sum 2316/6400, / 3 = 193/1600,
    # so std = sqrt(193) / 40 and sqrt(P) = sqrt(8) = 2 sqrt(2)
    results = run()
    assert results["annual_volatility"] == pytest.approx(math.sqrt(386) / 20)  # 0.98234...
    assert results["sharpe"] == pytest.approx(7 * math.sqrt(2 / 193))  # 0.71258...
    # downside: mean of 0, 1/25, 0, 1/25 = 1/50, deviation 1/(5 sqrt 2)
    # sortino = 7/80 * 5 sqrt(2) * 2 sqrt(2) = 7/4
    assert results["sortino"] == pytest.approx(1.75)


def test_max_drawdown_and_calmar_of_the_reference_curve() -> None:
    results = run()
    assert results["max_drawdown"] == pytest.approx(0.2)  # 150 → 120
    assert results["calmar"] == pytest.approx(2.2)  # 0.44 / 0.2


def test_drawdown_duration_runs_from_the_peak_until_equity_is_back_at_it() -> None:
    # spell 1: peak 100 at 0 s, 95, back to exactly 100 at 70 s → 70 s (shallow, 2 bars)
    # spell 2: peak 120 at 100 s, 60, 90, above it at 130 s → 30 s (deep, 3 bars)
    results = run(
        equity=[100.0, 95.0, 100.0, 120.0, 60.0, 90.0, 121.0, 125.0],
        times_s=[0, 60, 70, 100, 110, 115, 130, 200],
    )
    assert results["max_drawdown_duration_s"] == 70.0
    assert results["max_drawdown"] == pytest.approx(0.5)  # 60 / 120 - 1, from the other spell


def test_drawdown_duration_runs_to_the_last_point_when_equity_never_recovers() -> None:
    # spell 1: peak 120 at 10 s, back above at 30 s → 20 s
    # spell 2: peak 125 at 30 s, still below at the last point, 100 s → 70 s
    results = run(
        equity=[100.0, 120.0, 90.0, 125.0, 110.0, 100.0], times_s=[0, 10, 20, 30, 40, 100]
    )
    assert results["max_drawdown_duration_s"] == 70.0


def test_a_curve_that_never_falls_has_no_drawdown_and_no_calmar() -> None:
    results = run(equity=[100.0, 100.0, 110.0, 120.0])
    assert results["max_drawdown"] == 0.0
    assert math.copysign(1.0, results["max_drawdown"]) == 1.0  # 0.0, not -0.0, in metrics.json
    assert results["max_drawdown_duration_s"] == 0.0
    assert math.isnan(results["calmar"])


@pytest.mark.parametrize(
    ("pnl", "win_rate", "profit_factor", "average_trade"),
    [
        # wins 30, 20 of 5 (a zero trade is no win); 50 / |-15|; 35 / 5
        ([30.0, -10.0, 20.0, -5.0, 0.0], 0.4, 10 / 3, 7.0),
        ([5.0, 0.0, 10.0], 2 / 3, math.inf, 5.0),  # gains and no losses
        ([-1.0, -3.0], 0.0, 0.0, -2.0),  # losses and no gains
        ([0.0, 0.0], 0.0, math.nan, 0.0),  # both sums 0
    ],
)
def test_trade_statistics(
    pnl: list[float], win_rate: float, profit_factor: float, average_trade: float
) -> None:
    results = run(pnl=pnl)
    assert results["win_rate"] == pytest.approx(win_rate)
    assert results["profit_factor"] == pytest.approx(profit_factor, nan_ok=True)
    assert results["average_trade"] == pytest.approx(average_trade)
    assert results["trades"] == float(len(pnl))


def test_no_trades_leaves_the_trade_statistics_undefined() -> None:
    results = run(pnl=[])
    assert math.isnan(results["win_rate"])
    assert math.isnan(results["profit_factor"])
    assert math.isnan(results["average_trade"])
    assert results["trades"] == 0.0


def test_exposure_turnover_and_fees_are_reported_as_given() -> None:
    results = run()
    assert results["exposure"] == 0.6
    assert results["turnover"] == 25.0  # 2500 / 100, the starting equity
    assert results["fees_paid"] == 3.5


def test_a_single_equity_point_has_no_return_statistics() -> None:
    results = run(equity=[100.0], pnl=[], traded_notional=50.0)
    assert results["total_return"] == 0.0
    for key in ("cagr", "annual_volatility", "sharpe", "sortino", "calmar"):
        assert math.isnan(results[key]), key
    assert results["max_drawdown"] == 0.0
    assert results["max_drawdown_duration_s"] == 0.0
    assert results["turnover"] == 0.5


def test_a_single_return_has_cagr_and_sortino_but_no_volatility_or_sharpe() -> None:
    # r = -1/10; P = 4: cagr = 0.9 ** 4 - 1 = -0.3439, sortino = -0.1 / 0.1 * 2
    results = run(equity=[100.0, 90.0], periods_per_year=4.0)
    assert results["cagr"] == pytest.approx(-0.3439)
    assert results["sortino"] == pytest.approx(-2.0)
    assert math.isnan(results["annual_volatility"])
    assert math.isnan(results["sharpe"])
    assert results["calmar"] == pytest.approx(-3.439)  # -0.3439 / 0.1
    assert results["max_drawdown_duration_s"] == 10.0  # never recovers: to the last point


def test_flat_equity_has_zero_volatility_and_undefined_sharpe_and_sortino() -> None:
    results = run(equity=[100.0, 100.0, 100.0, 100.0])
    assert results["total_return"] == 0.0
    assert results["cagr"] == 0.0
    assert results["annual_volatility"] == 0.0
    assert math.isnan(results["sharpe"])  # std 0
    assert math.isnan(results["sortino"])  # downside deviation 0


def test_a_cagr_past_the_float_range_is_infinite_without_an_error_or_warning() -> None:
    # doubling in one 1 s bar: 2 ** 31_536_000 overflows
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        results = run(equity=[1.0, 2.0], periods_per_year=periods_per_year(1))
    assert results["cagr"] == math.inf


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"times_s": [0, 10, 20, 30]}, r"one time per equity point: got shape \(4,\)"),
        ({"times_s": [0, 10, 10, 30, 40]}, r"strictly increasing: times_us\[2\]"),
        ({"times_s": [0, 10, 20, 15, 40]}, r"strictly increasing: times_us\[3\]"),
        ({"equity": [100.0, 125.0, 0.0, 150.0, 120.0]}, r"> 0 at every point: equity\[2\] = 0.0"),
        ({"equity": [100.0, -5.0, 1.0, 2.0, 3.0]}, r"equity\[1\] = -5.0"),
        ({"equity": [100.0, math.nan, 1.0, 2.0, 3.0]}, r"finite and > 0 .* equity\[1\] = nan"),
        ({"equity": [], "times_s": []}, "equity must be a non-empty 1-D array"),
        ({"exposure": -0.1}, r"exposure .* in \[0, 1\], got -0.1"),
        ({"exposure": 1.5}, r"exposure .* in \[0, 1\], got 1.5"),
        ({"exposure": math.nan}, r"exposure .* in \[0, 1\], got nan"),
        ({"periods_per_year": 0.0}, "periods_per_year must be positive"),
        ({"pnl": [1.0, math.nan]}, "trade_pnl must be a 1-D array of finite PnL values"),
    ],
)
def test_bad_inputs_are_usage_errors_naming_the_problem(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        run(**options)


def test_drawdown_refuses_a_curve_it_cannot_divide_by() -> None:
    with pytest.raises(UsageError, match=r"equity\[0\] = 0.0"):
        drawdown(np.array([0.0, 1.0]))
    with pytest.raises(UsageError, match=r"non-empty 1-D array, got shape \(2, 2\)"):
        drawdown(np.ones((2, 2)))
