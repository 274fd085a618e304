"""The cleaning rules of workbench.core.clean on plain DataFrames: exact counts, exact rows.

The acceptance fixture (:func:`fixture`) is a clean synthetic series with a known set of
injected defects, generated in code. Its base is provably clean under :data:`CONFIG`: prices
move by a bounded pattern (at most ±5 ticks around a level, never the same twice in a row),
so no z-score reaches 5 and no deviation reaches 16 × 1.4826 × the smallest non-zero MAD.
Every injected defect is placed so that it cannot trip another rule, which makes the expected
flags exact: a count that is off by one is a bug, not noise. ``test_clean_store`` runs the
same fixture through DuckDB.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from workbench.core.clean import (
    RULES,
    CleanConfig,
    Hampel,
    ZScore,
    clean_frame,
    rules_for,
)
from workbench.errors import UsageError

T0 = pd.Timestamp("2024-03-01 00:00:00")
NOW = T0 + pd.Timedelta(days=1)
STEP = pd.Timedelta(milliseconds=100)
ROWS = 1000
LEVELS = {"BTC-USD": (30_000.0, 0.5), "ETH-USD": (2_000.0, 0.05)}
GAP_AT = 950
STALE_RUN = 20

CONFIG = CleanConfig(
    max_skew=timedelta(seconds=5),
    reorder_tolerance=timedelta(seconds=1),
    max_gap=timedelta(seconds=30),
    stale_rows=STALE_RUN,
    zscore=ZScore(window=50, threshold=5.0),
    hampel=Hampel(half_window=10, n_sigmas=16.0),
    fill={"price": "ffill", "size": "interpolate", "bid_price": "ffill", "ask_size": "interpolate"},
)

TRADE_PLAN = {
    "BTC-USD": {
        100: "required_ts",
        160: "required_id",
        220: "non_positive_price",
        280: "future",
        340: "clock_skew",
        400: "stale",
        460: "spike",
        520: "missing_ffill",
        580: "missing_interpolate",
        640: "missing_drop",
        700: "out_of_order",
        760: "spike",
        820: "stale",
        880: "future",
    },
    "ETH-USD": {
        100: "required_symbol",
        160: "non_positive_size",
        220: "out_of_order",
        280: "spike",
        340: "missing_ffill",
        400: "missing_interpolate",
        460: "clock_skew",
        520: "clock_skew",
        580: "missing_drop",
        640: "stale",
        700: "required_exchange",
        760: "non_positive_price",
        820: "out_of_order",
        880: "spike",
    },
}
"""Defect per (symbol, position in the symbol's series); slots are 60 rows apart, more than
the z-score window, and an out-of-order row moves back 30 rows, never onto another defect."""

QUOTE_PLAN = {
    "BTC-USD": {**TRADE_PLAN["BTC-USD"], 160: "crossed"},
    "ETH-USD": {**TRADE_PLAN["ETH-USD"], 520: "crossed"},
}

TRADE_COUNTS = {
    "required": 4,
    "non_positive": 3,
    "future": 2,
    "clock_skew": 3,
    "duplicate": 2,
    "duplicate_id": 2,
    "quality_window": 80,
    "missing": 6,
    "out_of_order": 3 + 3,  # and the 3 late (clock_skew) arrivals
    "zscore": 4,
    "hampel": 4,
    "stale": 3 * (STALE_RUN - 1),
    "time_gap": 1,
}
"""The acceptance numbers, written out: what the fixture injects, per rule."""

QUOTE_COUNTS = {
    **{k: v for k, v in TRADE_COUNTS.items() if k != "duplicate_id"},
    "required": 3,
    "crossed": 2,
    "clock_skew": 2,
    "out_of_order": 3 + 2,
}

RULE_OF = {
    "required_ts": ("required",),
    "required_id": ("required",),
    "required_symbol": ("required",),
    "required_exchange": ("required",),
    "non_positive_price": ("non_positive",),
    "non_positive_size": ("non_positive",),
    "future": ("future",),
    "clock_skew": ("clock_skew", "out_of_order"),  # received 30 s late: after 300 later rows
    "spike": ("zscore", "hampel"),
    "missing_ffill": ("missing",),
    "missing_interpolate": ("missing",),
    "missing_drop": ("missing",),
    "out_of_order": ("out_of_order",),
    "crossed": ("crossed",),
}


@dataclass
class Fixture:
    """A frame with known defects, the quality events that go with it, and what to expect."""

    kind: str
    frame: pd.DataFrame
    events: pd.DataFrame
    expected: dict[str, set[int]] = field(default_factory=dict)
    fills: dict[tuple[int, str], float] = field(default_factory=dict)
    """(row_id, column) → the value cleaning must fill in."""
    dropped: set[int] = field(default_factory=set)


def _columns(kind: str) -> dict[str, str]:
    """Kind-specific column roles: the price that is zeroed or forward-filled, the size that
    goes negative or is interpolated, and the value whose NULL drops the row."""
    if kind == "trades":
        return {"price": "price", "size": "size", "drop": "side"}
    return {"price": "bid_price", "size": "ask_size", "drop": "recv_ts"}


def base(kind: str) -> pd.DataFrame:
    """Clean rows for two symbols, interleaved by time; ``sym``/``i`` locate a row."""
    parts = []
    for s, (symbol, (level, tick)) in enumerate(LEVELS.items()):
        i = np.arange(ROWS)
        ts = T0 + STEP * i + pd.Timedelta(milliseconds=7 * s)
        ts = ts + pd.Timedelta(seconds=60) * ((i >= GAP_AT) & (s == 0)).astype(int)
        noise = (i * 7) % 11 - 5
        part = pd.DataFrame(
            {"exchange": "sim", "symbol": symbol, "ts": ts, "recv_ts": ts + pd.Timedelta("2ms")}
        )
        if kind == "trades":
            part["price"] = level + tick * noise
            part["size"] = 0.01 * (1 + (i * 5) % 13)
            part["side"] = np.where(i % 2 == 1, "buy", "sell")
            part["trade_id"] = (i + 1).astype(str)
        else:
            part["bid_price"] = level + tick * noise
            part["bid_size"] = 0.1 * (1 + (i * 5) % 13)
            part["ask_price"] = part["bid_price"] + tick * (1 + i % 3)
            part["ask_size"] = 0.1 * (1 + (i * 3) % 7)
        part["sym"], part["i"] = symbol, i
        parts.append(part)
    frame = pd.concat(parts).sort_values(["ts", "symbol"], ignore_index=True)
    frame["ts"] = frame["ts"].astype("datetime64[us]")
    frame["recv_ts"] = frame["recv_ts"].astype("datetime64[us]")
    return frame


def fixture(kind: str) -> Fixture:
    """The acceptance fixture for ``trades`` or ``quotes`` (see the module docstring)."""
    frame = base(kind)
    rid = {(s, i): r for r, s, i in zip(frame.index, frame["sym"], frame["i"], strict=True)}
    roles = _columns(kind)
    signal = ["price"] if kind == "trades" else ["bid_price", "ask_price"]
    fx = Fixture(kind, frame, _events(frame, rid))
    expected: dict[str, set[int]] = {rule: set() for rule in RULES}
    plan = TRADE_PLAN if kind == "trades" else QUOTE_PLAN
    for symbol, slots in plan.items():
        tick = LEVELS[symbol][1]
        for i, defect in slots.items():
            r = rid[symbol, i]
            for rule in RULE_OF.get(defect, ()):
                expected[rule].add(r)
            if defect == "required_ts":
                frame.loc[r, "ts"] = pd.NaT
            elif defect == "required_id":
                frame.loc[r, "trade_id"] = None
            elif defect.startswith("required_"):
                frame.loc[r, defect.removeprefix("required_")] = None
            elif defect == "non_positive_price":
                frame.loc[r, roles["price"]] = 0.0
            elif defect == "non_positive_size":
                frame.loc[r, roles["size"]] = -1.0
            elif defect == "future":
                frame.loc[r, "ts"] = NOW + pd.Timedelta(hours=1)
                frame.loc[r, "recv_ts"] = NOW + pd.Timedelta(hours=1)
            elif defect == "clock_skew":
                frame.loc[r, "recv_ts"] = frame.loc[r, "ts"] + pd.Timedelta(seconds=30)
            elif defect == "spike":
                frame.loc[r, signal] *= 1.05
            elif defect == "out_of_order":
                frame.loc[r, "ts"] -= pd.Timedelta(milliseconds=3050)
            elif defect == "crossed":
                frame.loc[r, "ask_price"] = frame.loc[r, "bid_price"] - tick
            elif defect == "stale":
                run = [rid[symbol, j] for j in range(i, i + STALE_RUN)]
                level = LEVELS[symbol][0]
                if kind == "trades":
                    frame.loc[run, ["price", "size"]] = [level, 0.5]
                else:
                    frame.loc[run, ["bid_price", "bid_size", "ask_price", "ask_size"]] = [
                        level,
                        7.0,
                        level + tick,
                        9.0,
                    ]
                expected["stale"].update(run[1:])
            elif defect == "missing_ffill":
                fx.fills[r, roles["price"]] = frame.loc[rid[symbol, i - 1], roles["price"]]
                frame.loc[r, roles["price"]] = np.nan
            elif defect == "missing_interpolate":
                before = frame.loc[rid[symbol, i - 1], roles["size"]]
                after = frame.loc[rid[symbol, i + 1], roles["size"]]
                fx.fills[r, roles["size"]] = before + (after - before) * 0.5
                frame.loc[r, roles["size"]] = np.nan
            elif defect == "missing_drop":
                frame.loc[r, roles["drop"]] = None
                fx.dropped.add(r)
    expected["time_gap"].add(rid["BTC-USD", GAP_AT])
    expected["quality_window"] = {
        rid[s, i]
        for s, lo, hi in (("BTC-USD", 20, 40), ("BTC-USD", 50, 70), ("ETH-USD", 50, 60))
        for i in range(lo, hi)
    } | {rid["ETH-USD", i] for i in range(ROWS - 30, ROWS)}
    copies = frame.loc[[rid["BTC-USD", 130], rid["ETH-USD", 250]]]
    extra = [copies]
    if kind == "trades":
        conflicting = frame.loc[[rid["BTC-USD", 310], rid["ETH-USD", 370]]].copy()
        conflicting["price"] += 0.5
        extra.append(conflicting)
    frame = pd.concat([frame, *extra], ignore_index=True)
    n = len(fx.frame)
    expected["duplicate"] = {n, n + 1}
    if kind == "trades":
        expected["duplicate_id"] = {n + 2, n + 3}
    fx.frame = frame.drop(columns=["sym", "i"])
    fx.dropped |= (
        expected["required"]
        | expected["non_positive"]
        | expected["crossed"]
        | expected["future"]
        | expected["duplicate"]
        | expected["duplicate_id"]
    )
    fx.expected = {rule: rows for rule, rows in expected.items() if rows}
    return fx


def _events(frame: pd.DataFrame, rid: dict[tuple[str, int], int]) -> pd.DataFrame:
    """Windows: BTC gap 20..40 with a nested crossed at 30; a connection-wide disconnect at
    BTC 50 that resyncs BTC at 70 and ETH at 60; an ETH checksum at 970 that never resyncs.
    Plus events that must not open anything."""

    def at(symbol: str, i: int) -> pd.Timestamp:
        return frame.loc[rid[symbol, i], "ts"]

    rows = [
        ("sim", "BTC-USD", at("BTC-USD", 20), "gap"),
        ("sim", "BTC-USD", at("BTC-USD", 30), "crossed"),
        ("sim", "BTC-USD", at("BTC-USD", 40), "resync"),
        ("sim", None, at("BTC-USD", 50), "disconnect"),
        ("sim", None, at("BTC-USD", 50), "reconnect"),
        ("sim", "ETH-USD", at("ETH-USD", 60), "resync"),
        ("sim", "BTC-USD", at("BTC-USD", 70), "resync"),
        ("sim", "BTC-USD", at("BTC-USD", 80), "backfill"),
        ("sim", "BTC-USD", at("BTC-USD", 90), "resync"),
        ("sim", "ETH-USD", at("ETH-USD", ROWS - 30), "checksum"),
        ("other", None, at("BTC-USD", 300), "disconnect"),
    ]
    events = pd.DataFrame(rows, columns=["exchange", "symbol", "ts", "kind"])
    events["ts"] = events["ts"].astype("datetime64[us]")
    events["detail"] = "{}"
    return events


def flagged(flags: pd.DataFrame) -> dict[str, set[int]]:
    return {rule: set(rows) for rule, rows in flags.groupby("rule")["row_id"]}


def snapshot_fixture() -> Fixture:
    """Two symbols × 30 one-second snapshots × 3 levels a side, with defects per snapshot."""
    rows = []
    for symbol, (level, tick) in LEVELS.items():
        for n in range(30):
            ts = T0 + pd.Timedelta(seconds=n)
            for side, sign in (("bid", -1), ("ask", 1)):
                for lvl in range(3):
                    price = level + sign * tick * (lvl + 1 + n % 2)
                    size = 1.0 + lvl + n % 3
                    rows.append(("sim", symbol, ts, ts, n, True, side, lvl, price, size))
    columns = ["exchange", "symbol", "ts", "recv_ts", "seq", "valid", "side", "level"]
    frame = pd.DataFrame(rows, columns=[*columns, "price", "size"])
    frame["recv_ts"] += pd.Timedelta(milliseconds=5)
    frame["level"] = frame["level"].astype("float64")  # NULL-able, as DuckDB returns it
    for c in ("ts", "recv_ts"):
        frame[c] = frame[c].astype("datetime64[us]")

    def rows_of(symbol: str, n: int, side: str | None = None, lvl: int | None = None) -> list[int]:
        mask = (frame["symbol"] == symbol) & (frame["seq"] == n)
        if side is not None:
            mask &= (frame["side"] == side) & (frame["level"] == lvl)
        return list(frame.index[mask])

    expected: dict[str, set[int]] = {}
    [r] = rows_of("BTC-USD", 3, "ask", 2)
    frame.loc[r, "level"] = np.nan
    expected["required"] = {r}
    [r] = rows_of("BTC-USD", 5, "bid", 1)
    frame.loc[r, "size"] = 0.0
    expected["non_positive"] = {r}
    [bid0] = rows_of("BTC-USD", 8, "bid", 0)
    [ask0] = rows_of("BTC-USD", 8, "ask", 0)
    frame.loc[bid0, "price"] = frame.loc[ask0, "price"] + 0.5
    expected["crossed"] = set(rows_of("BTC-USD", 8))
    frame.loc[rows_of("ETH-USD", 10), "valid"] = False
    expected["invalid_book"] = set(rows_of("ETH-USD", 10))
    frame.loc[rows_of("ETH-USD", 12), ["ts", "recv_ts"]] = NOW + pd.Timedelta(hours=1)
    expected["future"] = set(rows_of("ETH-USD", 12))
    frame.loc[rows_of("BTC-USD", 14), "recv_ts"] += pd.Timedelta(seconds=30)
    expected["clock_skew"] = set(rows_of("BTC-USD", 14))
    [filled] = rows_of("ETH-USD", 16, "ask", 1)
    [source] = rows_of("ETH-USD", 15, "ask", 1)
    [lost] = rows_of("BTC-USD", 18, "bid", 2)
    frame.loc[filled, "price"] = np.nan
    frame.loc[lost, "recv_ts"] = pd.NaT
    expected["missing"] = {filled, lost}
    expected["quality_window"] = {r for n in (20, 21, 22) for r in rows_of("BTC-USD", n)}
    events = pd.DataFrame(
        [
            ("sim", "BTC-USD", T0 + pd.Timedelta(seconds=20), "gap"),
            ("sim", "BTC-USD", T0 + pd.Timedelta(seconds=23), "resync"),
        ],
        columns=["exchange", "symbol", "ts", "kind"],
    ).astype({"ts": "datetime64[us]"})
    events["detail"] = "{}"
    copies = frame.loc[rows_of("ETH-USD", 2, "bid", 0) + rows_of("BTC-USD", 25, "ask", 1)]
    n = len(frame)
    frame = pd.concat([frame, copies], ignore_index=True)
    expected["duplicate"] = {n, n + 1}
    fx = Fixture("book_snapshots", frame, events, expected)
    fx.fills[filled, "price"] = frame.loc[source, "price"]
    fx.dropped = {lost} | set().union(
        *(expected[r] for r in ("required", "non_positive", "crossed", "invalid_book"))
    )
    fx.dropped |= expected["future"] | expected["duplicate"]
    return fx


SNAPSHOT_CONFIG = CleanConfig(fill={"price": "ffill"})
SNAPSHOT_COUNTS = {
    "required": 1,
    "non_positive": 1,
    "crossed": 6,
    "invalid_book": 6,
    "future": 6,
    "clock_skew": 6,
    "duplicate": 2,
    "quality_window": 18,
    "missing": 2,
}


# --- acceptance: known defects, exact counts -------------------------------------------------


@pytest.mark.parametrize(("kind", "counts"), [("trades", TRADE_COUNTS), ("quotes", QUOTE_COUNTS)])
def test_known_defects_yield_exactly_the_known_counts_per_rule(
    kind: str, counts: dict[str, int]
) -> None:
    fx = fixture(kind)
    result = clean_frame(fx.frame, kind, CONFIG, now=NOW, quality_events=fx.events)
    report = result.report
    assert report.rules == list(rules_for(kind, CONFIG, now=True, quality=True))
    assert {r: report.count(r) for r in report.rules} == {r: counts.get(r, 0) for r in report.rules}
    assert flagged(result.flags) == fx.expected


@pytest.mark.parametrize("kind", ["trades", "quotes"])
def test_clean_rows_are_the_input_minus_dropped_rows_with_fills_applied(kind: str) -> None:
    fx = fixture(kind)
    result = clean_frame(fx.frame, kind, CONFIG, now=NOW, quality_events=fx.events)
    clean = result.clean.set_index("row_id")
    assert set(clean.index) == set(range(len(fx.frame))) - fx.dropped
    assert result.report.rows_out == len(clean)
    assert result.report.rows_in == len(fx.frame)
    for (row, column), value in fx.fills.items():
        assert clean.loc[row, column] == value
    flagged_only = fx.expected["zscore"] | fx.expected["stale"] | fx.expected["clock_skew"]
    assert flagged_only <= set(clean.index)
    key = ["exchange", "symbol", "ts", "row_id"]
    assert result.clean[key].equals(result.clean.sort_values(key)[key])


def test_the_clean_base_series_has_no_findings() -> None:
    for kind in ("trades", "quotes"):
        frame = base(kind).drop(columns=["sym", "i"])
        result = clean_frame(frame, kind, CONFIG, now=NOW, quality_events=_no_events())
        found = {r: result.report.count(r) for r in result.report.rules}
        assert found == {r: int(r == "time_gap") for r in result.report.rules}  # BTC's 60 s gap
        assert len(result.clean) == len(frame)


def test_book_snapshots_known_defects_and_fill() -> None:
    fx = snapshot_fixture()
    result = clean_frame(
        fx.frame, "book_snapshots", SNAPSHOT_CONFIG, now=NOW, quality_events=fx.events
    )
    assert {r: result.report.count(r) for r in result.report.rules} == SNAPSHOT_COUNTS
    assert flagged(result.flags) == fx.expected
    clean = result.clean.set_index("row_id")
    assert set(clean.index) == set(range(len(fx.frame))) - fx.dropped
    for (row, column), value in fx.fills.items():
        assert clean.loc[row, column] == value


def test_cleaning_never_modifies_its_input() -> None:
    fx = fixture("trades")
    before = fx.frame.copy()
    clean_frame(fx.frame, "trades", CONFIG, now=NOW, quality_events=fx.events)
    pd.testing.assert_frame_equal(fx.frame, before)


def _no_events() -> pd.DataFrame:
    return pd.DataFrame(
        {"exchange": [], "symbol": [], "ts": pd.Series(dtype="datetime64[us]"), "kind": []}
    )


# --- each rule's definition at its edges -------------------------------------------------------


def trades(n: int, **columns: object) -> pd.DataFrame:
    """``n`` plain BTC trades 1 s apart, received 1 ms later; ``columns`` override."""
    ts = T0 + pd.Timedelta(seconds=1) * np.arange(n)
    frame = pd.DataFrame(
        {
            "exchange": "sim",
            "symbol": "BTC-USD",
            "ts": ts,
            "recv_ts": ts + pd.Timedelta(milliseconds=1),
            "price": 100.0 + np.arange(n) % 5,
            "size": 1.0 + np.arange(n) % 3,
            "side": "buy",
            "trade_id": [str(i) for i in range(n)],
        }
    )
    for name, values in columns.items():
        frame[name] = values
    return frame


def hits(
    frame: pd.DataFrame, config: CleanConfig | None = None, **kw: object
) -> dict[str, set[int]]:
    return flagged(clean_frame(frame, "trades", config, **kw).flags)  # type: ignore[arg-type]


QUIET = CleanConfig(zscore=None, hampel=None, stale_rows=None, max_gap=None)


def test_the_first_arrival_wins_a_duplicate_id_even_when_stored_later() -> None:
    frame = trades(3, trade_id=["7", "8", "7"], price=[100.0, 101.0, 100.5])
    frame.loc[0, "recv_ts"] = frame.loc[2, "recv_ts"] + pd.Timedelta(seconds=1)
    found = hits(frame, QUIET)
    assert found["duplicate_id"] == {0}
    assert "duplicate" not in found


def test_an_exact_copy_is_a_duplicate_and_not_also_a_duplicate_id() -> None:
    frame = pd.concat([trades(3), trades(3).iloc[[1]]], ignore_index=True)
    assert hits(frame, QUIET) == {"duplicate": {3}}


def test_out_of_order_needs_more_than_the_tolerance() -> None:
    frame = trades(4)
    frame.loc[2, "ts"] = frame.loc[1, "ts"] - pd.Timedelta(seconds=1)  # exactly the tolerance
    frame.loc[3, "ts"] = frame.loc[1, "ts"] - pd.Timedelta(seconds=1, microseconds=1)
    assert hits(frame, QUIET) == {"out_of_order": {3}}


def test_zscore_judges_only_full_windows_with_dispersion() -> None:
    config = replace(QUIET, zscore=ZScore(window=5, threshold=3.0))
    early = trades(6, price=[100.0, 101.0, 100.0, 101.0, 500.0, 100.0])
    assert hits(early, config) == {}  # row 4 has only 4 predecessors
    flat = trades(7, price=[100.0] * 6 + [101.0])
    assert hits(flat, config) == {}  # std 0: nothing to judge against
    late = trades(7, price=[100.0, 101.0, 100.0, 101.0, 100.0, 500.0, 100.0])
    assert hits(late, config) == {"zscore": {5}}


def test_hampel_skips_series_edges_and_zero_mad() -> None:
    config = replace(QUIET, hampel=Hampel(half_window=2, n_sigmas=3.0))
    assert hits(trades(6, price=[500.0, 100, 101, 100, 101, 100]), config) == {}
    assert hits(trades(6, price=[100.0, 100, 500, 100, 100, 101]), config) == {}  # MAD 0
    spike = trades(7, price=[100.0, 101, 102, 500, 101, 100, 102])
    assert hits(spike, config) == {"hampel": {3}}


def test_a_stale_run_needs_stale_rows_and_flags_all_but_its_first_row() -> None:
    config = replace(QUIET, stale_rows=3)
    assert hits(trades(4, price=100.0, size=[1.0, 1.0, 2.0, 2.0]), config) == {}
    result = clean_frame(trades(4, price=100.0, size=[1.0, 1.0, 1.0, 2.0]), "trades", config)
    assert flagged(result.flags) == {"stale": {1, 2}}
    [window] = result.report.windows.itertuples()
    assert (window.rule, window.start, window.end, window.rows) == (
        "stale",
        T0,
        T0 + pd.Timedelta(seconds=2),
        2,
    )


def test_a_time_gap_must_exceed_max_gap() -> None:
    config = replace(QUIET, max_gap=timedelta(seconds=2))
    frame = trades(3)
    frame.loc[1:, "ts"] += pd.Timedelta(seconds=1)  # a 2 s step: not a gap
    frame.loc[2:, "ts"] += pd.Timedelta(seconds=1, microseconds=1)  # 2 s + 1 µs: a gap
    frame["recv_ts"] = frame["ts"]
    assert hits(frame, config) == {"time_gap": {2}}


def test_future_and_quality_windows_are_skipped_without_their_inputs() -> None:
    frame = trades(3, ts=[T0, T0 + pd.Timedelta(days=9), T0 + pd.Timedelta(days=10)])
    frame["recv_ts"] = frame["ts"]
    result = clean_frame(frame, "trades", QUIET)
    assert "future" not in result.report.rules
    assert "quality_window" not in result.report.rules
    assert hits(frame, QUIET, now=T0 + pd.Timedelta(days=9)) == {"future": {2}}
    in_new_york = (T0 + pd.Timedelta(days=9)).tz_localize("UTC").tz_convert("America/New_York")
    assert hits(frame, QUIET, now=in_new_york.to_pydatetime()) == {"future": {2}}


def test_quality_windows_close_at_the_symbols_next_resync_and_ignore_other_symbols() -> None:
    frame = pd.concat([trades(10), trades(10, symbol="ETH-USD")], ignore_index=True)
    at = [T0 + pd.Timedelta(seconds=s) for s in (2, 2, 4, 6, 1)]
    events = pd.DataFrame(
        {
            "exchange": "sim",
            "symbol": ["BTC-USD", "BTC-USD", None, "ETH-USD", "SOL-USD"],
            "ts": at,
            "kind": ["gap", "resync", "stale", "resync", "gap"],
        }
    )
    result = clean_frame(frame, "trades", QUIET, quality_events=events)
    # BTC's gap resyncs at its own start (an empty window); the connection-wide stale at 4 s
    # lasts until ETH's resync at 6 s for ETH and has no end for BTC.
    assert flagged(result.flags) == {"quality_window": set(range(4, 10)) | {14, 15}}
    windows = result.report.windows
    assert windows[["symbol", "detail", "rows"]].values.tolist() == [
        ["BTC-USD", "gap", 0],
        ["BTC-USD", "stale", 6],
        ["ETH-USD", "stale", 2],
    ]
    assert windows["end"].isna().tolist() == [False, True, False]


def test_interpolation_between_equal_timestamps_takes_the_earlier_value() -> None:
    frame = trades(3, ts=T0, size=[1.0, np.nan, 3.0])
    result = clean_frame(frame, "trades", replace(QUIET, fill={"size": "interpolate"}))
    assert result.clean["size"].tolist() == [1.0, 1.0, 3.0]


def test_a_value_with_nothing_to_fill_from_is_dropped() -> None:
    frame = trades(3, price=[np.nan, 100.0, np.nan])
    config = replace(QUIET, fill={"price": "interpolate"})
    result = clean_frame(frame, "trades", config)
    assert result.clean["row_id"].tolist() == [1]
    actions = result.flags.set_index("row_id")["action"].to_dict()
    assert actions == {0: "drop", 2: "drop"}
    assert result.report.counts.set_index("rule").loc["missing", "dropped"] == 2


def test_a_fill_never_borrows_from_a_dropped_row() -> None:
    frame = trades(3, price=[100.0, -5.0, np.nan])
    result = clean_frame(frame, "trades", replace(QUIET, fill={"price": "ffill"}))
    assert result.clean.set_index("row_id")["price"].to_dict() == {0: 100.0, 2: 100.0}


def test_timezone_aware_input_is_converted_to_naive_utc() -> None:
    frame = trades(2)
    frame["ts"] = frame["ts"].dt.tz_localize("UTC").dt.tz_convert("America/New_York")
    result = clean_frame(frame, "trades", QUIET)
    assert result.clean["ts"].tolist() == [T0, T0 + pd.Timedelta(seconds=1)]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"fill": {"bogus": "ffill"}}, "cannot fill 'bogus'"),
        ({"fill": {"price": "mean"}}, "fill policy for price"),
        ({"fill": {"side": "interpolate"}}, "only prices and sizes"),
        ({"actions": {"nonsense": "drop"}}, "no rule 'nonsense'"),
        ({"actions": {"required": "flag"}}, "no rule 'required' takes an action"),
        ({"actions": {"stale": "delete"}}, "action for stale"),
        ({"max_gap": timedelta(0)}, "max_gap must be positive"),
        ({"stale_rows": 1}, "stale_rows must be at least 2"),
        ({"reorder_tolerance": timedelta(seconds=-1)}, "reorder_tolerance"),
    ],
)
def test_an_impossible_config_is_a_usage_error(changes: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        CleanConfig(**changes)  # type: ignore[arg-type]


def test_impossible_outlier_parameters_are_usage_errors() -> None:
    with pytest.raises(UsageError, match="zscore window"):
        ZScore(window=1)
    with pytest.raises(UsageError, match="n_sigmas"):
        Hampel(n_sigmas=0)


def test_frames_without_the_tables_columns_or_of_unknown_kinds_are_refused() -> None:
    with pytest.raises(UsageError, match=r"needs columns \['trade_id'\]"):
        clean_frame(trades(2).drop(columns="trade_id"))
    with pytest.raises(UsageError, match="cannot clean 'bars'"):
        clean_frame(trades(2), "bars")


def test_the_report_reads_as_text_markdown_and_a_frame() -> None:
    fx = fixture("trades")
    report = clean_frame(fx.frame, "trades", CONFIG, now=NOW, quality_events=fx.events).report
    text = report.summary()
    assert text.splitlines()[0] == (
        "clean trades from DataFrame: 2,004 rows in, 1,989 out (15 dropped)"
    )
    assert "quality_window         80          0" in text
    assert "windows: quality_window 5, stale 3, time_gap 1" in text
    markdown = report._repr_markdown_()
    assert "| rule | rows | dropped | description |" in markdown
    assert "| stale | 57 | 0 |" in markdown
    assert "\\|recv_ts - ts\\|" in markdown  # pipes in cells are escaped
    frame = report.to_frame()
    assert list(frame.columns) == ["rule", "rows", "dropped", "description"]
    frame.loc[0, "rows"] = -1
    assert report.count("required") == 4
    assert len(report.examples.groupby("rule").size()) == len(fx.expected)
    assert report.examples.groupby("rule").size().max() == 3
    with pytest.raises(UsageError, match="'crossed' did not run"):
        report.count("crossed")
    result = clean_frame(fx.frame, "trades", CONFIG, now=NOW)
    assert (
        repr(result)
        == "<CleanResult clean trades from DataFrame: 2,004 rows in, 1,989 out (15 dropped)>"
    )
    assert result._repr_markdown_() == result.report._repr_markdown_()


def test_empty_and_fully_dropped_frames_give_zero_reports() -> None:
    empty = clean_frame(trades(0), "trades", QUIET, now=NOW)
    assert (empty.report.rows_in, empty.report.rows_out) == (0, 0)
    assert empty.report.counts["rows"].sum() == 0
    gone = clean_frame(trades(3, price=-1.0), "trades", QUIET, now=NOW)
    assert gone.clean.empty
    assert gone.report.count("non_positive") == 3
