"""The out-of-sample gate: parameters chosen on past bars, scored on the bars that follow.

:func:`holdout` splits the bars once at ``fraction`` (default 0.7): a sweep over the grid on
the first part picks the best point by ``metric`` (default ``sharpe``), which is then run on
the rest. :func:`walk_forward` does it on ``folds`` (default 5) consecutive out-of-sample
segments, with an in-sample part that grows from the first bar (``anchored``) or is a window
of fixed length just before the segment (``rolling``); :func:`fold_ranges` says where.

Where the folds are, on ``n`` bars: the first ``in_sample`` bars (default ``n // (folds +
1)``, so the bars are cut in ``folds + 1`` nearly equal blocks) are only ever in-sample; the
rest, ``[in_sample, n)``, is cut at ``o_j = in_sample + j * (n - in_sample) // folds`` into
the out-of-sample segments ``[o_j, o_{j+1})``, which abut and cover it. Fold ``j``'s
in-sample part is ``[0, o_j)`` (anchored) or ``[o_j - in_sample, o_j)`` (rolling).

The warm-up rule. A segment ``[s, e)`` is scored on its own bars only, yet the strategy
needs ``w = strategy.warmup()`` bars (of the parameters chosen) before it decides. So the
segment's run is over ``[s - w, e)``: the ``w`` bars before it are only seen (the engine
makes no decision before bar ``w`` of a run), its first decision is at the close of bar
``s``, and the account is flat at ``cash`` until then. Its returns are those at the closes
of bars ``s`` to ``e - 1`` (``e - s`` of them; the first holds nothing over its bar), from
the equity at the close of bar ``s - 1``; its metrics are
:func:`~workbench.core.metrics.performance` of that curve (trades and fees all fall in the
segment; exposure is over its bars). A strategy with no warm-up runs on the segment alone
and has no return at bar ``s``. Every segment starts flat with fresh ``cash`` (a position
still open at its end is marked at its last close, never charged for closing). The
parameters are chosen on the in-sample bars, which all come before ``s``: no decision in a
segment uses parameters chosen with its bars, and the warm-up bars feed only indicators, as
a live run's history would.

In-sample Sharpe, by the same rule: the chosen trial's sweep returns from the close of its own
warm-up bar ``w`` on (``is_sharpe``); ``is_metric`` is the sweep's value it was chosen by
(which counts the warm-up's flat returns). The OOS/IS ratio is ``oos_sharpe / is_sharpe``,
NaN unless ``is_sharpe > 0`` (a ratio of two negatives is no efficiency).
"""

from __future__ import annotations

import html
import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from workbench.backtest.grid import expand
from workbench.backtest.result import wiped_out
from workbench.backtest.sweep import METRICS, SweepResult, sweep
from workbench.core.fills import BarFills
from workbench.core.intervals import parse_interval
from workbench.core.metrics import performance, periods_per_year, return_stats
from workbench.core.portfolio import starting_cash
from workbench.engine.data import BarData
from workbench.engine.modes import check_mode, simulate
from workbench.errors import UsageError
from workbench.strategy.base import Strategy
from workbench.strategy.registry import find_strategy

SCHEMES: Final = ("anchored", "rolling")
MIN_BARS: Final = 2
"""The fewest bars a segment must decide on (past the warm-up): a Sharpe needs two returns."""

Floats = npt.NDArray[np.float64]
Span = tuple[int, int]
StrategySpec = str | type[Strategy]


@dataclass(frozen=True, eq=False)
class Fold:
    """One in-sample choice and its out-of-sample score. ``is_bars``/``oos_bars``: positions
    ``[start, stop)`` in the bars; ``is_time``/``oos_time``: ``[first bar's start, last bar's
    close)``, naive UTC. ``returns``: the segment's per-bar returns by bar close (see the
    warm-up rule in the module docstring); ``sweep``: the in-sample sweep."""

    number: int
    is_bars: Span
    oos_bars: Span
    is_time: tuple[pd.Timestamp, pd.Timestamp]
    oos_time: tuple[pd.Timestamp, pd.Timestamp]
    params: dict[str, Any]
    trial: int
    warmup: int
    is_metric: float
    is_sharpe: float
    oos_sharpe: float
    oos_return: float
    trades: int
    oos_metrics: dict[str, float] = field(repr=False)
    returns: pd.Series = field(repr=False)
    sweep: SweepResult = field(repr=False)

    @property
    def ratio(self) -> float:
        """``oos_sharpe / is_sharpe``; NaN unless the in-sample Sharpe is positive."""
        return _ratio(self.oos_sharpe, self.is_sharpe)


