"""Holdout and walk-forward: fold boundaries by hand, each fold's choice and score equal to a
sweep and a backtest run directly, the warm-up rule, trend versus noise, workers, bad input."""

from __future__ import annotations

import itertools
import math

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from tests.helpers.bars import walk_bars
from workbench.backtest import backtest, sweep
from workbench.core.fills import BarFills
from workbench.core.metrics import periods_per_year, return_stats
from workbench.engine.context import Context
from workbench.errors import UsageError
from workbench.events import Bar
from workbench.strategy import Param, Strategy
from workbench.validation.walkforward import (
    WalkForwardResult,
    fold_ranges,
    holdout,
    walk_forward,
)

PER_YEAR = periods_per_year(60)
GRID = {"fast": [2, 5, 10], "slow": [20, 40]}
FILLS = BarFills(taker_fee_bps=2)
FAST = {"interval": "1m", "n_jobs": 1, "progress": False}


def walk(n: int, seed: int = 1, drift: float = 0.0) -> pd.DataFrame:
    """A seeded random walk of one-minute bars; ``drift`` per bar in log price."""
    return walk_bars(n, seed, sigma=0.003, drift=drift, wick=0.001)


class Hold(Strategy):
    """Holds ``size`` of equity from the first bar: no warm-up at all."""

    name = "hold"
    size = Param(1.0, low=0.1, high=1.0)

    def on_bar(self, ctx: Context, bar: Bar) -> None:
        ctx.target(self.size)

    def signals(self, bars: pd.DataFrame) -> npt.NDArray[np.float64]:
        return np.full(len(bars), self.size)


def segment_returns(equity: npt.NDArray[np.float64], warmup: int) -> npt.NDArray[np.float64]:
    """The returns of a run over (warm-up bars + segment) that belong to the segment."""
    curve = equity[max(warmup - 1, 0) :]
    return curve[1:] / curve[:-1] - 1.0


# -- where the folds are -------------------------------------------------------------------


def test_fold_ranges_are_the_cuts_computed_by_hand() -> None:
    # 1003 bars, 4 folds: the first 1003 // 5 = 200 in sample, the other 803 cut at
    # 200 + j * 803 // 4 = 200, 400, 601, 802, 1003.
    assert fold_ranges(1003, 4, "anchored") == [
        ((0, 200), (200, 400)),
        ((0, 400), (400, 601)),
        ((0, 601), (601, 802)),
        ((0, 802), (802, 1003)),
    ]
    assert fold_ranges(1003, 4, "rolling") == [
        ((0, 200), (200, 400)),
        ((200, 400), (400, 601)),
        ((401, 601), (601, 802)),
        ((602, 802), (802, 1003)),
    ]
    # in_sample=300: the rest, 703 bars, at 300 + j * 703 // 4 = 300, 475, 651, 827, 1003.
    assert fold_ranges(1003, 4, "rolling", in_sample=300) == [
        ((0, 300), (300, 475)),
        ((175, 475), (475, 651)),
        ((351, 651), (651, 827)),
        ((527, 827), (827, 1003)),
    ]
    for scheme in ("anchored", "rolling"):
        for in_sample in (None, 97, 500):
            spans = fold_ranges(1003, 3, scheme, in_sample)
            first = spans[0][1][0]
            oos = [b for _, b in spans]
            # The segments abut, cover [first in-sample stop, n) and never overlap.
            assert oos[0][0] == first and oos[-1][1] == 1003
            assert all(a[1] == b[0] for a, b in itertools.pairwise(oos))
            # Each in-sample part ends where its segment starts; rolling ones keep one length.
            assert all(i[1] == o[0] for i, o in spans)
            lengths = {i[1] - i[0] for i, _ in spans}
            if scheme == "rolling":
                assert lengths == {first}
            else:
                assert len(lengths) == 3 and all(i[0] == 0 for i, _ in spans)


