"""The no-look-ahead gate: a strategy's decisions up to a time may not depend on later bars.

Two tests, each at several cuts. A cut keeps the first ``k`` bars as they are; its time is
the close of the last one kept, bar ``k - 1``. The decisions made on the bars kept are
compared, in order and exactly, with the full run's:

- **prefix** (:func:`check_prefix`): the strategy runs again on the first ``k`` bars only.
  One whose ``ctx.indicator`` function is not causal (``np.roll(close, -1)``, a centred
  window, a full-column mean) or keeps the whole column it is given, or whose ``signals()``
  uses later rows (``bars.close.shift(-1)``), decides differently once the future is cut off.
- **perturbation** (:func:`check_perturbation`): the bars after the cut are changed
  (:func:`perturb_bars`, seeded) and the strategy runs on the full length again: no decision
  on the bars kept may change. It catches what a shorter frame can hide: a leak whose answer
  past the end happens to be the true one (``close.shift(-1) > close`` is False there, as it
  is before a fall) gets the opposite future instead.

A decision is what the strategy did, never what the fill model made of it. In the event
mode: every order it submitted (side, type, size or target, price, tif, its time), every
cancel it asked for and every ``ctx.log`` line. In the vectorized mode: the target
``signals()`` gave each bar from the warm-up on (NaN: none). Fills near a cut differ (a
truncated run has no next bar to fill on) and are not compared.

Each decision belongs to the bar the engine was on when it was made: ``on_bar`` of bar i,
and ``on_fill`` while bar i is matched (it knows bar i's open), are on bar i. So an order
placed in ``on_fill`` at the open of the first bar cut off, stamped with the previous close,
is rightly not a decision "before the cut". ``on_start`` decides before every bar and is
always compared; ``on_stop`` never is (a truncated run's data simply ends), and a truncated
run does not call it.

Equal means equal, not close: a causal computation over the bars up to t gives bit-identical
values on any series that agrees up to t (the built-in indicators do, as do cumulative sums
and pandas' rolling and ewm), so one differing decision among thousands fails the test;
nothing is averaged. The strategy must be deterministic (seed its randomness in
``__init__`` or ``on_start``): one that decides differently on the same bars fails too.

What the runs are not given they cannot change: a strategy that reads the very DataFrame it
is checked on from a closure (a notebook's ``bars``) sees the real future in every run, and
passes. And a leak shows at a cut only when it reaches across it: a peek ``h`` bars ahead is
seen by a cut at most ``h`` bars after the decision, one that reads the whole column (a
full-sample mean, a maximum) by any cut. More cuts see more; each costs one run per test.
"""

from __future__ import annotations

import copy
import math
from bisect import bisect_right
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple, TypeAlias, TypeGuard

import numpy as np
import numpy.typing as npt
import pandas as pd

from workbench.core.fills import BarFills
from workbench.core.intervals import parse_interval
from workbench.engine.bars import BarEngine
from workbench.engine.context import Context
from workbench.engine.data import BAR_FIELDS, BarData
from workbench.engine.modes import check_mode
from workbench.errors import StrategyError, UsageError
from workbench.events import Bar, Order, OrderType, Side, TimeInForce
from workbench.strategy.base import Strategy
from workbench.strategy.registry import make_strategy

DEFAULT_CUTS = 5
"""Cuts per test by default, spread over the second half of the bars the strategy decides
on (:func:`default_cuts`). The second half, because a cut there compares at least half the
decisions and still drops enough bars to move a full-sample statistic; five, because a
gate runs both tests for every candidate: about ten runs of the strategy in all."""

PREFIX = "prefix"
PERTURBATION = "perturbation"

Floats = npt.NDArray[np.float64]
Cut: TypeAlias = int | str | datetime | np.datetime64 | pd.Timestamp
Entry: TypeAlias = tuple[Any, ...]
"""A recorded decision: (bar, kind, time in µs, what was decided…)."""

_FIXED = ("ts", "exchange", "symbol")  # columns a perturbation leaves alone
_SCALARS = (int, float, str, bool, type(None))
_LOG_4 = math.log(4.0)