@dataclass(frozen=True, eq=False)
class HoldoutResult:
    """One split at ``fraction``: the in-sample choice and its out-of-sample score."""

    strategy: str
    interval: str
    mode: str
    metric: str
    fraction: float
    periods_per_year: float
    fold: Fold

    @property
    def params(self) -> dict[str, Any]:
        return self.fold.params

    @property
    def is_sharpe(self) -> float:
        return self.fold.is_sharpe

    @property
    def oos_sharpe(self) -> float:
        return self.fold.oos_sharpe

    @property
    def ratio(self) -> float:
        return self.fold.ratio

    @property
    def is_time(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self.fold.is_time

    @property
    def oos_time(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        return self.fold.oos_time

    @property
    def returns(self) -> pd.Series:
        return self.fold.returns

    def __repr__(self) -> str:
        return (
            f"<HoldoutResult {self.strategy} {self.interval} at {self.fraction:g}: "
            f"{_params_text(self.params)}, IS sharpe {self.is_sharpe:.4g}, "
            f"OOS sharpe {self.oos_sharpe:.4g}>"
        )


@dataclass(frozen=True, eq=False)
class WalkForwardResult:
    """Every fold, and what a gate thresholds: ``sharpe``, that of ``returns`` (every
    segment's returns stitched in time order), and ``mean_ratio``, the mean of the folds'
    OOS/IS ratios where defined (NaN if none is)."""

    strategy: str
    interval: str
    mode: str
    metric: str
    scheme: str
    periods_per_year: float
    folds: tuple[Fold, ...]
    returns: pd.Series = field(repr=False)
    sharpe: float
    mean_ratio: float

    @property
    def table(self) -> pd.DataFrame:
        """One row per fold: its ranges, chosen parameters and scores."""
        rows = []
        for fold in self.folds:
            rows.append(
                {
                    "fold": fold.number,
                    "is_start": fold.is_bars[0],
                    "is_stop": fold.is_bars[1],
                    "oos_start": fold.oos_bars[0],
                    "oos_stop": fold.oos_bars[1],
                    "is_from": fold.is_time[0],
                    "is_to": fold.is_time[1],
                    "oos_from": fold.oos_time[0],
                    "oos_to": fold.oos_time[1],
                    **fold.params,
                    "trial": fold.trial,
                    "is_metric": fold.is_metric,
                    "is_sharpe": fold.is_sharpe,
                    "oos_sharpe": fold.oos_sharpe,
                    "ratio": fold.ratio,
                    "oos_return": fold.oos_return,
                    "trades": fold.trades,
                }
            )
        return pd.DataFrame(rows)

    def __repr__(self) -> str:
        return (
            f"<WalkForwardResult {self.strategy} {self.interval} {self.scheme}, "
            f"{len(self.folds)} folds: OOS sharpe {self.sharpe:.4g}, "
            f"mean OOS/IS {self.mean_ratio:.4g}>"
        )

    def _repr_html_(self) -> str:
        return f"<div><p>{html.escape(repr(self))}</p>{self.table.to_html(index=False)}</div>"


def fold_ranges(
    n: int, folds: int = 5, scheme: str = "anchored", in_sample: int | None = None
) -> list[tuple[Span, Span]]:
    """The ``(in-sample, out-of-sample)`` bar ranges ``[start, stop)`` of each fold on ``n``
    bars (see the module docstring)."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise UsageError(f"a walk-forward needs folds >= 2, got {folds!r} (for one, use holdout)")
    if scheme not in SCHEMES:
        raise UsageError(f"scheme must be one of {', '.join(SCHEMES)}, got {scheme!r}")
    if in_sample is not None and (
        isinstance(in_sample, bool) or not isinstance(in_sample, int) or not 0 < in_sample < n
    ):
        raise UsageError(f"in_sample is a number of bars in 1..{n - 1}, got {in_sample!r}")
    first = n // (folds + 1) if in_sample is None else in_sample
    rest = n - first
    if first < 1 or rest < folds * MIN_BARS:
        raise UsageError(
            f"too few bars for {folds} folds: {n} bars leave {rest} out of sample after the "
            f"first {first} in sample, and each fold needs {MIN_BARS}; use fewer folds or more bars"
        )
    cuts = [first + j * rest // folds for j in range(folds + 1)]
    return [
        ((0 if scheme == "anchored" else start - first, start), (start, stop))
        for start, stop in itertools.pairwise(cuts)
    ]


def holdout(
    strategy: StrategySpec,
    grid: Mapping[str, object],
    bars: pd.DataFrame,
    *,
    interval: str,
    fraction: float = 0.7,
    metric: str = "sharpe",
    fills: BarFills | None = None,
    cash: float = 10_000.0,
    mode: str = "event",
    n_jobs: int = -1,
    progress: bool = True,
    exclude: pd.DataFrame | None = None,
) -> HoldoutResult:
    """Choose ``strategy``'s parameters by the best ``metric`` of a :func:`sweep` of ``grid``
    on the first ``floor(len(bars) * fraction)`` bars, then score them on the rest (with the
    warm-up rule of the module docstring). The other arguments (``exclude``: windows kept
    out of trading) are :func:`sweep`'s."""
    if isinstance(fraction, bool) or not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise UsageError(
            f"fraction is the in-sample share of the bars, in (0, 1), got {fraction!r}"
        )
    split = _Split.make(strategy, grid, bars, interval, metric, mode, fills, cash, exclude)
    cut = math.floor(len(bars) * fraction)
    if len(bars) - cut < MIN_BARS:
        raise UsageError(
            f"fraction {fraction:g} of {len(bars)} bars leaves {len(bars) - cut} out of "
            f"sample; it needs {MIN_BARS}"
        )
    spans = [((0, cut), (cut, len(bars)))]
    split.check_warmups(spans)
    fold = split.fold(0, *spans[0], n_jobs=n_jobs, progress=progress)
    return HoldoutResult(
        strategy=split.cls.name,
        interval=split.interval,
        mode=mode,
        metric=metric,
        fraction=float(fraction),
        periods_per_year=split.per_year,
        fold=fold,
    )


def walk_forward(
    strategy: StrategySpec,
    grid: Mapping[str, object],
    bars: pd.DataFrame,
    *,
    interval: str,
    folds: int = 5,
    scheme: str = "anchored",
    in_sample: int | None = None,
    metric: str = "sharpe",
    fills: BarFills | None = None,
    cash: float = 10_000.0,
    mode: str = "event",
    n_jobs: int = -1,
    progress: bool = True,
    exclude: pd.DataFrame | None = None,
) -> WalkForwardResult:
    """On each fold of :func:`fold_ranges`, choose ``strategy``'s parameters by the best
    ``metric`` of a :func:`sweep` of ``grid`` on its in-sample bars and score them on its
    out-of-sample segment (with the warm-up rule of the module docstring). The other
    arguments (``exclude``: windows kept out of trading) are :func:`sweep`'s."""
    spans = fold_ranges(len(bars), folds, scheme, in_sample)
    split = _Split.make(strategy, grid, bars, interval, metric, mode, fills, cash, exclude)
    split.check_warmups(spans)
    done = tuple(
        split.fold(number, is_span, oos_span, n_jobs=n_jobs, progress=progress)
        for number, (is_span, oos_span) in enumerate(spans)
    )
    stitched = pd.concat([fold.returns for fold in done]).rename("return")
    ratios = [fold.ratio for fold in done if not math.isnan(fold.ratio)]
    return WalkForwardResult(
        strategy=split.cls.name,
        interval=split.interval,
        mode=mode,
        metric=metric,
        scheme=scheme,
        periods_per_year=split.per_year,
        folds=done,
        returns=stitched,
        sharpe=return_stats(stitched.to_numpy(), split.per_year)["sharpe"],
        mean_ratio=float(np.mean(ratios)) if ratios else math.nan,
    )


@dataclass(frozen=True)
class _Split:
    """What every fold of one validation shares, checked once."""

    spec: StrategySpec
    cls: type[Strategy]
    grid: Mapping[str, object]
    bars: pd.DataFrame
    data: BarData
    interval: str
    micros: int
    seconds: float
    per_year: float
    metric: str
    mode: str
    fills: BarFills
    cash: float
    warmups: list[tuple[int, dict[str, object]]]
    exclude: pd.DataFrame | None

    @classmethod
    def make(
        cls,
        strategy: StrategySpec,
        grid: Mapping[str, object],
        bars: pd.DataFrame,
        interval: str,
        metric: str,
        mode: str,
        fills: BarFills | None,
        cash: float,
        exclude: pd.DataFrame | None,
    ) -> _Split:
        found = find_strategy(strategy)
        every = parse_interval(interval)
        check_mode(mode, found)
        if metric not in METRICS:
            raise UsageError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
        data = BarData.from_frame(bars, every.micros, exclude)
        declared = found.declared()
        unknown = [name for name in grid if name not in declared]
        if unknown:
            raise UsageError(f"{found.name} has no parameter {', '.join(unknown)}")
        # Each valid point's warm-up, so a fold too short for one is refused before any run.
        warmups: list[tuple[int, dict[str, object]]] = []
        reason = ""
        for point in expand(grid):
            try:
                warmups.append((found(**point).warmup(), point))
            except UsageError as exc:
                reason = reason or str(exc)
        if not warmups:
            raise UsageError(f"no point of the grid is valid for {found.name}: {reason}")
        return cls(
            spec=strategy,
            cls=found,
            grid=grid,
            bars=bars,
            data=data,
            interval=every.name,
            micros=every.micros,
            seconds=every.seconds,
            per_year=periods_per_year(every.seconds),
            metric=metric,
            mode=mode,
            fills=fills or BarFills(),
            cash=starting_cash(cash),
            warmups=warmups,
            exclude=exclude,
        )

    def check_warmups(self, spans: list[tuple[Span, Span]]) -> None:
        longest, point = max(self.warmups, key=lambda item: item[0])
        for number, ((start, stop), _) in enumerate(spans):
            if stop - start < longest + MIN_BARS:
                raise UsageError(
                    f"fold {number}: its in-sample part has {stop - start} bars, too short for "
                    f"the warm-up of {longest} bars ({_params_text(point)}) plus {MIN_BARS} to "
                    "decide on; use fewer folds, a longer in_sample or more bars"
                )

    def fold(
        self, number: int, is_span: Span, oos_span: Span, *, n_jobs: int, progress: bool
    ) -> Fold:
        (a, b), (s, e) = is_span, oos_span
        searched = sweep(
            self.spec,
            self.grid,
            self._frame(a, b),
            interval=self.interval,
            fills=self.fills,
            cash=self.cash,
            mode=self.mode,
            n_jobs=n_jobs,
            progress=progress,
            exclude=self.exclude,
        )
        try:
            best = searched.best(self.metric)
        except UsageError as exc:
            raise UsageError(f"fold {number} (in-sample bars {a}:{b}): {exc}") from None
        trial = int(best["trial"])
        # The point as the grid gave it, made again: the row's values are pandas scalars.
        chosen = self.cls(**expand(self.grid)[trial])
        w = chosen.warmup()
        in_sample = searched.returns[trial].to_numpy()[max(w - 1, 0) :]
        run = simulate(chosen, self._data(s - w, e), self.fills, cash=self.cash, mode=self.mode)
        ruin = wiped_out(run)
        if ruin:
            raise UsageError(f"fold {number} (out-of-sample bars {s}:{e}) at {chosen}: {ruin}")
        base = max(w - 1, 0)  # the close before the segment's first bar: still flat at cash
        curve, ends = run.equity[base:], run.data.end[base:]
        metrics = performance(
            curve,
            ends,
            run.trip_pnl,
            periods_per_year=self.per_year,
            fees_paid=run.fees_paid,
            traded_notional=run.traded_notional,
            exposure=float(np.count_nonzero(run.position[w:]) / (e - s)),
        )
        returns = pd.Series(
            curve[1:] / curve[:-1] - 1.0,
            index=pd.Index(ends[1:].astype("datetime64[us]"), name="ts"),
            name="return",
        )
        return Fold(
            number=number,
            is_bars=(a, b),
            oos_bars=(s, e),
            is_time=self._times(a, b),
            oos_time=self._times(s, e),
            params=dict(chosen.params),
            trial=trial,
            warmup=w,
            is_metric=float(best[self.metric]),
            is_sharpe=return_stats(in_sample, self.per_year)["sharpe"],
            oos_sharpe=metrics["sharpe"],
            oos_return=metrics["total_return"],
            trades=int(metrics["trades"]),
            oos_metrics=metrics,
            returns=returns,
            sweep=searched,
        )

    def _frame(self, start: int, stop: int) -> pd.DataFrame:
        # A fresh index from 0: a strategy's signals() sees bars as a run of its own would.
        return self.bars.iloc[start:stop].reset_index(drop=True)

    def _data(self, start: int, stop: int) -> BarData:
        return BarData.from_frame(self._frame(start, stop), self.micros, self.exclude)

    def _times(self, start: int, stop: int) -> tuple[pd.Timestamp, pd.Timestamp]:
        return (
            pd.Timestamp(int(self.data.ts[start]), unit="us"),
            pd.Timestamp(int(self.data.end[stop - 1]), unit="us"),
        )


def _ratio(oos: float, is_: float) -> float:
    return oos / is_ if is_ > 0 and math.isfinite(oos) else math.nan


def _params_text(params: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())