@pytest.mark.parametrize("scheme", ["anchored", "rolling"])
def test_walk_forward_reports_the_hand_computed_ranges_and_times(scheme: str) -> None:
    bars = walk(1003)
    result = walk_forward(
        "sma_cross", GRID, bars, folds=4, scheme=scheme, mode="vectorized", **FAST
    )
    starts = [0, 0, 0, 0] if scheme == "anchored" else [0, 200, 401, 602]
    cuts = [200, 400, 601, 802, 1003]
    ts, minute = bars["ts"], pd.Timedelta("1min")
    for k, fold in enumerate(result.folds):
        assert fold.number == k
        assert fold.is_bars == (starts[k], cuts[k])
        assert fold.oos_bars == (cuts[k], cuts[k + 1])
        assert fold.is_time == (ts[starts[k]], ts[cuts[k] - 1] + minute)
        assert fold.oos_time == (ts[cuts[k]], ts[cuts[k + 1] - 1] + minute)
    table = result.table
    assert table["oos_start"].tolist() == cuts[:-1]
    assert table["oos_stop"].tolist() == cuts[1:]
    assert (table["oos_from"].iloc[1:].to_numpy() == table["oos_to"].iloc[:-1].to_numpy()).all()
    # The stitched returns: one per bar close of the out-of-sample range, in time order.
    closes = (ts[200:] + minute).to_numpy()
    assert (result.returns.index.to_numpy() == closes).all()


# -- each fold equals what a sweep and a backtest say directly -------------------------------


@pytest.mark.parametrize(("scheme", "mode"), [("anchored", "event"), ("rolling", "vectorized")])
def test_each_fold_is_the_in_sample_best_scored_by_a_direct_backtest(
    scheme: str, mode: str
) -> None:
    bars = walk(1200, seed=3, drift=0.0002)
    result = walk_forward(
        "sma_cross", GRID, bars, folds=3, scheme=scheme, fills=FILLS, mode=mode, **FAST
    )
    for fold in result.folds:
        (a, b), (s, e) = fold.is_bars, fold.oos_bars
        direct = sweep("sma_cross", GRID, bars.iloc[a:b], fills=FILLS, mode=mode, **FAST)
        best = direct.best("sharpe")
        assert fold.params == {name: best[name] for name in ("fast", "slow", "short")}
        assert fold.trial == best["trial"]
        assert fold.is_metric == best["sharpe"]
        # The segment's run: the warm-up bars just before it, then its own bars.
        assert fold.warmup == fold.params["slow"]
        run = backtest(
            "sma_cross",
            bars.iloc[s - fold.warmup : e],
            params=fold.params,
            fills=FILLS,
            interval="1m",
            mode=mode,
        )
        equity = run.equity["equity"].to_numpy()
        assert (equity[: fold.warmup] == 10_000.0).all()  # flat until the segment's first bar
        returns = segment_returns(equity, fold.warmup)
        assert len(returns) == e - s
        np.testing.assert_array_equal(fold.returns.to_numpy(), returns)
        assert fold.oos_sharpe == pytest.approx(return_stats(returns, PER_YEAR)["sharpe"], 1e-12)
        assert fold.oos_return == pytest.approx(equity[-1] / 10_000.0 - 1, rel=1e-12)
        assert fold.trades == len(run.trades)
        assert fold.oos_metrics["fees_paid"] == pytest.approx(run.metrics["fees_paid"])
        # In sample, by the same rule: the chosen trial's returns from its own warm-up on.
        chosen = direct.returns[fold.trial].to_numpy()[fold.warmup - 1 :]
        assert fold.is_sharpe == pytest.approx(return_stats(chosen, PER_YEAR)["sharpe"], 1e-12)
        assert fold.ratio == pytest.approx(fold.oos_sharpe / fold.is_sharpe)
    stitched = np.concatenate([fold.returns.to_numpy() for fold in result.folds])
    np.testing.assert_array_equal(result.returns.to_numpy(), stitched)
    assert result.sharpe == pytest.approx(return_stats(stitched, PER_YEAR)["sharpe"], 1e-12)
    ratios = [fold.ratio for fold in result.folds if not math.isnan(fold.ratio)]
    assert result.mean_ratio == pytest.approx(np.mean(ratios))


