"""``sweep()``: one strategy backtested at every point of a parameter grid, in parallel.

Each point is a trial: the strategy made with those parameters and run over the same bars,
by the event engine or its vectorized path. Trials run in worker processes — joblib's loky
pool by default, or a Dask cluster (``backend="dask"``: a local one, or a running scheduler's
address) — and come back in grid order whatever the order they finish in, so the table is
the same with 1 worker or 16. A point the strategy refuses (``fast >= slow``) is a row with
status ``invalid``; a trial whose account is wiped out is a row with status ``wiped out``
and NaN metrics; a strategy that raises stops the sweep with its StrategyError.

The sweep keeps what a validation gate needs to account for the search: how many trials ran
and every trial's per-bar returns.
"""

from __future__ import annotations

import contextlib
import functools
import html
import itertools
import math
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import joblib
import numpy as np
import numpy.typing as npt
import pandas as pd

from workbench.backtest.grid import axes, expand
from workbench.backtest.recipe import Recipe, StrategySpec
from workbench.backtest.result import run_metrics, wiped_out
from workbench.core.fills import BarFills
from workbench.core.intervals import parse_interval
from workbench.core.metrics import performance
from workbench.core.portfolio import starting_cash
from workbench.engine.bars import Run
from workbench.engine.data import BarData
from workbench.engine.modes import check_mode, simulate, vectorized
from workbench.engine.vectorized import Execution
from workbench.errors import UsageError
from workbench.strategy.base import Strategy
from workbench.strategy.registry import find_strategy

BACKENDS = ("loky", "dask")
BATCHES_PER_WORKER = 4
METRICS = tuple(
    performance(
        np.ones(1),
        np.zeros(1, dtype=np.int64),
        np.zeros(0),
        periods_per_year=1.0,
        fees_paid=0.0,
        traded_notional=0.0,
        exposure=0.0,
    )
)
"""Every metric a trial row carries, in :func:`~workbench.core.metrics.performance`'s order."""

Floats = npt.NDArray[np.float64]


@dataclass
class SweepResult:
    """``table``: one row per grid point, in grid order — ``trial``, the parameters, ``status``
    (``ok``, ``wiped out`` or ``invalid``), ``reason`` and every metric. ``returns``: the
    per-bar returns of every trial that ran (one column per trial number, indexed by the
    bar's close), what a validation gate deflates the best Sharpe ratio with."""

    strategy: str
    grid: dict[str, list[object]]
    interval: str
    mode: str
    table: pd.DataFrame
    returns: pd.DataFrame = field(repr=False)
    recipe: Recipe | None = field(default=None, repr=False)
    """What each trial ran (its ``params`` empty: the grid's), to sweep again changed."""

    @property
    def trials(self) -> int:
        """How many parameter sets were actually tested (invalid points are not)."""
        return int((self.table["status"] != "invalid").sum())

    def best(self, metric: str = "sharpe") -> pd.Series:
        """The row of the trial with the highest ``metric`` (the first of equals)."""
        if metric not in METRICS:
            raise UsageError(f"unknown metric {metric!r}; choose from {', '.join(METRICS)}")
        ranked = self.table[self.table["status"] == "ok"][metric].dropna()
        if ranked.empty:
            raise UsageError(f"no trial has a {metric}: every one was invalid or wiped out")
        return self.table.loc[ranked.idxmax()]

    def __repr__(self) -> str:
        return f"<SweepResult {self.strategy} {self.interval}: {self.trials} trials>"

    def _repr_html_(self) -> str:
        top = self.table.sort_values("sharpe", ascending=False, kind="stable").head(10)
        return (
            f"<div><h4>Sweep of {html.escape(self.strategy)} on {html.escape(self.interval)} "
            f"bars ({self.mode}): {self.trials} trials</h4><p>The 10 best by Sharpe:</p>"
            f"{top.to_html(index=False)}</div>"
        )


@dataclass(frozen=True)
class _Trial:
    """What a worker needs for one grid point, besides the bars its batch shares."""

    spec: StrategySpec
    params: dict[str, object]
    fills: BarFills
    cash: float
    mode: str
    interval_seconds: float


