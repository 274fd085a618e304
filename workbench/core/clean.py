"""Cleaning recorded market data: exactly defined rules that flag or drop rows, and a report.

Raw data is never changed. :func:`clean_frame` takes a DataFrame shaped like a recorder table
(``trades``, ``quotes`` or ``book_snapshots``) and returns a new frame of the rows that pass,
with missing values filled per column policy, one flag row per (row, rule) hit, and a
:class:`CleanReport`. ``workbench.analysis.clean`` runs the same rules as DuckDB SQL over the
stored tables; both implement the definitions here, and the tests hold them to the same flags
on a fixture with known defects.

Vocabulary shared by every rule:

- ``row_id`` names a row: its position in the input frame (in DuckDB, the raw table's
  ``rowid``).
- *Arrival order* is ``(recv_ts, row_id)``, NULL ``recv_ts`` last: "first" in the duplicate
  rules, and the order in which the out-of-order rule replays a series. (Not ``rowid``
  alone: DuckDB does not keep insertion order in ``rowid`` for an ``INSERT ... ON CONFLICT``,
  which is how the recorder writes ``trades``.)
- A *series* is the rows of one ``(exchange, symbol)`` (book snapshots: one
  ``(exchange, symbol, side, level)``); *time order* within it is ``(ts, row_id)``.

The rules run in three stages, so that a bad row cannot distort rules that look at its
neighbours (every rule is documented on its function below):

1. row rules, judged on every raw row: ``required``, ``non_positive``, ``crossed``,
   ``invalid_book``, ``future``, ``clock_skew``, ``duplicate``, ``duplicate_id``,
   ``quality_window``;
2. ``missing``, on the rows no stage-1 rule drops: NULL value columns are filled (``ffill``,
   ``interpolate``) or the row is dropped, per column (:func:`fill_missing`);
3. sequence rules (trades and quotes), on the rows left after stage 2, with filled values:
   ``out_of_order``, ``zscore``, ``hampel``, ``stale``, ``time_gap``.

A row can hit several rules; counts are per rule. Every rule except ``missing`` has an action,
``drop`` (the row leaves the clean output) or ``flag`` (it stays, and the flag is recorded);
the defaults are in :data:`RULES` and :attr:`CleanConfig.actions` overrides them, except for
the :data:`FIXED` rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from workbench.errors import UsageError

MAD_SCALE: Final = 1.4826
"""MAD × this estimates the standard deviation of normally distributed data."""

EXAMPLES: Final = 3
"""Flagged rows per rule kept as examples in a report."""

OPENING_KINDS: Final = ("gap", "checksum", "crossed", "stale", "disconnect")
"""``quality_events`` kinds after which a symbol's data is untrustworthy until its resync."""

ACTIONS: Final = ("drop", "flag")
FIXED: Final = ("required", "missing")
"""Rules without a choice of action: a row without its keys cannot be placed in a series
(so it is always dropped), and ``missing`` follows the per-column fill policy."""
FILLS: Final = ("drop", "ffill", "interpolate")

_HAMPEL_CHUNK = 65_536
"""Windows per np.median call: bounds each (chunk × window) temporary to ~10 MB."""

_EPOCH = datetime(1970, 1, 1)
_NO_END = np.iinfo(np.int64).max


@dataclass(frozen=True)
class TableSpec:
    """What cleaning needs to know about one recorder table's columns."""

    kind: str
    columns: tuple[str, ...]
    keys: tuple[str, ...]
    """``required``: a row with any of these NULL cannot be placed, so nothing can repair it."""
    values: tuple[str, ...]
    """``missing``: NULLs here are filled or dropped per column policy."""
    positive: tuple[str, ...]
    """Prices and sizes: ``non_positive`` checks them, ``stale`` compares them, and only they
    may be interpolated."""
    series: tuple[str, ...]
    sequence: bool
    """Whether the stage-3 sequence rules apply (a book snapshot is a set, not a sequence)."""

    @property
    def signal(self) -> str:
        """What the outlier rules judge: the trade price, or the quote mid."""
        return "price" if self.kind == "trades" else "mid"


TABLE_SPECS: Mapping[str, TableSpec] = {
    s.kind: s
    for s in (
        TableSpec(
            "trades",
            columns=("exchange", "symbol", "ts", "recv_ts", "price", "size", "side", "trade_id"),
            keys=("exchange", "symbol", "ts", "trade_id"),
            values=("recv_ts", "price", "size", "side"),
            positive=("price", "size"),
            series=("exchange", "symbol"),
            sequence=True,
        ),
        TableSpec(
            "quotes",
            columns=(
                "exchange",
                "symbol",
                "ts",
                "recv_ts",
                "bid_price",
                "bid_size",
                "ask_price",
                "ask_size",
            ),
            keys=("exchange", "symbol", "ts"),
            values=("recv_ts", "bid_price", "bid_size", "ask_price", "ask_size"),
            positive=("bid_price", "bid_size", "ask_price", "ask_size"),
            series=("exchange", "symbol"),
            sequence=True,
        ),
        TableSpec(
            "book_snapshots",
            columns=(
                "exchange",
                "symbol",
                "ts",
                "recv_ts",
                "seq",
                "valid",
                "side",
                "level",
                "price",
                "size",
            ),
            keys=("exchange", "symbol", "ts", "side", "level"),
            values=("recv_ts", "valid", "price", "size"),
            positive=("price", "size"),
            series=("exchange", "symbol", "side", "level"),
            sequence=False,
        ),
    )
}
"""The recorder tables cleaning understands, by kind (``seq`` may be NULL by design)."""