# -- results ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """One decision of a run: an ``order``, a ``cancel``, a ``log`` line or (vectorized) a
    ``target``; made on bar ``bar`` (its index in the bars) at ``time`` (naive UTC: the
    engine's clock, a bar's close for a target); ``fields`` what was decided, in order."""

    kind: str
    bar: int
    time: pd.Timestamp
    fields: tuple[tuple[str, Any], ...]

    def as_dict(self) -> dict[str, Any]:
        return dict(self.fields)

    def __str__(self) -> str:
        values = self.as_dict()
        if self.kind == "order":
            amount = (
                f"size={_num(values['size'])}"
                if "size" in values
                else f"target={_num(values['target'])}"
            )
            price = f" @ {_num(values['price'])}" if "price" in values else ""
            tif = f" {values['tif']}" if values["tif"] != "gtc" else ""
            return f"{values['side']} {values['type']} {amount}{price}{tif}"
        if self.kind == "cancel":
            return f"cancel {values['order']}"
        if self.kind == "log":
            message = values.pop("message")
            extra = ", ".join(f"{k}={v!r}" for k, v in values.items())
            return f"log {message!r}" + (f" ({extra})" if extra else "")
        return f"target {_num(values['target'])}"


@dataclass(frozen=True)
class Difference:
    """The first decision a run on cut or changed bars made differently from the full run.

    ``cut``: the bars kept as they were (the cut falls before bar ``cut``); ``cut_time``:
    the close of the last of them. ``bar``/``time``: where the runs parted. ``full`` and
    ``other``: each run's first decision that does not match (None: it made no more on the
    bars kept); the later of the two, when on a later bar, is what that run did next.
    ``error``: the other run raised where the full run did not (``full``/``other`` None)."""

    test: str
    cut: int
    cut_time: pd.Timestamp
    bar: int
    time: pd.Timestamp
    full: Decision | None
    other: Decision | None
    error: str | None = None

    @property
    def description(self) -> str:
        if self.test == PREFIX:
            where, run = f"with the bars after {self.cut_time} cut off", "the truncated run"
        else:
            where, run = f"with the bars after {self.cut_time} changed", "the changed run"
        where = f"{where} ({self.cut} kept)"
        if self.error is not None:
            return (
                f"{where.capitalize()}, {run} failed on bar {self.bar} ({self.time}), where "
                f"the full run did not: {self.error}"
            )
        return (
            f"{where.capitalize()}: at {self.time} (bar {self.bar}) the full run decided "
            f"{self._said(self.full)}; {run} decided {self._said(self.other)}"
        )

    def _said(self, decision: Decision | None) -> str:
        if decision is None:
            return "nothing"
        if decision.bar > self.bar:
            return f"nothing (next: {decision} at {decision.time})"
        return str(decision)


@dataclass(frozen=True)
class LookaheadCheck:
    """One test's verdict. ``cuts``: the bars kept at each cut; ``cut_times``: the close of
    the last one kept; ``compared``: the full run's decisions compared, over all cuts (0:
    the strategy decided nothing before any cut, so passing shows nothing); ``differences``:
    the first difference at each cut that had one (``first``: the earliest of them);
    ``seed``: the perturbation's."""

    test: str
    mode: str
    passed: bool
    cuts: tuple[int, ...]
    cut_times: tuple[pd.Timestamp, ...]
    compared: int
    differences: tuple[Difference, ...]
    seed: int | None = None

    @property
    def first(self) -> Difference | None:
        return min(self.differences, key=lambda d: (d.bar, d.cut), default=None)

    @property
    def description(self) -> str:
        name = f"{self.test} test ({self.mode}"
        name += ")" if self.seed is None else f", seed {self.seed})"
        first = self.first
        if first is None:
            how = "with the bars after them cut off" if self.test == PREFIX else "when changed"
            text = (
                f"{name} passed: {self.compared} decisions before "
                f"{len(self.cuts)} cuts, {self.cut_times[0]} to {self.cut_times[-1]}, stayed "
                f"the same {how}"
            )
            if not self.compared:
                text += " — but the strategy decided nothing before any cut: this shows nothing"
            return text
        return (
            f"{name} failed: {len(self.differences)} of {len(self.cuts)} "
            f"cuts changed a decision. First: {first.description}"
        )


class LookaheadChecks(NamedTuple):
    """Both tests' verdicts, from :func:`check_lookahead`."""

    prefix: LookaheadCheck
    perturbation: LookaheadCheck

    @property
    def passed(self) -> bool:
        return self.prefix.passed and self.perturbation.passed

    @property
    def description(self) -> str:
        return f"{self.prefix.description}\n{self.perturbation.description}"