def sweep(
    strategy: StrategySpec,
    grid: Mapping[str, object],
    bars: pd.DataFrame,
    *,
    interval: str,
    fills: BarFills | None = None,
    cash: float = 10_000.0,
    mode: str = "event",
    n_jobs: int = -1,
    backend: str = "loky",
    scheduler: str | None = None,
    progress: bool = True,
    exclude: pd.DataFrame | None = None,
) -> SweepResult:
    """Backtest ``strategy`` (a name, ``file.py:Class`` or a class) at every point of
    ``grid`` (see :mod:`workbench.backtest.grid`) over ``bars`` (as :func:`backtest` takes
    them), on ``n_jobs`` worker processes (-1: one per core; 1: in this process). ``backend``
    ``"dask"`` runs them on a local Dask cluster of ``n_jobs`` workers, or on ``scheduler``
    (an address such as ``tcp://10.0.0.5:8786``) when given. ``progress`` shows a tqdm bar.
    ``exclude``: windows kept out of trading, as :func:`backtest` takes them."""
    cls = find_strategy(strategy)
    every = parse_interval(interval)
    check_mode(mode, cls)
    if backend not in BACKENDS:
        raise UsageError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0 or n_jobs < -1:
        raise UsageError(f"n_jobs is a number of workers (or -1 for every core), got {n_jobs!r}")
    if scheduler is not None and backend != "dask":
        raise UsageError("a scheduler address is for backend='dask'")
    cash = starting_cash(cash)
    data = BarData.from_frame(bars, every.micros, exclude)
    declared = cls.declared()
    unknown = [name for name in grid if name not in declared]
    if unknown:
        raise UsageError(
            f"{cls.name} has no parameter {', '.join(unknown)} (it takes: "
            f"{', '.join(declared) or 'none'})"
        )
    points = expand(grid)
    # A file strategy is shipped by its spec and imported again in the worker, since its
    # module exists only in this process; built-ins and notebook classes travel as they are.
    ship: StrategySpec = strategy if isinstance(strategy, str) else cls
    rows: list[dict[str, Any]] = []
    trials: list[_Trial] = []
    for number, point in enumerate(points):
        try:
            made = cls(**point)
        except UsageError as exc:
            rows.append(_row(number, _typed(cls, point), "invalid", str(exc)))
            continue
        rows.append(_row(number, made.params, "ok", ""))
        trials.append(_Trial(ship, made.params, fills or BarFills(), cash, mode, every.seconds))
    if not trials:
        raise UsageError(f"no point of the grid is valid for {cls.name}: {rows[0]['reason']}")
    workers = (os.cpu_count() or 1) if n_jobs == -1 else n_jobs
    runner = _dask if backend == "dask" else _loky
    outcomes = _progress(runner(trials, data, workers, scheduler), len(trials), progress, cls.name)
    returns: dict[int, Floats] = {}
    ran = [row for row in rows if row["status"] == "ok"]
    for row, (ruin, metrics, curve) in zip(ran, outcomes, strict=True):
        if ruin:
            row.update(status="wiped out", reason=ruin)
        row.update(metrics)
        returns[row["trial"]] = curve
    closes = pd.Index(data.end[1:].astype("datetime64[us]"), name="ts")
    return SweepResult(
        strategy=cls.name,
        grid=axes(grid),
        interval=every.name,
        mode=mode,
        table=pd.DataFrame(rows),
        returns=pd.DataFrame(returns, index=closes),
        recipe=Recipe(
            strategy,
            params={},
            bars=bars,
            interval=every.name,
            fills=fills or BarFills(),
            cash=cash,
            mode=mode,
            exclude=exclude,
        ),
    )


def _typed(cls: type[Strategy], point: Mapping[str, object]) -> dict[str, object]:
    """A refused point's values, each parsed by its parameter where it parses alone, and
    the defaults of the rest (as an accepted point's row shows them)."""
    typed = {name: param.default for name, param in cls.declared().items()} | dict(point)
    for name, value in point.items():
        with contextlib.suppress(UsageError):  # else shown as given; the reason says why
            typed[name] = cls.declared()[name].check(value, cls.name)
    return typed


def _row(number: int, params: Mapping[str, object], status: str, reason: str) -> dict[str, Any]:
    return {
        "trial": number,
        **params,
        "status": status,
        "reason": reason,
        **dict.fromkeys(METRICS, math.nan),
    }


Outcome = tuple[str | None, dict[str, float], Floats]