SNAPSHOT_KEY: Final = ("exchange", "symbol", "ts", "recv_ts")
"""The rows of one book snapshot share these (``seq`` can be NULL, so it is not part of it)."""


@dataclass(frozen=True)
class Rule:
    """A rule's name, the stage it runs in, the tables it applies to and its default action."""

    name: str
    stage: int
    kinds: tuple[str, ...]
    action: str
    description: str


_ALL = ("trades", "quotes", "book_snapshots")
_SEQ = ("trades", "quotes")

RULES: Mapping[str, Rule] = {
    r.name: r
    for r in (
        Rule("required", 1, _ALL, "drop", "a key column (which instrument, when, which) is NULL"),
        Rule("non_positive", 1, _ALL, "drop", "a price or size is <= 0"),
        Rule("crossed", 1, ("quotes", "book_snapshots"), "drop", "ask <= bid"),
        Rule("invalid_book", 1, ("book_snapshots",), "drop", "recorded while the book was invalid"),
        Rule("future", 1, _ALL, "drop", "ts is later than now"),
        Rule("clock_skew", 1, _ALL, "flag", "|recv_ts - ts| exceeds max_skew"),
        Rule("duplicate", 1, _ALL, "drop", "exact copy of an earlier row"),
        Rule("duplicate_id", 1, ("trades",), "drop", "trade_id seen before, with other content"),
        Rule("quality_window", 1, _ALL, "flag", "inside a quality_events window (gap .. resync)"),
        Rule("missing", 2, _ALL, "fill", "a value column is NULL (filled, or dropped per policy)"),
        Rule("out_of_order", 3, _SEQ, "flag", "ts before an earlier arrival's by > tolerance"),
        Rule("zscore", 3, _SEQ, "flag", "rolling z-score of price/mid above threshold"),
        Rule("hampel", 3, _SEQ, "flag", "price/mid off the rolling median by > n MADs"),
        Rule("stale", 3, _SEQ, "flag", "repeats the previous row within a long unchanged run"),
        Rule("time_gap", 3, _SEQ, "flag", "first row after a silence longer than max_gap"),
    )
}
"""Every rule in report order, with its default action."""


@dataclass(frozen=True)
class ZScore:
    """Rolling z-score: judge each value against the ``window`` values before it."""

    window: int = 50
    threshold: float = 4.0

    def __post_init__(self) -> None:
        if self.window < 2:
            raise UsageError(f"zscore window must be at least 2, got {self.window}")
        if not self.threshold > 0:
            raise UsageError(f"zscore threshold must be > 0, got {self.threshold}")


@dataclass(frozen=True)
class Hampel:
    """Hampel filter: judge each value against the median and MAD of a centred window."""

    half_window: int = 10
    n_sigmas: float = 3.0

    def __post_init__(self) -> None:
        if self.half_window < 1:
            raise UsageError(f"hampel half_window must be at least 1, got {self.half_window}")
        if not self.n_sigmas > 0:
            raise UsageError(f"hampel n_sigmas must be > 0, got {self.n_sigmas}")

    @property
    def width(self) -> int:
        return 2 * self.half_window + 1

    @property
    def factor(self) -> float:
        """Allowed deviation in units of raw MAD (computed once, so SQL and numpy agree)."""
        return self.n_sigmas * MAD_SCALE


@dataclass(frozen=True)
class CleanConfig:
    """Thresholds, fill policies and actions; the defaults suit tick data from a live feed.

    ``fill`` maps a value column to ``drop`` (the default), ``ffill`` or ``interpolate``
    (prices and sizes only); a column of another table is ignored, so one config serves
    trades, quotes and books. ``actions`` maps a rule to ``drop`` or ``flag``. ``None``
    switches off ``max_gap``, ``stale_rows``, ``zscore`` and ``hampel``.
    """

    max_skew: timedelta = timedelta(seconds=5)
    reorder_tolerance: timedelta = timedelta(seconds=1)
    max_gap: timedelta | None = timedelta(minutes=1)
    stale_rows: int | None = 50
    zscore: ZScore | None = field(default_factory=ZScore)
    hampel: Hampel | None = field(default_factory=Hampel)
    fill: Mapping[str, str] = field(default_factory=dict)
    actions: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.max_skew <= timedelta(0):
            raise UsageError(f"max_skew must be positive, got {self.max_skew}")
        if self.reorder_tolerance < timedelta(0):
            raise UsageError(f"reorder_tolerance must be >= 0, got {self.reorder_tolerance}")
        if self.max_gap is not None and self.max_gap <= timedelta(0):
            raise UsageError(f"max_gap must be positive, got {self.max_gap}")
        if self.stale_rows is not None and self.stale_rows < 2:
            raise UsageError(f"stale_rows must be at least 2, got {self.stale_rows}")
        values = {c for s in TABLE_SPECS.values() for c in s.values}
        numeric = {c for s in TABLE_SPECS.values() for c in s.positive}
        for column, policy in self.fill.items():
            if column not in values:
                raise UsageError(f"cannot fill {column!r}; value columns: {sorted(values)}")
            if policy not in FILLS:
                raise UsageError(f"fill policy for {column} must be one of {FILLS}, not {policy}")
            if policy == "interpolate" and column not in numeric:
                raise UsageError(f"only prices and sizes can be interpolated, not {column}")
        for rule, action in self.actions.items():
            if rule not in RULES or rule in FIXED:
                choices = [r for r in RULES if r not in FIXED]
                raise UsageError(f"no rule {rule!r} takes an action; rules: {choices}")
            if action not in ACTIONS:
                raise UsageError(f"action for {rule} must be one of {ACTIONS}, not {action}")

    def action(self, rule: str) -> str:
        return self.actions.get(rule, RULES[rule].action)

    def policy(self, column: str) -> str:
        return self.fill.get(column, "drop")