# -- the checks ------------------------------------------------------------------------------
def check_lookahead(
    strategy: str | type[Strategy] | Strategy,
    bars: pd.DataFrame,
    *,
    interval: str,
    params: Mapping[str, object] | None = None,
    fills: BarFills | None = None,
    mode: str = "event",
    cuts: int | Iterable[Cut] = DEFAULT_CUTS,
    seed: int = 0,
    cash: float = 10_000.0,
    exclude: pd.DataFrame | None = None,
) -> LookaheadChecks:
    """Both tests (:func:`check_prefix`, :func:`check_perturbation`) at the same cuts,
    sharing the full run. Arguments as :func:`~workbench.backtest.backtest` takes them;
    ``cuts``: how many (:func:`default_cuts`), or where: bar counts to keep, or times (the
    bars closed by then are kept); ``seed``: the perturbation's."""
    setup = _prepare(strategy, bars, interval, params, fills, mode, cuts, cash, exclude)
    _check_seed(seed)
    full = _reference(setup)
    return LookaheadChecks(_prefix(setup, full), _perturbation(setup, full, seed))


def check_prefix(
    strategy: str | type[Strategy] | Strategy,
    bars: pd.DataFrame,
    *,
    interval: str,
    params: Mapping[str, object] | None = None,
    fills: BarFills | None = None,
    mode: str = "event",
    cuts: int | Iterable[Cut] = DEFAULT_CUTS,
    cash: float = 10_000.0,
    exclude: pd.DataFrame | None = None,
) -> LookaheadCheck:
    """Run on the bars up to each cut only: the decisions before it must be the full run's."""
    setup = _prepare(strategy, bars, interval, params, fills, mode, cuts, cash, exclude)
    return _prefix(setup, _reference(setup))


def check_perturbation(
    strategy: str | type[Strategy] | Strategy,
    bars: pd.DataFrame,
    *,
    interval: str,
    params: Mapping[str, object] | None = None,
    fills: BarFills | None = None,
    mode: str = "event",
    cuts: int | Iterable[Cut] = DEFAULT_CUTS,
    seed: int = 0,
    cash: float = 10_000.0,
    exclude: pd.DataFrame | None = None,
) -> LookaheadCheck:
    """Run on bars changed after each cut (:func:`perturb_bars` with ``seed``): the
    decisions before it must be the full run's."""
    setup = _prepare(strategy, bars, interval, params, fills, mode, cuts, cash, exclude)
    _check_seed(seed)
    return _perturbation(setup, _reference(setup), seed)


def default_cuts(length: int, warmup: int = 0, count: int = DEFAULT_CUTS) -> tuple[int, ...]:
    """Where ``count`` cuts fall over ``length`` bars by default: each keeps
    ``warmup + round(span * f)`` bars, ``span = length - warmup`` being the bars the strategy
    decides on and ``f`` = 0.5, 0.5 + 0.5 / count, … up to 1 - 0.5 / count (five cuts: 0.5,
    0.6, 0.7, 0.8, 0.9). UsageError when the bars are too few for ``count`` distinct cuts
    that keep a bar decided on and drop one."""
    if not _is_int(count) or count < 1:
        raise UsageError(f"cuts must be a positive number of cuts or a list of them, got {count!r}")
    span = length - warmup
    kept = [warmup + round(span * (0.5 + 0.5 * j / count)) for j in range(count)]
    if span < 2 or len(set(kept)) < count or kept[0] <= warmup or kept[-1] >= length:
        raise UsageError(
            f"{length} bars are too few for {count} cuts: the strategy decides on the "
            f"{max(span, 0)} after its warm-up of {warmup}, and the cuts fall in the second "
            "half of those; give more bars or fewer cuts"
        )
    return tuple(kept)


def perturb_bars(bars: pd.DataFrame, keep: int, *, seed: int = 0) -> pd.DataFrame:
    """``bars`` with the rows from ``keep`` on changed, as the perturbation test changes them
    at a cut that keeps ``keep`` bars: every price's distance from the last close kept is
    mirrored (up becomes down) and rescaled by one seeded factor of 1.5-3 or its inverse (in
    log terms, for positive prices), highs and lows swapping so each bar stays consistent;
    each volume is scaled by its own factor of 1/4-4; any other column (but ``ts``,
    ``exchange``, ``symbol``) is shuffled among the changed rows. A peek at a later price
    then finds it on the other side of the last close kept, and one at a later size or range
    finds a different one."""
    missing = [c for c in BAR_FIELDS if c not in bars.columns]
    if missing:
        raise UsageError(f"bars need the columns {', '.join(BAR_FIELDS)}; missing {missing}")
    if not _is_int(keep) or not 1 <= keep < len(bars):
        raise UsageError(
            f"keep must be a number of bars from 1 to {len(bars) - 1}, leaving some to change; "
            f"got {keep!r}"
        )
    _check_seed(seed)
    columns = {c: bars[c].to_numpy(dtype=np.float64) for c in BAR_FIELDS}
    return _changed(bars, columns, int(keep), seed)[0]