def test_holdout_chooses_on_the_first_part_and_scores_on_the_rest() -> None:
    bars = walk(1001, seed=4, drift=0.0002)
    result = holdout("sma_cross", GRID, bars, fills=FILLS, mode="vectorized", **FAST)
    cut = 700  # floor(1001 * 0.7)
    assert result.fraction == 0.7
    assert (result.fold.is_bars, result.fold.oos_bars) == ((0, cut), (cut, 1001))
    assert result.is_time == (bars["ts"][0], bars["ts"][cut - 1] + pd.Timedelta("1min"))
    assert result.oos_time == (bars["ts"][cut], bars["ts"][1000] + pd.Timedelta("1min"))
    best = sweep("sma_cross", GRID, bars.iloc[:cut], fills=FILLS, mode="vectorized", **FAST)
    row = best.best("sharpe")
    assert result.params == {name: row[name] for name in ("fast", "slow", "short")}
    w = result.params["slow"]
    run = backtest(
        "sma_cross", bars.iloc[cut - w :], params=result.params, fills=FILLS, interval="1m"
    )
    returns = segment_returns(run.equity["equity"].to_numpy(), w)
    assert result.oos_sharpe == pytest.approx(return_stats(returns, PER_YEAR)["sharpe"], 1e-12)
    assert result.ratio == pytest.approx(result.oos_sharpe / result.is_sharpe)
    assert "IS sharpe" in repr(result)


def test_a_segment_never_informs_its_own_choice() -> None:
    bars = walk(1200, seed=5, drift=0.0002)
    result = walk_forward("sma_cross", GRID, bars, folds=3, mode="vectorized", **FAST)
    s = result.folds[-1].oos_bars[0]
    # Another market after s: every choice (the last fold's included) is made as before,
    # and the earlier folds are scored exactly as before.
    other = walk(1200, seed=99, drift=-0.0005)
    changed = bars.copy()
    for column in ("open", "high", "low", "close"):
        changed.loc[s:, column] = other[column][s:] * bars["close"][s - 1] / other["open"][s]
    again = walk_forward("sma_cross", GRID, changed, folds=3, mode="vectorized", **FAST)
    assert [f.params for f in again.folds] == [f.params for f in result.folds]
    for before, after in zip(result.folds[:-1], again.folds[:-1], strict=True):
        pd.testing.assert_series_equal(before.returns, after.returns)
    assert again.folds[-1].oos_sharpe != result.folds[-1].oos_sharpe


def test_a_strategy_with_no_warm_up_runs_on_the_segment_alone() -> None:
    bars = walk(600, seed=6)
    result = walk_forward(
        Hold, {"size": [0.5, 1.0]}, bars, folds=2, scheme="rolling", mode="vectorized", **FAST
    )
    for fold in result.folds:
        s, e = fold.oos_bars
        assert fold.warmup == 0
        run = backtest(Hold, bars.iloc[s:e], params=fold.params, interval="1m", mode="vectorized")
        returns = segment_returns(run.equity["equity"].to_numpy(), 0)
        assert len(fold.returns) == e - s - 1  # the account opens at the first bar's close
        np.testing.assert_array_equal(fold.returns.to_numpy(), returns)


# -- what the gate sees: trend versus noise ----------------------------------------------------


def runs(drift: float, scheme: str) -> list[WalkForwardResult]:
    return [
        walk_forward(
            "sma_cross",
            GRID,
            walk(3000, seed, drift),
            folds=5,
            scheme=scheme,
            mode="vectorized",
            **FAST,
        )
        for seed in range(8)
    ]


@pytest.mark.parametrize("scheme", ["anchored", "rolling"])
def test_a_trend_survives_out_of_sample_and_noise_does_not(scheme: str) -> None:
    trend, noise = runs(0.0005, scheme), runs(0.0, scheme)

    def positive(results: list[WalkForwardResult]) -> list[int]:
        return [sum(fold.oos_sharpe > 0 for fold in r.folds) for r in results]

    def median_ratio(results: list[WalkForwardResult]) -> float:
        # A fold whose in-sample best is not positive has no efficiency at all: 0.
        return float(np.median(np.nan_to_num([f.ratio for r in results for f in r.folds])))

    assert min(positive(trend)) >= 3 and sum(positive(trend)) >= 34  # of 40 folds
    assert median_ratio(trend) > 0.5
    assert median_ratio(noise) < 0.5
    assert sum(positive(noise)) <= 30
    assert np.median([r.sharpe for r in trend]) > np.median([r.sharpe for r in noise]) + 30


# -- determinism ---------------------------------------------------------------------------------