def table_spec(kind: str) -> TableSpec:
    try:
        return TABLE_SPECS[kind]
    except KeyError:
        raise UsageError(f"cannot clean {kind!r}; tables: {', '.join(TABLE_SPECS)}") from None


def rules_for(kind: str, config: CleanConfig, *, now: bool, quality: bool) -> tuple[str, ...]:
    """The rules that run on ``kind``, in report order.

    ``future`` needs a ``now`` and ``quality_window`` the quality events; the parameterized
    sequence rules run unless switched off in ``config``.
    """
    off = {
        "future": not now,
        "quality_window": not quality,
        "zscore": config.zscore is None,
        "hampel": config.hampel is None,
        "stale": config.stale_rows is None,
        "time_gap": config.max_gap is None,
    }
    return tuple(r.name for r in RULES.values() if kind in r.kinds and not off.get(r.name))


def micros(moment: datetime | pd.Timestamp) -> int:
    """Microseconds since the epoch of a moment; naive means UTC, aware is converted."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return (moment - _EPOCH) // timedelta(microseconds=1)


def duration_micros(span: timedelta) -> int:
    return span // timedelta(microseconds=1)


def _timestamps(column: pd.Series) -> pd.Series:
    """A column as naive-UTC ``datetime64[us]``, the store's representation."""
    stamps = pd.to_datetime(column)
    if stamps.dt.tz is not None:
        stamps = stamps.dt.tz_convert("UTC").dt.tz_localize(None)
    return stamps.astype("datetime64[us]")


def _int_us(stamps: pd.Series) -> npt.NDArray[np.int64]:
    """``datetime64[us]`` as int64 microseconds (NaT becomes the minimum int64)."""
    as_us: npt.NDArray[np.datetime64] = stamps.to_numpy(dtype="datetime64[us]")
    return as_us.view(np.int64)


def _us(stamps: pd.Series) -> pd.Series:
    """``datetime64[us]`` as float microseconds, NaT as NaN (exact below 2**53 µs, year 2255)."""
    return pd.Series(_int_us(stamps).astype("float64"), index=stamps.index).where(stamps.notna())


def _keys(frame: pd.DataFrame, columns: Iterable[str]) -> list[pd.Series]:
    return [frame[c] for c in columns]