# -- runs ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Setup:
    make: Callable[[], Strategy]  # a fresh strategy for each run
    data: BarData
    fills: BarFills
    cash: float
    mode: str
    first: int  # the first bar the strategy decides on: its warm-up
    cuts: tuple[int, ...]

    def time(self, bar: int) -> pd.Timestamp:
        return _stamp(int(self.data.end[bar]))


@dataclass
class _Trace:
    """An event-mode run's decisions in the order made, with the bar each was made on."""

    bars: list[int]
    entries: list[Entry]
    error: tuple[int, int, str] | None = None  # bar, time µs and message, if it raised

    def upto(self, bar: int) -> list[Entry]:
        return self.entries[: bisect_right(self.bars, bar)]  # bars never go back


class _Traced(BarEngine):
    """The bar engine, noting every decision with the bar it is on (``index``: -1 in
    ``on_start``, i in ``on_bar`` of bar i and in ``on_fill`` while bar i is matched)."""

    def __init__(self, strategy: Strategy, data: BarData, fills: BarFills, *, cash: float) -> None:
        super().__init__(strategy, data, fills, cash=cash)
        self.trace = _Trace([], [])
        self.context.decisions = _Log(self)

    def note(self, kind: str, time: int, *what: Any) -> None:
        self.trace.bars.append(self.index)
        self.trace.entries.append((self.index, kind, time, *what))

    def submit(
        self,
        side: Side,
        size: float | None,
        target: float | None,
        type: OrderType,
        price: float | None,
        tif: TimeInForce,
    ) -> Order:
        order = super().submit(side, size, target, type, price, tif)
        self.note("order", order.created_us, side, type, size, target, order.price, tif)
        return order

    def cancel(self, client_order_id: str, reason: str) -> bool:
        cancelled = super().cancel(client_order_id, reason)
        self.note("cancel", self.clock.time_us(), client_order_id, cancelled)
        return cancelled


class _Log(list[tuple[int, str, dict[str, Any]]]):
    """A Context's decision log that also notes each line in the engine's trace."""

    def __init__(self, engine: _Traced) -> None:
        super().__init__()
        self.engine = engine

    def append(self, line: tuple[int, str, dict[str, Any]], /) -> None:
        super().append(line)
        when, message, fields = line
        self.engine.note("log", when, message, _snapshot(fields))


class _Enough(Exception):
    """Stops a changed run after the last bar it is compared on: the rest is not looked at."""


def _event_run(
    setup: _Setup, data: BarData, *, truncated: bool = False, until: int | None = None
) -> _Trace:
    """A traced run; a StrategyError is noted in the trace (the caller decides)."""
    strategy = setup.make()
    engine = _Traced(strategy, data, setup.fills, cash=setup.cash)
    # The strategy is this run's own copy, so shadowing its callbacks touches no one else's.
    if truncated:
        vars(strategy)["on_stop"] = _ignore
    if until is not None:
        decide = strategy.on_bar

        def on_bar(ctx: Context, bar: Bar) -> None:
            if engine.index > until:
                raise _Enough
            decide(ctx, bar)

        vars(strategy)["on_bar"] = on_bar
    try:
        engine.run()
    except StrategyError as exc:
        if not isinstance(exc.__cause__, _Enough):
            engine.trace.error = (engine.index, engine.clock.time_us(), str(exc))
    return engine.trace


def _ignore(ctx: Context) -> None:
    pass


def _targets(setup: _Setup, frame: pd.DataFrame) -> Floats | str:
    """What ``signals()`` decides on ``frame``, or why it could not say."""
    strategy = setup.make()
    try:
        targets = np.asarray(strategy.signals(frame), dtype=np.float64)
    except Exception as exc:
        return f"strategy {strategy.name} raised {type(exc).__name__}: {exc} in signals"
    if targets.shape != (len(frame),):
        return (
            f"strategy {strategy.name}: signals() gave {targets.size} values for {len(frame)} bars"
        )
    return targets