def run_trial(trial: _Trial, data: BarData) -> Outcome:
    """One grid point: (why it was wiped out or None, its metrics, its per-bar returns)."""
    strategy = find_strategy(trial.spec)(**trial.params)
    run: Run | Execution
    if trial.mode == "vectorized":  # the arrays are all a trial needs: no order objects
        run = vectorized(strategy, data, trial.fills, cash=trial.cash)
    else:
        run = simulate(strategy, data, trial.fills, cash=trial.cash)
    ruin = wiped_out(run)
    if ruin:
        return ruin, dict.fromkeys(METRICS, math.nan), np.full(len(data) - 1, math.nan)
    equity = run.equity
    return None, run_metrics(run, trial.interval_seconds), equity[1:] / equity[:-1] - 1.0


@functools.lru_cache(maxsize=1)
def _shared_bars(path: str) -> BarData:
    """The sweep's bars in a worker: mapped from the file the sweep wrote, once per worker,
    so its batches share one copy and one set of bar events (built by the first trial)."""
    data: BarData = joblib.load(path, mmap_mode="r")
    return data


def run_batch(
    trials: list[_Trial], data: BarData | str, returns: npt.NDArray[np.float64], first: int
) -> list[tuple[str | None, dict[str, float]]]:
    """Trials ``first``, ``first + 1``, … of a sweep on ``data`` (or the file holding it):
    their returns go straight into the sweep's shared ``returns`` (a memory map, one row per
    trial), the rest comes back."""
    if isinstance(data, str):
        data = _shared_bars(data)
    outcomes = []
    for row, trial in enumerate(trials, first):
        ruin, metrics, returns[row] = run_trial(trial, data)
        outcomes.append((ruin, metrics))
    return outcomes


def _loky(
    trials: list[_Trial], data: BarData, workers: int, scheduler: str | None
) -> Iterator[Outcome]:
    from joblib.externals.loky import get_reusable_executor

    # Trials go in a few batches per worker (more batches than workers keep them all busy to
    # the end); the bars are written once to a file each worker maps once.
    count = min(len(trials), workers * BATCHES_PER_WORKER)
    cuts = [len(trials) * k // count for k in range(count + 1)]
    # In memory where the system has a RAM disk (as joblib does): the returns written there
    # are never flushed to a disk.
    shm = "/dev/shm" if os.access("/dev/shm", os.W_OK) else None
    scratch = tempfile.mkdtemp(prefix="workbench-sweep-", dir=shm)
    try:
        # Every trial's returns (8 MB a million bars) are written by its worker into one
        # file both sides map, rather than pickled back through a pipe.
        returns = np.lib.format.open_memmap(
            os.path.join(scratch, "returns.npy"), mode="w+", shape=(len(trials), len(data) - 1)
        )
        source: BarData | str = data
        if workers > 1:
            source = os.path.join(scratch, "bars.pkl")
            joblib.dump(data, source)
        batches = (
            joblib.delayed(run_batch)(trials[a:b], source, returns, a)
            for a, b in itertools.pairwise(cuts)
        )
        with joblib.Parallel(n_jobs=workers, backend="loky", return_as="generator") as parallel:
            row = 0
            for outcomes in parallel(batches):
                for ruin, metrics in outcomes:
                    yield ruin, metrics, np.array(returns[row])
                    row += 1
        del returns
    finally:
        if workers > 1:  # the sweep's workers end with it, not minutes later when idle
            get_reusable_executor().shutdown(wait=True)
        shutil.rmtree(scratch, ignore_errors=True)


def _dask(
    trials: list[_Trial], data: BarData, workers: int, scheduler: str | None
) -> Iterator[Outcome]:
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise UsageError(
            "backend='dask' needs Dask's distributed scheduler: pip install 'workbench[dask]'"
        ) from None
    if scheduler is None:
        cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
        )
        client = Client(cluster)
    else:
        cluster, client = None, Client(scheduler)
    try:
        shared = client.scatter(data, broadcast=True)
        futures = client.map(run_trial, trials, data=shared, pure=False)
        for future in futures:  # in grid order; each waits only for its own trial
            yield future.result()
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _progress(outcomes: Iterator[Outcome], total: int, show: bool, name: str) -> Iterator[Outcome]:
    if not show:  # not even a disabled bar: tqdm would start its monitor thread
        yield from outcomes
        return
    from tqdm.auto import tqdm

    with tqdm(total=total, desc=f"sweep {name}", unit="trial") as bar:
        for outcome in outcomes:
            yield outcome
            bar.update()