def _timeline(frame: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """``frame`` in time order within each series."""
    return frame.sort_values([*spec.series, "ts", "row_id"])


def _signal(frame: pd.DataFrame, spec: TableSpec) -> pd.Series:
    if spec.signal == "price":
        return frame["price"].astype("float64")
    return (frame["bid_price"] + frame["ask_price"]) / 2


# --- stage 1: row rules -------------------------------------------------------------------


def required(frame: pd.DataFrame, spec: TableSpec) -> pd.Series:
    """``required``: any key column (:attr:`TableSpec.keys`) is NULL.

    Without its instrument, time or trade id a row cannot be placed in a series, so no fill
    policy could repair it.
    """
    return frame[list(spec.keys)].isna().any(axis=1)


def non_positive(frame: pd.DataFrame, spec: TableSpec) -> pd.Series:
    """``non_positive``: any price or size (:attr:`TableSpec.positive`) is <= 0; NULL is not."""
    return (frame[list(spec.positive)] <= 0).any(axis=1)


def crossed(frame: pd.DataFrame, spec: TableSpec) -> pd.Series:
    """``crossed``: quotes with ``ask_price <= bid_price``; for book snapshots, every row of a
    snapshot (rows sharing :data:`SNAPSHOT_KEY`) whose level-0 bid price is >= its level-0 ask
    price. A NULL price crosses nothing.
    """
    if spec.kind == "quotes":
        return (frame["ask_price"] <= frame["bid_price"]).fillna(False).astype(bool)
    level0 = frame["level"] == 0
    bid = frame["price"].where(level0 & (frame["side"] == "bid"))
    ask = frame["price"].where(level0 & (frame["side"] == "ask"))
    snapshot = _keys(frame, SNAPSHOT_KEY)
    best_bid = bid.groupby(snapshot, dropna=False).transform("max")
    best_ask = ask.groupby(snapshot, dropna=False).transform("min")
    return best_bid >= best_ask


def invalid_book(frame: pd.DataFrame) -> pd.Series:
    """``invalid_book``: ``valid`` is false: the recorder knew the book had a gap (NULL is
    ``missing``, not this)."""
    return frame["valid"].eq(False).fillna(False).astype(bool)


def future(frame: pd.DataFrame, now_us: int) -> pd.Series:
    """``future``: ``ts`` is later than ``now``: an exchange clock or a parser is wrong."""
    return _us(frame["ts"]) > now_us


def clock_skew(frame: pd.DataFrame, max_skew: timedelta) -> pd.Series:
    """``clock_skew``: ``|recv_ts - ts| > max_skew``: exchange and receipt clocks disagree by
    more than network latency explains (backfilled trades hit this by design: flag, not drop).
    """
    return (_us(frame["recv_ts"]) - _us(frame["ts"])).abs() > duration_micros(max_skew)


def _arrival(frame: pd.DataFrame, keys: Sequence[str] = ()) -> pd.DataFrame:
    """``frame`` in arrival order (within ``keys``)."""
    return frame.sort_values([*keys, "recv_ts", "row_id"], na_position="last")


def duplicate(frame: pd.DataFrame, spec: TableSpec) -> pd.Series:
    """``duplicate``: every row after the first (in arrival order) equal to it in all
    columns, NULLs comparing equal."""
    return _arrival(frame)[list(spec.columns)].duplicated(keep="first")


def duplicate_id(frame: pd.DataFrame, exact: pd.Series) -> pd.Series:
    """``duplicate_id``: every trade after the first (in arrival order) with the same
    ``(exchange, symbol, trade_id)`` that is not an exact ``duplicate``: two different
    versions of one trade. Rows with a NULL in the key are not compared (they fail
    ``required``).
    """
    key = ["exchange", "symbol", "trade_id"]
    ordered = _arrival(frame)
    seen = ordered[key].duplicated(keep="first") & ordered[key].notna().all(axis=1)
    return seen & ~exact


def quality_windows(events: pd.DataFrame, symbols: pd.DataFrame) -> pd.DataFrame:
    """The windows in which ``quality_events`` say a symbol's data cannot be trusted.

    An event of a kind in :data:`OPENING_KINDS` opens a window at its ``ts`` for its
    ``(exchange, symbol)``, or for every symbol of its exchange in ``symbols`` when its symbol
    is NULL (connection-wide incidents). The window ends at the ``ts`` of the first ``resync``
    of that symbol (a NULL-symbol resync counts for all) at or after the start, and is
    open-ended (``end`` NaT) when none follows. Windows are half-open: ``start <= ts < end``.
    Returns ``exchange, symbol, start, end, detail`` (the opening kind), one row per event
    and symbol.
    """
    missing = {"exchange", "symbol", "ts", "kind"} - set(events.columns)
    if missing:
        raise UsageError(f"quality events lack columns {sorted(missing)}")
    ev = events.loc[events["ts"].notna(), ["exchange", "symbol", "ts", "kind"]].copy()
    ev["ts"] = _timestamps(ev["ts"])

    def per_symbol(rows: pd.DataFrame) -> pd.DataFrame:
        named = rows[rows["symbol"].notna()].merge(symbols, on=["exchange", "symbol"])
        wide = rows[rows["symbol"].isna()].drop(columns="symbol").merge(symbols, on="exchange")
        both = pd.concat([named, wide[named.columns]], ignore_index=True)
        return both.sort_values("ts", kind="stable").reset_index(drop=True)

    opens = per_symbol(ev[ev["kind"].isin(OPENING_KINDS)]).rename(
        columns={"ts": "start", "kind": "detail"}
    )
    resyncs = per_symbol(ev[ev["kind"] == "resync"])[["exchange", "symbol", "ts"]]
    windows = pd.merge_asof(
        opens,
        resyncs.rename(columns={"ts": "end"}),
        left_on="start",
        right_on="end",
        by=["exchange", "symbol"],
        direction="forward",
    )
    return windows[["exchange", "symbol", "start", "end", "detail"]]


def in_windows(frame: pd.DataFrame, windows: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """``quality_window``: the row's ``ts`` lies in a window of its ``(exchange, symbol)``.

    Also returns, per window, how many rows of ``frame`` it covers.
    """
    hit = np.zeros(len(frame), dtype=bool)
    rows = np.zeros(len(windows), dtype=np.int64)
    placed = frame["exchange"].notna() & frame["symbol"].notna() & frame["ts"].notna()
    t = _int_us(frame["ts"])
    members = frame[placed].groupby(["exchange", "symbol"], sort=False).indices
    positions = np.flatnonzero(placed.to_numpy())
    starts = _int_us(windows["start"])
    ends = np.where(windows["end"].notna(), _int_us(windows["end"]), _NO_END)
    for key, which in windows.groupby(["exchange", "symbol"], sort=False).indices.items():
        if key not in members:
            continue
        where = positions[members[key]]
        order = np.argsort(t[where], kind="stable")
        sorted_t = t[where][order]
        lo = np.searchsorted(sorted_t, starts[which], "left")
        hi = np.searchsorted(sorted_t, ends[which], "left")
        rows[which] = hi - lo
        cover = np.zeros(len(sorted_t) + 1, dtype=np.int64)
        np.add.at(cover, lo, 1)
        np.add.at(cover, hi, -1)
        hit[where[order[np.cumsum(cover[:-1]) > 0]]] = True
    return pd.Series(hit, index=frame.index), pd.Series(rows, index=windows.index)


# --- stage 2: missing values ---------------------------------------------------------------


def fill_missing(
    frame: pd.DataFrame, spec: TableSpec, config: CleanConfig
) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """``missing``: a value column (:attr:`TableSpec.values`) is NULL.

    Each column is repaired by its policy, within its series in time order, from the rows
    of ``frame`` that have a value there: ``ffill`` takes the latest earlier value;
    ``interpolate`` is linear in ``ts`` between the latest earlier and the earliest later
    value, ``prev + (next - prev) * ((t - t_prev) / (t_next - t_prev))`` (µs; fraction 0 when
    ``t_next == t_prev``); ``drop`` repairs nothing. Returns the filled frame, the rows that
    had a NULL, and those still NULL after filling (dropped).
    """
    timeline = _timeline(frame, spec)
    filled = timeline.copy()
    groups = _keys(timeline, spec.series)
    t = _us(timeline["ts"])
    for column in spec.values:
        policy = config.policy(column)
        values = timeline[column]
        if policy == "ffill":
            filled[column] = values.groupby(groups).ffill()
        elif policy == "interpolate":
            known = values.notna()
            t_known = t.where(known)
            prev = values.groupby(groups).ffill()
            t_prev = t_known.groupby(groups).ffill()
            nxt = values.groupby(groups).bfill()
            t_next = t_known.groupby(groups).bfill()
            span = (t_next - t_prev).to_numpy()
            elapsed = (t - t_prev).to_numpy()
            fraction = np.divide(elapsed, span, out=np.zeros(len(span)), where=span != 0)
            filled[column] = values.where(known, prev + (nxt - prev) * fraction)
    had_null = timeline[list(spec.values)].isna().any(axis=1)
    still_null = filled[list(spec.values)].isna().any(axis=1)
    return filled.loc[frame.index], had_null.loc[frame.index], still_null.loc[frame.index]


# --- stage 3: sequence rules ---------------------------------------------------------------


def out_of_order(frame: pd.DataFrame, spec: TableSpec, tolerance: timedelta) -> pd.Series:
    """``out_of_order``: replaying a series in arrival order, the row's ``ts`` is earlier
    than the latest ``ts`` of the rows before it by more than ``tolerance``.

    A message received late (``clock_skew``) is out of order too: rows that happened after it
    arrived first.
    """
    arrival = _arrival(frame, spec.series)
    groups = _keys(arrival, spec.series)
    t = _us(arrival["ts"])
    latest_before = t.groupby(groups).cummax().groupby(groups).shift(1)
    return (t < latest_before - duration_micros(tolerance)).loc[frame.index]


def zscore(frame: pd.DataFrame, spec: TableSpec, rule: ZScore) -> pd.Series:
    """``zscore``: in time order, ``|x - mean| > threshold * std`` where mean and sample std
    are over the ``window`` rows before this one in its series (x: price, or quote mid).

    The window excludes the row itself, so an outlier cannot inflate its own yardstick. Rows
    with fewer than ``window`` predecessors and windows with std 0 are not judged.
    """
    timeline = _timeline(frame, spec)
    x = _signal(timeline, spec)
    groups = _keys(timeline, spec.series)

    def trailing(stat: str) -> pd.Series:
        return x.groupby(groups).transform(
            lambda s: getattr(s.shift(1).rolling(rule.window, min_periods=rule.window), stat)()
        )

    mean, std = trailing("mean"), trailing("std")
    hit = (std > 0) & ((x - mean).abs() > rule.threshold * std)
    return hit.loc[frame.index]


def hampel(frame: pd.DataFrame, spec: TableSpec, rule: Hampel) -> pd.Series:
    """``hampel``: in time order, ``|x - median| > n_sigmas * 1.4826 * MAD`` where median and
    MAD (median of ``|x_j - median|``) are over the ``2 * half_window + 1`` rows centred on
    this one in its series.

    Robust where the z-score is not: a spike moves neither the median nor the MAD. Rows within
    ``half_window`` of either end of their series and windows with MAD 0 are not judged (on
    tick data, more than half a window often trades at one price, and MAD 0 would flag
    every move).
    """
    timeline = _timeline(frame, spec)
    x = _signal(timeline, spec).to_numpy(dtype="float64")
    hit = np.zeros(len(timeline), dtype=bool)
    k = rule.half_window
    for where in timeline.groupby(list(spec.series), sort=False).indices.values():
        if len(where) < rule.width:
            continue
        values = x[where]
        median, mad = _median_mad(values, rule.width)
        centre = values[k : len(values) - k]
        hit[where[k : len(values) - k]] = (mad > 0) & (np.abs(centre - median) > rule.factor * mad)
    return pd.Series(hit, index=timeline.index).loc[frame.index]


def _median_mad(
    values: npt.NDArray[np.float64], width: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Median and MAD of every full window of ``width`` (odd, so both are exact elements)."""
    windows = np.lib.stride_tricks.sliding_window_view(values, width)
    median = np.empty(len(windows))
    mad = np.empty(len(windows))
    for start in range(0, len(windows), _HAMPEL_CHUNK):
        chunk = windows[start : start + _HAMPEL_CHUNK]
        m = np.median(chunk, axis=1)
        median[start : start + len(chunk)] = m
        mad[start : start + len(chunk)] = np.median(np.abs(chunk - m[:, None]), axis=1)
    return median, mad


def stale(frame: pd.DataFrame, spec: TableSpec, min_rows: int) -> tuple[pd.Series, pd.DataFrame]:
    """``stale``: in time order, a run of at least ``min_rows`` consecutive rows of a series
    with identical prices and sizes; every row of the run after its first is hit (the first
    still carried news). A feed that republishes a frozen value looks exactly like this.

    Also returns the runs as windows (first ts, last ts, rows hit).
    """
    timeline = _timeline(frame, spec)
    values = timeline[list(spec.positive)]
    first = timeline.groupby(list(spec.series), sort=False).cumcount() == 0
    changed = (values != values.shift(1)).any(axis=1) | first
    run = changed.cumsum()
    length = run.groupby(run).transform("size")
    hit = ~changed & (length >= min_rows)
    long_runs = timeline[length >= min_rows].groupby(run[length >= min_rows], sort=False)
    windows = long_runs.agg(
        exchange=("exchange", "first"),
        symbol=("symbol", "first"),
        start=("ts", "first"),
        end=("ts", "last"),
        rows=("ts", "size"),
    )
    windows["rows"] -= 1
    return hit.loc[frame.index], windows.reset_index(drop=True)


def time_gap(
    frame: pd.DataFrame, spec: TableSpec, max_gap: timedelta
) -> tuple[pd.Series, pd.DataFrame]:
    """``time_gap``: in time order, the row's ``ts`` is more than ``max_gap`` after the
    previous row of its series: the feed (or the recorder) was silent.

    Also returns the silences as windows (previous ts, this ts).
    """
    timeline = _timeline(frame, spec)
    previous = timeline["ts"].groupby(_keys(timeline, spec.series)).shift(1)
    hit = (_us(timeline["ts"]) - _us(previous)) > duration_micros(max_gap)
    windows = pd.DataFrame(
        {
            "exchange": timeline["exchange"][hit],
            "symbol": timeline["symbol"][hit],
            "start": previous[hit],
            "end": timeline["ts"][hit],
            "rows": 1,
        }
    )
    return hit.loc[frame.index], windows.reset_index(drop=True)


# --- the report ------------------------------------------------------------------------------

WINDOW_COLUMNS: Final = ("rule", "exchange", "symbol", "start", "end", "rows", "detail")
_WINDOW_DTYPES: Final = {
    "rule": "str",
    "exchange": "str",
    "symbol": "str",
    "start": "datetime64[us]",
    "end": "datetime64[us]",
    "rows": "int64",
    "detail": "str",
}


@dataclass(frozen=True, eq=False, repr=False)
class CleanReport:
    """What cleaning did to one table: counts per rule, examples, and the affected windows.

    ``counts`` has one row per rule that ran (``rule, rows, dropped, description``; rows hit,
    and how many of them the rule removed). ``examples`` holds the first flagged rows per rule
    with their raw values; ``windows`` the time windows behind ``quality_window``, ``stale``
    and ``time_gap`` (``rule, exchange, symbol, start, end, rows, detail``; ``rows`` = rows
    the rule hit in that window, ``end`` NaT = no resync yet).
    """

    kind: str
    source: str
    rows_in: int
    rows_out: int
    counts: pd.DataFrame
    examples: pd.DataFrame
    windows: pd.DataFrame

    def count(self, rule: str) -> int:
        """Rows ``rule`` hit; UsageError for a rule that did not run."""
        match = self.counts.loc[self.counts["rule"] == rule, "rows"]
        if match.empty:
            raise UsageError(f"{rule!r} did not run on {self.source}; ran: {self.rules}")
        return int(match.iloc[0])

    @property
    def rules(self) -> list[str]:
        return list(self.counts["rule"])

    def to_frame(self) -> pd.DataFrame:
        """Counts per rule, one row each, for filtering and plotting."""
        return self.counts.copy()

    def summary(self) -> str:
        """Plain text for a terminal or a log."""
        lines = [self._headline(), ""]
        width = max(len(r) for r in self.counts["rule"]) if len(self.counts) else 4
        lines.append(f"{'rule':<{width}}  {'rows':>9}  {'dropped':>9}  what counts")
        for row in self.counts.itertuples(index=False):
            lines.append(
                f"{row.rule:<{width}}  {row.rows:>9,}  {row.dropped:>9,}  {row.description}"
            )
        if len(self.windows):
            per_rule = self.windows.groupby("rule", sort=False).size()
            lines += ["", "windows: " + ", ".join(f"{r} {n:,}" for r, n in per_rule.items())]
            lines += [f"  {_window_text(w)}" for w in self.windows.head(10).itertuples()]
            if len(self.windows) > 10:
                lines.append(f"  ... {len(self.windows) - 10:,} more in .windows")
        return "\n".join(lines)

    def _headline(self) -> str:
        dropped = self.rows_in - self.rows_out
        return (
            f"clean {self.kind} from {self.source}: {self.rows_in:,} rows in, "
            f"{self.rows_out:,} out ({dropped:,} dropped)"
        )

    def _repr_markdown_(self) -> str:
        parts = [f"**{self._headline()}**", "", _markdown(self.counts)]
        if len(self.examples):
            parts += ["", f"First {EXAMPLES} rows per rule:", "", _markdown(self.examples)]
        if len(self.windows):
            shown = self.windows.head(20)
            parts += ["", f"Windows ({len(self.windows):,}):", "", _markdown(shown)]
        return "\n".join(parts)

    def __repr__(self) -> str:
        return f"<CleanReport {self._headline()}>"


def _window_text(w: Any) -> str:
    end = "open" if pd.isna(w.end) else w.end
    detail = f" {w.detail}" if isinstance(w.detail, str) else ""
    return f"{w.rule} {w.exchange} {w.symbol} {w.start} .. {end}: rows={w.rows:,}{detail}"


def _markdown(frame: pd.DataFrame) -> str:
    def cell(value: Any) -> str:
        return "" if pd.isna(value) else str(value).replace("|", "\\|")

    rows = [
        "| " + " | ".join(map(str, frame.columns)) + " |",
        "|" + "---|" * len(frame.columns),
    ]
    rows += ["| " + " | ".join(cell(v) for v in r) + " |" for r in frame.itertuples(index=False)]
    return "\n".join(rows)


def make_report(
    kind: str,
    source: str,
    rules: Sequence[str],
    rows_in: int,
    rows_out: int,
    tallies: pd.DataFrame,
    examples: pd.DataFrame,
    windows: pd.DataFrame,
) -> CleanReport:
    """Assemble a report in canonical form, so both cleaning paths produce equal reports.

    ``tallies`` has ``rule, rows, dropped`` for the rules that hit anything; rules that ran
    without a hit get zeros. Examples and windows are put in rule order.
    """
    order = {rule: i for i, rule in enumerate(rules)}
    seen = {t.rule: (int(t.rows), int(t.dropped)) for t in tallies.itertuples(index=False)}
    counts = pd.DataFrame(
        {
            "rule": pd.Series(rules, dtype="str"),
            "rows": pd.Series([seen.get(r, (0, 0))[0] for r in rules], dtype="int64"),
            "dropped": pd.Series([seen.get(r, (0, 0))[1] for r in rules], dtype="int64"),
            "description": pd.Series([RULES[r].description for r in rules], dtype="str"),
        }
    )
    examples = examples.sort_values(
        ["rule", "row_id"], key=lambda c: c.map(order) if c.name == "rule" else c
    )
    windows = windows.sort_values(
        ["rule", "exchange", "symbol", "start", "end", "detail"],
        key=lambda c: c.map(order) if c.name == "rule" else c,
        na_position="last",
    )
    return CleanReport(
        kind=kind,
        source=source,
        rows_in=rows_in,
        rows_out=rows_out,
        counts=counts,
        examples=examples.reset_index(drop=True),
        windows=windows.reset_index(drop=True).astype(_WINDOW_DTYPES),
    )


# --- the pipeline ----------------------------------------------------------------------------


@dataclass(frozen=True, eq=False, repr=False)
class CleanResult:
    """The output of :func:`clean_frame`: clean rows, one flag per (row, rule) hit, a report.

    ``clean`` has ``row_id`` plus the table's columns, in ``(exchange, symbol, ts, row_id)``
    order; ``flags`` has ``row_id, exchange, symbol, ts, rule, action`` (``action`` is
    ``drop``, ``flag``, or for ``missing`` ``fill``/``drop``).
    """

    clean: pd.DataFrame
    flags: pd.DataFrame
    report: CleanReport

    def _repr_markdown_(self) -> str:
        return self.report._repr_markdown_()

    def __repr__(self) -> str:
        return f"<CleanResult {self.report._headline()}>"


def clean_frame(
    frame: pd.DataFrame,
    kind: str = "trades",
    config: CleanConfig | None = None,
    *,
    now: datetime | pd.Timestamp | None = None,
    quality_events: pd.DataFrame | None = None,
) -> CleanResult:
    """Clean ``frame`` (shaped like the recorder table ``kind``) without changing it.

    ``now`` bounds the ``future`` rule and ``quality_events`` (shaped like that table) feeds
    ``quality_window``; either rule is skipped without its input, because this layer owns no
    clock and no store. ``row_id`` is the row's position in ``frame``.
    """
    spec = table_spec(kind)
    config = CleanConfig() if config is None else config
    raw = _raw(frame, spec)
    rules = rules_for(kind, config, now=now is not None, quality=quality_events is not None)
    hits: dict[str, pd.Series] = {"required": required(raw, spec)}
    windows: list[pd.DataFrame] = []
    hits["non_positive"] = non_positive(raw, spec)
    if "crossed" in rules:
        hits["crossed"] = crossed(raw, spec)
    if "invalid_book" in rules:
        hits["invalid_book"] = invalid_book(raw)
    if now is not None:
        hits["future"] = future(raw, micros(now))
    hits["clock_skew"] = clock_skew(raw, config.max_skew)
    hits["duplicate"] = duplicate(raw, spec)
    if "duplicate_id" in rules:
        hits["duplicate_id"] = duplicate_id(raw, hits["duplicate"])
    if quality_events is not None:
        symbols = raw.loc[raw["exchange"].notna() & raw["symbol"].notna(), ["exchange", "symbol"]]
        found = quality_windows(quality_events, symbols.drop_duplicates())
        hits["quality_window"], rows = in_windows(raw, found)
        windows.append(found.assign(rule="quality_window", rows=rows))

    dropped = _dropping(hits, config, raw.index)
    filled, had_null, unfilled = fill_missing(raw[~dropped], spec, config)
    hits["missing"] = had_null.reindex(raw.index, fill_value=False)
    kept = filled[~unfilled]
    if spec.sequence:
        hits["out_of_order"] = out_of_order(kept, spec, config.reorder_tolerance)
        if config.zscore is not None:
            hits["zscore"] = zscore(kept, spec, config.zscore)
        if config.hampel is not None:
            hits["hampel"] = hampel(kept, spec, config.hampel)
        if config.stale_rows is not None:
            hits["stale"], runs = stale(kept, spec, config.stale_rows)
            windows.append(runs.assign(rule="stale"))
        if config.max_gap is not None:
            hits["time_gap"], gaps = time_gap(kept, spec, config.max_gap)
            windows.append(gaps.assign(rule="time_gap"))
    survivors = kept[~_dropping(hits, config, kept.index, stage=3)]
    clean = survivors.sort_values(["exchange", "symbol", "ts", "row_id"]).reset_index(drop=True)

    flags = _flags(raw, rules, hits, config, unfilled)
    tallies = flags.groupby("rule", as_index=False).agg(
        rows=("row_id", "size"), dropped=("action", lambda a: int((a == "drop").sum()))
    )
    examples = (
        flags[["rule", "action", "row_id"]]
        .groupby("rule", sort=False)
        .head(EXAMPLES)
        .merge(raw, on="row_id")
    )
    report = make_report(
        kind,
        "DataFrame",
        rules,
        len(raw),
        len(clean),
        tallies,
        examples,
        _window_frame(windows),
    )
    return CleanResult(clean=clean, flags=flags, report=report)


def _raw(frame: pd.DataFrame, spec: TableSpec) -> pd.DataFrame:
    """The table's columns of ``frame`` with ``row_id`` first and timestamps as the store has."""
    absent = [c for c in spec.columns if c not in frame.columns]
    if absent:
        raise UsageError(f"a {spec.kind} frame needs columns {absent}")
    raw = frame[list(spec.columns)].reset_index(drop=True)
    raw["ts"] = _timestamps(raw["ts"])
    raw["recv_ts"] = _timestamps(raw["recv_ts"])
    raw.insert(0, "row_id", np.arange(len(raw), dtype=np.int64))
    return raw


def _dropping(
    hits: Mapping[str, pd.Series], config: CleanConfig, index: pd.Index, stage: int = 1
) -> pd.Series:
    """Rows that a dropping rule of ``stage`` hit, over ``index``."""
    dropped = pd.Series(False, index=index)
    for rule, hit in hits.items():
        if RULES[rule].stage == stage and config.action(rule) == "drop":
            dropped |= hit.reindex(index, fill_value=False)
    return dropped


def _flags(
    raw: pd.DataFrame,
    rules: Sequence[str],
    hits: Mapping[str, pd.Series],
    config: CleanConfig,
    unfilled: pd.Series,
) -> pd.DataFrame:
    parts = []
    for rule in rules:
        hit = hits[rule].reindex(raw.index, fill_value=False).astype(bool)
        rows = raw.loc[hit, ["row_id", "exchange", "symbol", "ts"]].assign(rule=rule)
        if rule == "missing":
            gone = unfilled.reindex(rows.index, fill_value=False).to_numpy()
            rows["action"] = np.where(gone, "drop", "fill")
        else:
            rows["action"] = config.action(rule)
        parts.append(rows)
    columns = ["row_id", "exchange", "symbol", "ts", "rule", "action"]
    if not parts:
        return pd.DataFrame(columns=columns)
    return pd.concat(parts, ignore_index=True)[columns]


def _window_frame(parts: Sequence[pd.DataFrame]) -> pd.DataFrame:
    frames = [p.reindex(columns=list(WINDOW_COLUMNS)) for p in parts if len(p)]
    if not frames:
        return pd.DataFrame(columns=list(WINDOW_COLUMNS))
    return pd.concat(frames, ignore_index=True)