def _reference(setup: _Setup) -> _Trace | Floats:
    """The full run, whose failure is the strategy's own: raised."""
    if setup.mode == "event":
        trace = _event_run(setup, setup.data)
        if trace.error is not None:
            raise StrategyError(trace.error[2])
        return trace
    targets = _targets(setup, setup.data.frame)
    if isinstance(targets, str):
        raise StrategyError(targets)
    return targets


def _prefix(setup: _Setup, full: _Trace | Floats) -> LookaheadCheck:
    found = []
    for cut in setup.cuts:
        other: _Trace | Floats | str
        if setup.mode == "event":
            other = _event_run(setup, _head(setup.data, cut), truncated=True)
        else:
            other = _targets(setup, setup.data.frame.iloc[:cut])
        found.append(_compare(setup, PREFIX, cut, full, other))
    return _verdict(setup, PREFIX, full, found, None)


def _perturbation(setup: _Setup, full: _Trace | Floats, seed: int) -> LookaheadCheck:
    data, found = setup.data, []
    for cut in setup.cuts:
        frame, columns = _changed(data.frame, {c: data.column(c) for c in BAR_FIELDS}, cut, seed)
        other: _Trace | Floats | str
        if setup.mode == "event":
            changed = replace(
                data,
                open=columns["open"],
                high=columns["high"],
                low=columns["low"],
                close=columns["close"],
                volume=columns["volume"],
                frame=frame,
            )
            other = _event_run(setup, changed, until=cut - 1)
        else:
            other = _targets(setup, frame)
        found.append(_compare(setup, PERTURBATION, cut, full, other))
    return _verdict(setup, PERTURBATION, full, found, seed)


def _verdict(
    setup: _Setup,
    test: str,
    full: _Trace | Floats,
    found: list[Difference | None],
    seed: int | None,
) -> LookaheadCheck:
    if isinstance(full, _Trace):
        compared = sum(bisect_right(full.bars, cut - 1) for cut in setup.cuts)
    else:
        compared = sum(int(np.count_nonzero(~np.isnan(full[setup.first : c]))) for c in setup.cuts)
    differences = tuple(d for d in found if d is not None)
    return LookaheadCheck(
        test=test,
        mode=setup.mode,
        passed=not differences,
        cuts=setup.cuts,
        cut_times=tuple(setup.time(cut - 1) for cut in setup.cuts),
        compared=compared,
        differences=differences,
        seed=seed,
    )


# -- comparing -------------------------------------------------------------------------------
def _compare(
    setup: _Setup, test: str, cut: int, full: _Trace | Floats, other: _Trace | Floats | str
) -> Difference | None:
    """The first difference in the decisions on the bars a cut keeps, or None."""
    last = cut - 1

    def found(
        bar: int,
        time: pd.Timestamp,
        mine: Decision | None,
        yours: Decision | None,
        error: str | None = None,
    ) -> Difference:
        return Difference(test, cut, setup.time(last), bar, time, mine, yours, error)

    if isinstance(other, str):  # signals() failed: none of its decisions can be compared
        return found(setup.first, setup.time(setup.first), None, None, other)
    if isinstance(full, _Trace) and isinstance(other, _Trace):
        ours, theirs = full.upto(last), other.upto(last)
        j = _first_mismatch(ours, theirs)
        mine = _decision(ours[j]) if j is not None and j < len(ours) else None
        yours = _decision(theirs[j]) if j is not None and j < len(theirs) else None
        parted = min((d.bar for d in (mine, yours) if d is not None), default=None)
        failed = other.error
        if failed is not None and failed[0] <= last and (parted is None or parted >= failed[0]):
            # It raised on bars the full run got through: decisions from there on are moot.
            return found(failed[0], _stamp(failed[1]), None, None, failed[2])
        if parted is None:
            return None
        when = min(d.time for d in (mine, yours) if d is not None and d.bar == parted)
        return found(parted, when, mine, yours)
    if not (isinstance(full, np.ndarray) and isinstance(other, np.ndarray)):
        raise TypeError("a run of one mode compared with a run of another")
    start = setup.first
    a, b = full[start:cut], other[start:cut]
    differ = ~((a == b) | (np.isnan(a) & np.isnan(b)))
    if not differ.any():
        return None
    bar = start + int(np.argmax(differ))
    return found(
        bar, setup.time(bar), _target(setup, bar, full[bar]), _target(setup, bar, other[bar])
    )