def test_one_worker_or_two_give_the_same_result() -> None:
    bars = walk(500, seed=8, drift=0.0002)
    grid = {"fast": [2, 5], "slow": [20]}
    kwargs = {"folds": 2, "scheme": "rolling", "mode": "vectorized", "interval": "1m"}
    one = walk_forward("sma_cross", grid, bars, n_jobs=1, progress=False, **kwargs)
    two = walk_forward("sma_cross", grid, bars, n_jobs=2, progress=False, **kwargs)
    pd.testing.assert_frame_equal(one.table, two.table)
    pd.testing.assert_series_equal(one.returns, two.returns)
    assert (one.sharpe, one.mean_ratio) == (two.sharpe, two.mean_ratio)


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"folds": 1}, "folds >= 2"),
        ({"folds": True}, "folds >= 2"),
        ({"folds": 2.0}, "folds >= 2"),
        ({"scheme": "expanding"}, "scheme must be one of anchored, rolling"),
        ({"in_sample": 0}, "in_sample is a number of bars"),
        ({"in_sample": 400}, "in_sample is a number of bars"),
        ({"in_sample": 395}, "too few bars for 5 folds"),
        ({"metric": "luck"}, "unknown metric 'luck'"),
        ({"mode": "fast"}, "mode must be one of"),
        ({"cash": 0}, "cash must be a positive amount"),
        ({"folds": 9}, "fold 0: its in-sample part has 40 bars, too short for the warm-up of 40"),
    ],
)
def test_bad_walk_forward_arguments_are_usage_errors(
    kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        walk_forward("sma_cross", GRID, walk(400), **(FAST | kwargs))


def test_too_few_bars_for_the_folds_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="too few bars for 5 folds: 10 bars leave 9"):
        walk_forward("sma_cross", GRID, walk(10), **FAST)
    with pytest.raises(UsageError, match="too few bars for 5 folds: 4 bars leave 4"):
        fold_ranges(4, 5)


@pytest.mark.parametrize("fraction", [0, 1, 1.5, -0.2, True, "0.7", math.nan])
def test_a_bad_holdout_fraction_is_a_usage_error(fraction: object) -> None:
    with pytest.raises(UsageError, match="fraction is the in-sample share"):
        holdout("sma_cross", GRID, walk(400), fraction=fraction, **FAST)


def test_holdout_short_parts_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="too short for the warm-up of 40 bars"):
        holdout("sma_cross", GRID, walk(400), fraction=0.1, **FAST)
    with pytest.raises(UsageError, match="leaves 1 out of sample"):
        holdout("sma_cross", GRID, walk(400), fraction=0.998, **FAST)


def test_grids_without_a_usable_point_are_usage_errors() -> None:
    bars = walk(400)
    with pytest.raises(UsageError, match="no point of the grid is valid for sma_cross"):
        walk_forward("sma_cross", {"fast": [20], "slow": [10]}, bars, **FAST)
    with pytest.raises(UsageError, match="sma_cross has no parameter speed"):
        walk_forward("sma_cross", {"speed": [1]}, bars, **FAST)
    # Flat prices for the first fold's in-sample bars: no trade, so no trial has a Sharpe.
    flat = bars.copy()
    flat.loc[:199, ["open", "high", "low", "close"]] = 100.0  # fold 0 in sample: 0:133
    with pytest.raises(UsageError, match=r"fold 0 \(in-sample bars 0:133\): no trial has a"):
        walk_forward(
            "sma_cross", {"fast": [2], "slow": [20]}, flat, folds=2, mode="vectorized", **FAST
        )


def test_windows_kept_out_of_trading_stay_out_in_every_fold() -> None:
    bars = walk(1200, seed=3, drift=0.0002)
    window = pd.DataFrame({"start": [bars["ts"][950]], "end": [bars["ts"][1050]]})
    kept = walk_forward(
        "sma_cross", GRID, bars, folds=3, fills=FILLS, mode="vectorized", exclude=window, **FAST
    )
    plain = walk_forward("sma_cross", GRID, bars, folds=3, fills=FILLS, mode="vectorized", **FAST)
    last = kept.folds[-1]
    (s, e), w = last.oos_bars, last.warmup
    assert s < 950 < 1050 < e
    run = backtest(
        "sma_cross", bars.iloc[s - w : e], params=last.params, fills=FILLS, interval="1m",
        mode="vectorized", exclude=window,
    )  # fmt: skip
    np.testing.assert_array_equal(
        last.returns.to_numpy(), segment_returns(run.equity["equity"].to_numpy(), w)
    )
    assert not last.returns.equals(plain.folds[-1].returns)