def _first_mismatch(ours: list[Entry], theirs: list[Entry]) -> int | None:
    """The first position where two decision lists differ (one ending counts), or None."""
    common = min(len(ours), len(theirs))
    try:
        same = ours[:common] == theirs[:common]  # in C, the usual case
    except Exception:  # a logged array or frame: ambiguous truth
        same = False
    if not same:
        for j in range(common):
            if not _same(ours[j], theirs[j]):
                return j
    return None if len(ours) == len(theirs) else common


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN, containers element by element."""
    if a is b:
        return True
    if isinstance(a, (float, np.floating)) and isinstance(b, (float, np.floating)):
        return bool(a == b or (a != a and b != b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        try:
            return bool(np.array_equal(a, b, equal_nan=True))
        except TypeError:  # equal_nan on objects
            return bool(np.array_equal(a, b))
    if isinstance(a, (pd.Series, pd.DataFrame, pd.Index)):
        return bool(a.equals(b))
    try:
        return bool(a == b)
    except Exception:
        return False


def _snapshot(fields: dict[str, Any]) -> dict[str, Any]:
    """A log line's fields as they are now: a later change to a logged list is not a
    different decision then."""
    if all(type(v) in _SCALARS for v in fields.values()):
        return dict(fields)
    try:
        return copy.deepcopy(fields)
    except Exception:
        return dict(fields)


def _decision(entry: Entry) -> Decision:
    bar, kind, time, *what = entry
    if kind == "order":
        side, type_, size, target, price, tif = what
        fields: list[tuple[str, Any]] = [("side", side), ("type", type_)]
        fields.append(("size", size) if size is not None else ("target", target))
        if price is not None:
            fields.append(("price", price))
        fields.append(("tif", tif))
    elif kind == "cancel":
        fields = [("order", what[0]), ("working", what[1])]
    else:
        message, values = what
        fields = [("message", message), *values.items()]
    return Decision(kind, bar, _stamp(time), tuple(fields))


def _target(setup: _Setup, bar: int, value: float) -> Decision | None:
    if math.isnan(value):
        return None
    return Decision("target", bar, setup.time(bar), (("target", float(value)),))


# -- inputs ----------------------------------------------------------------------------------
def _prepare(
    strategy: str | type[Strategy] | Strategy,
    bars: pd.DataFrame,
    interval: str,
    params: Mapping[str, object] | None,
    fills: BarFills | None,
    mode: str,
    cuts: int | Iterable[Cut],
    cash: float,
    exclude: pd.DataFrame | None,
) -> _Setup:
    chosen = make_strategy(strategy, params)
    check_mode(mode, type(chosen))
    every = parse_interval(interval)
    if not (_is_number(cash) and cash > 0 and math.isfinite(cash)):
        raise UsageError(f"cash must be a positive amount, got {cash!r}")
    if fills is not None and not isinstance(fills, BarFills):
        raise UsageError(f"fills must be a BarFills, got {type(fills).__name__}")
    data = BarData.from_frame(bars, every.micros, exclude)
    first = max(0, int(chosen.warmup()))
    return _Setup(
        make=_maker(strategy, params, chosen),
        data=data,
        fills=fills or BarFills(),
        cash=float(cash),
        mode=mode,
        first=first,
        cuts=_cut_positions(cuts, data, first),
    )


def _maker(
    spec: str | type[Strategy] | Strategy,
    params: Mapping[str, object] | None,
    chosen: Strategy,
) -> Callable[[], Strategy]:
    """Fresh strategies, one per run: state one run leaves must not steer the next."""
    if isinstance(spec, Strategy):
        try:
            pristine = copy.deepcopy(chosen)  # the caller's instance is never run
        except Exception as exc:
            raise UsageError(
                f"cannot copy the strategy instance {chosen.name} for the check's runs "
                f"({type(exc).__name__}: {exc}); pass its class and params instead"
            ) from exc
        return lambda: copy.deepcopy(pristine)
    cls, given = type(chosen), dict(params or {})  # found once: a file is imported once
    return lambda: cls(**given)


def _cut_positions(cuts: int | Iterable[Cut], data: BarData, first: int) -> tuple[int, ...]:
    n = len(data)
    if _is_int(cuts):
        return default_cuts(n, first, int(cuts))
    if isinstance(cuts, (str, bytes)) or not isinstance(cuts, Iterable):
        raise UsageError(
            f"cuts must be a number of cuts or a list of bar counts or times, got {cuts!r}"
        )
    given = list(cuts)
    if not given:
        raise UsageError("no cuts given: pass a number of cuts or a list of them")
    kept = [_bars_kept(cut, data) for cut in given]
    for cut, k in zip(given, kept, strict=True):
        if not first < k < n:
            raise UsageError(
                f"cut {cut!r} keeps {k} of the {n} bars: a cut must keep more than the "
                f"warm-up of {first} (a bar the strategy decides on) and drop at least one"
            )
    if len(set(kept)) < len(kept):
        raise UsageError(f"cuts {given!r} fall at the same bar more than once")
    return tuple(sorted(kept))


def _bars_kept(cut: Cut, data: BarData) -> int:
    """A bar count as given; a time: the bars closed by then."""
    if _is_int(cut):
        return int(cut)
    try:
        stamp = pd.Timestamp(cut)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"a cut is a number of bars or a time, got {cut!r}") from exc
    if stamp is pd.NaT:
        raise UsageError(f"a cut is a number of bars or a time, got {cut!r}")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    micros = int(stamp.to_datetime64().astype("datetime64[us]").astype(np.int64))
    return int(np.searchsorted(data.end, micros, side="right"))


def _check_seed(seed: int) -> None:
    if not _is_int(seed) or seed < 0:
        raise UsageError(f"seed must be a non-negative integer, got {seed!r}")


def _is_int(value: object) -> TypeGuard[int | np.integer[Any]]:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# -- data ------------------------------------------------------------------------------------
def _head(data: BarData, keep: int) -> BarData:
    """The first ``keep`` bars, as checked already."""
    return replace(
        data,
        ts=data.ts[:keep],
        end=data.end[:keep],
        open=data.open[:keep],
        high=data.high[:keep],
        low=data.low[:keep],
        close=data.close[:keep],
        volume=data.volume[:keep],
        frame=data.frame.iloc[:keep],
        halted=data.halted[:keep],
    )


def _changed(
    frame: pd.DataFrame, columns: dict[str, Floats], keep: int, seed: int
) -> tuple[pd.DataFrame, dict[str, Floats]]:
    """See :func:`perturb_bars`: the changed frame and its OHLCV columns."""
    rng = np.random.default_rng((seed, keep))  # a cut's change does not depend on the others
    n = len(frame)
    scale = float(rng.uniform(1.5, 3.0)) ** float(rng.choice((-1.0, 1.0)))
    volume = np.exp(rng.uniform(-_LOG_4, _LOG_4, n - keep))
    rows = np.concatenate((np.arange(keep), keep + rng.permutation(n - keep)))
    anchor = float(columns["close"][keep - 1])
    tails = {c: columns[c][keep:] for c in ("open", "high", "low", "close")}
    positive = anchor > 0 and all(bool((t > 0).all()) for t in tails.values())
    there: Callable[[Any], Any] = np.log if positive else np.asarray
    back: Callable[[Any], Any] = np.exp if positive else np.asarray
    centre = there(anchor)

    def mirror(values: Floats) -> Floats:
        mirrored: Floats = back(centre - scale * (there(values) - centre))
        return mirrored

    open_, close = mirror(tails["open"]), mirror(tails["close"])
    # Mirroring turns lows into highs; max/min keep each bar consistent against rounding.
    new = {
        "open": open_,
        "high": np.maximum(mirror(tails["low"]), np.maximum(open_, close)),
        "low": np.minimum(mirror(tails["high"]), np.minimum(open_, close)),
        "close": close,
        "volume": columns["volume"][keep:] * volume,
    }
    changed = frame.copy(deep=False)
    for name in frame.columns:
        if name not in _FIXED and name not in BAR_FIELDS:
            changed[name] = frame[name].array.take(rows)
    out = {}
    for name, tail in new.items():
        whole = columns[name].copy()
        whole[keep:] = tail
        changed[name] = whole
        out[name] = whole
    return changed, out


def _stamp(micros: int) -> pd.Timestamp:
    return pd.Timestamp(micros, unit="us")


def _num(value: float) -> str:
    return repr(float(value))
