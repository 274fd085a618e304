"""The risk manager: each rule fires in a scenario built for it and not just inside its limit,
reduce-only orders always pass, the pause and the kill switch keep their clocks, splits sum
exactly; every number by hand."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from workbench.core.book import OrderBook
from workbench.core.bookfills import BookFills
from workbench.core.risk import DAY_US, RiskDecision, RiskLimits, RiskManager, size_for_risk
from workbench.errors import UsageError
from workbench.events import Level, Order, Side

T0 = 1_704_067_200_000_000  # 2024-01-01T00:00:00Z
HOUR = 3_600_000_000


def order(side: Side, size: float | None = None, **kw: Any) -> Order:
    kw.setdefault("type", "market" if kw.get("price") is None else "limit")
    return Order(kw.pop("cid", "o1"), "BTC-USD", side, created_us=T0, size=size, **kw)


def book(bids: list[Level], asks: list[Level]) -> OrderBook:
    b = OrderBook()
    b.apply_snapshot(bids, asks)
    return b


def check(manager: RiskManager, o: Order, **kw: Any) -> RiskDecision:
    args: dict[str, Any] = {"time_us": T0, "price": 100.0, "position": 0.0, "equity": 10_000.0}
    return manager.check(o, **{**args, **kw})


def verdict(decision: RiskDecision) -> tuple[str, bool]:
    return decision.rule, decision.accepted


# -- position and notional --------------------------------------------------------------------


def test_position_limit_rejects_beyond_the_fraction_of_equity_and_accepts_at_it() -> None:
    risk = RiskManager(RiskLimits(max_position_pct=0.5))
    assert verdict(check(risk, order("buy", 50))) == ("accepted", True)  # 5,000 / 10,000
    refused = check(risk, order("buy", 51))
    assert verdict(refused) == ("position_limit", False)
    assert "position 0.51 of equity would exceed the 0.5 limit" in refused.reason
    assert refused.detail["position_pct"] == pytest.approx(0.51)


def test_position_limit_counts_the_position_already_held_and_shorts_alike() -> None:
    risk = RiskManager(RiskLimits(max_position_pct=0.5))
    assert verdict(check(risk, order("buy", 20), position=31)) == ("position_limit", False)
    assert verdict(check(risk, order("buy", 20), position=30)) == ("accepted", True)
    assert verdict(check(risk, order("sell", 62))) == ("position_limit", False)
    assert verdict(check(risk, order("sell", target=-0.5))) == ("accepted", True)
    assert verdict(check(risk, order("sell", target=-0.6))) == ("position_limit", False)


def test_no_position_fits_when_equity_is_not_positive() -> None:
    risk = RiskManager(RiskLimits(max_position_pct=0.5))
    refused = check(risk, order("buy", 1), equity=0.0)
    assert verdict(refused) == ("position_limit", False)
    assert "not positive" in refused.reason


def test_order_notional_caps_size_orders_and_what_a_target_order_trades() -> None:
    risk = RiskManager(RiskLimits(max_order_notional=1_000))
    assert verdict(check(risk, order("buy", 10))) == ("accepted", True)
    refused = check(risk, order("buy", 10.01))
    assert verdict(refused) == ("order_notional", False)
    assert "notional 1,001.00 would exceed the 1,000.00 limit" in refused.reason
    # |0.15 × 10,000 − 5 × 100| = 1,000; 0.16 gives 1,100
    assert verdict(check(risk, order("buy", target=0.15), position=5)) == ("accepted", True)
    assert verdict(check(risk, order("buy", target=0.16), position=5)) == (
        "order_notional",
        False,
    )


def test_reduce_only_orders_skip_the_limits_but_a_flip_does_not() -> None:
    risk = RiskManager(RiskLimits(max_order_notional=100, max_position_pct=0.01))
    held = {"position": 10.0}
    assert verdict(check(risk, order("sell", 10), **held)) == ("accepted", True)
    assert verdict(check(risk, order("sell", 4), **held)) == ("accepted", True)
    assert verdict(check(risk, order("sell", target=0.0), **held)) == ("accepted", True)
    assert verdict(check(risk, order("buy", 3), position=-3.0)) == ("accepted", True)
    assert verdict(check(risk, order("sell", 15), **held)) == ("position_limit", False)


def test_rules_are_checked_in_order_kill_switch_pause_position_notional() -> None:
    risk = RiskManager(RiskLimits(max_position_pct=0.5, max_order_notional=100, max_drawdown=0.1))
    big = order("buy", 60)  # breaks both the position and the notional limit
    assert check(risk, big).rule == "position_limit"
    risk.mark(T0, 10_000, 0, 100)
    risk.mark(T0 + HOUR, 8_000, 0, 100)
    assert check(risk, big).rule == "kill_switch"


# -- daily loss -------------------------------------------------------------------------------


def test_daily_loss_pauses_beyond_the_cap_and_not_at_it() -> None:
    risk = RiskManager(RiskLimits(daily_loss_cap=0.02))
    assert risk.mark(T0, 10_000, 0, 100) == []
    assert risk.mark(T0 + HOUR, 9_800, 0, 100) == []  # exactly 2%
    (paused,) = risk.mark(T0 + 2 * HOUR, 9_790, 0, 100)
    assert verdict(paused) == ("daily_loss", False)
    assert paused.action == ""
    assert paused.detail["loss"] == pytest.approx(0.021)
    assert "paused until 2024-01-02T00:00:00Z" in paused.reason
    assert risk.paused_until_us == T0 + DAY_US and risk.state == "paused"
    refused = check(risk, order("buy", 1), time_us=T0 + 3 * HOUR)
    assert verdict(refused) == ("daily_loss", False)
    assert verdict(check(risk, order("sell", 1), position=1, time_us=T0 + 3 * HOUR)) == (
        "accepted",
        True,
    )


def test_the_pause_lifts_when_the_next_utc_day_starts_and_not_before() -> None:
    risk = RiskManager(RiskLimits(daily_loss_cap=0.02))
    risk.mark(T0, 10_000, 0, 100)
    risk.mark(T0 + HOUR, 9_000, 0, 100)
    assert risk.mark(T0 + 20 * HOUR, 10_500, 0, 100) == []  # recovered, still the same day
    assert check(risk, order("buy", 1), time_us=T0 + DAY_US - 1).rule == "daily_loss"
    assert check(risk, order("buy", 1), time_us=T0 + DAY_US).rule == "accepted"
    assert risk.state == "paused"  # as of the last mark
    (resumed,) = risk.mark(T0 + DAY_US + HOUR, 10_400, 0, 100)
    assert verdict(resumed) == ("resume", True)
    assert risk.state == "active" and risk.paused_until_us is None
    assert risk.day_start_equity == 10_400
    assert risk.mark(T0 + DAY_US + 2 * HOUR, 10_200, 0, 100) == []  # 1.9% of the new start


# -- kill switch ------------------------------------------------------------------------------


def tripped() -> RiskManager:
    risk = RiskManager(RiskLimits(max_drawdown=0.1))
    risk.mark(T0, 10_000, 2, 100, 100, symbol="BTC-USD")
    risk.mark(T0 + HOUR, 12_000, 2, 100, 100, symbol="BTC-USD")
    assert risk.mark(T0 + 2 * HOUR, 10_800, 2, 100, 100, symbol="BTC-USD") == []  # exactly 10%
    (trip,) = risk.mark(T0 + 3 * HOUR, 10_700, 2, 100, 100, symbol="BTC-USD")
    assert verdict(trip) == ("kill_switch", False)
    assert (trip.action, trip.symbol) == ("close", "BTC-USD")
    assert trip.detail["drawdown"] == pytest.approx(1 - 10_700 / 12_000)
    return risk


def test_a_drawdown_beyond_the_limit_latches_the_kill_switch_and_asks_to_close() -> None:
    risk = tripped()
    assert risk.killed and risk.state == "killed"
    assert "drawdown 10.83% from the peak 12,000.00" in risk.kill_reason
    assert check(risk, order("buy", 1), time_us=T0 + 4 * HOUR).rule == "kill_switch"
    close = check(risk, order("sell", 2), position=2, time_us=T0 + 4 * HOUR)
    assert verdict(close) == ("accepted", True)


def test_the_kill_switch_stays_latched_across_days_and_checkpoints_until_reset() -> None:
    risk = tripped()
    risk.mark(T0 + 3 * DAY_US, 13_000, 0, 100, symbol="BTC-USD")
    assert risk.killed
    restored = RiskManager.from_state(risk.limits, json.loads(json.dumps(risk.to_state())))
    assert restored.killed and restored.kill_reason == risk.kill_reason
    assert check(restored, order("buy", 1), time_us=T0 + 3 * DAY_US).rule == "kill_switch"
    reset = restored.reset_kill_switch(T0 + 3 * DAY_US + 1)
    assert verdict(reset) == ("kill_switch_reset", True)
    assert not restored.killed and restored.state == "active"
    assert check(restored, order("buy", 1), time_us=T0 + 3 * DAY_US + 2).rule == "accepted"
    # the peak restarts from the next mark, so the old peak does not trip it again
    assert restored.mark(T0 + 3 * DAY_US + 3, 10_000, 0, 100) == []
    assert restored.peak_equity == 10_000


def test_a_latched_switch_asks_each_position_to_close_once() -> None:
    risk = tripped()
    assert risk.mark(T0 + 4 * HOUR, 10_700, 2, 100, 100, symbol="BTC-USD") == []
    (other,) = risk.mark(T0 + 4 * HOUR, 10_700, -1, 50, 50, symbol="ETH-USD")
    assert (other.rule, other.action, other.symbol) == ("kill_switch", "close", "ETH-USD")
    assert risk.mark(T0 + 5 * HOUR, 10_700, -0.5, 50, 50, symbol="ETH-USD") == []


# -- slippage ---------------------------------------------------------------------------------

BIDS = [(99.0, 1.0), (98.0, 2.0)]
ASKS = [(100.0, 1.0), (101.0, 2.0), (102.0, 5.0)]


def slippage(**kw: Any) -> RiskManager:
    return RiskManager(RiskLimits(slippage_budget_bps=50, **kw))


def test_a_market_buy_walking_beyond_the_budget_from_the_touch_is_rejected() -> None:
    risk, b = slippage(), book(BIDS, ASKS)
    # 1 @ 100 + 1 @ 101 averages 100.5: 50 bps beyond the best ask
    assert verdict(check(risk, order("buy", 2), book=b)) == ("accepted", True)
    refused = check(risk, order("buy", 3), book=b)  # 302 / 3 = 100.667: 66.67 bps
    assert verdict(refused) == ("slippage", False)
    assert refused.detail["slippage_bps"] == pytest.approx(200 / 3)
    assert refused.detail["touch"] == 100.0
    assert "66.67 bps beyond the touch 100" in refused.reason


def test_a_market_sell_walks_the_bids() -> None:
    risk, b = slippage(), book(BIDS, ASKS)
    # 1 @ 99 + 0.5 @ 98 averages 98.667: 33.67 bps below 99; 2 average 98.5: 50.51 bps
    assert verdict(check(risk, order("sell", 1.5), book=b)) == ("accepted", True)
    refused = check(risk, order("sell", 2), book=b)
    assert verdict(refused) == ("slippage", False)
    assert refused.detail["slippage_bps"] == pytest.approx(0.5 / 99 * 10_000)


def test_the_walk_rounds_to_the_lot_of_the_fill_model() -> None:
    risk, b = slippage(), book(BIDS, ASKS)
    # 2.5 averages (100 + 1.5 × 101) / 2.5 = 100.6 (60 bps); on a lot of 1 it walks 2 (50 bps)
    assert check(risk, order("buy", 2.5), book=b).rule == "slippage"
    assert check(risk, order("buy", 2.5), book=b, fills=BookFills(lot=1.0)).rule == "accepted"


def test_an_insufficient_empty_or_invalid_book_is_a_rejection() -> None:
    risk = slippage()
    short = check(risk, order("buy", 9), book=book(BIDS, ASKS))
    assert verdict(short) == ("slippage", False)
    assert "the book holds only 8 of 9 on its asks" in short.reason
    assert "no asks" in check(risk, order("buy", 1), book=book(BIDS, [])).reason
    stale = book(BIDS, ASKS)
    stale.invalidate()
    assert "out of sync" in check(risk, order("buy", 1), book=stale).reason
    with pytest.raises(UsageError, match="needs the live book"):
        check(risk, order("buy", 1))


def test_a_marketable_limit_walks_only_up_to_its_price_and_a_resting_one_not_at_all() -> None:
    risk, b = slippage(), book(BIDS, ASKS)
    assert check(risk, order("buy", 5, price=101.0), book=b).rule == "slippage"  # 66.67 bps
    assert check(risk, order("buy", 5, price=100.5), book=b).rule == "accepted"  # 1 @ 100
    assert check(risk, order("buy", 50, price=99.5), book=b).rule == "accepted"
    assert check(risk, order("buy", 50, price=101.0, tif="post_only"), book=b).rule == ("accepted")


def test_a_close_is_not_walked() -> None:
    risk = slippage()
    assert check(risk, order("sell", 9), position=9, book=book([], ASKS)).accepted


# -- splitting --------------------------------------------------------------------------------


def test_an_order_beyond_the_child_cap_splits_into_numbered_children() -> None:
    risk = RiskManager(RiskLimits(max_child_notional=1_000))
    parent = order("buy", 25, price=100.0, cid="p7")
    children = risk.split(parent, 100.0)
    assert [(c.client_order_id, c.size) for c in children] == [
        ("p7.1", 10.0),
        ("p7.2", 10.0),
        ("p7.3", 5.0),
    ]
    assert all(
        (c.side, c.type, c.price, c.symbol) == ("buy", "limit", 100.0, "BTC-USD") for c in children
    )
    decision = check(risk, parent)
    assert verdict(decision) == ("split", True) and decision.detail["children"] == 3
    small = order("buy", 10)
    assert risk.split(small, 100.0) == [small]
    assert check(risk, small).rule == "accepted"


def test_children_are_whole_lots_and_a_lot_above_the_cap_is_a_usage_error() -> None:
    risk = RiskManager(RiskLimits(max_child_notional=1_000))
    children = risk.split(order("buy", 25), 100.0, fills=BookFills(lot=3.0))
    assert [c.size for c in children] == [9.0, 9.0, 7.0]
    with pytest.raises(UsageError, match="worth less than one lot"):
        risk.split(order("buy", 25), 100.0, fills=BookFills(lot=20.0))


def test_a_target_order_splits_into_size_orders_of_what_it_trades() -> None:
    risk = RiskManager(RiskLimits(max_child_notional=1_000))
    parent = order("buy", target=0.3)
    children = risk.split(parent, 100.0, equity=10_000, position=5)  # 3,000 − 500 = 25 units
    assert [(c.size, c.target) for c in children] == [(10.0, None), (10.0, None), (5.0, None)]
    with pytest.raises(UsageError, match="equity= and position="):
        risk.split(parent, 100.0)


@settings(max_examples=300, deadline=None)
@given(
    parts=st.floats(0.001, 200.0),
    price=st.floats(0.01, 1e5),
    cap=st.floats(1.0, 1e6),
    lot=st.sampled_from([0.0, 0.001, 0.01, 0.1, 1.0]),
)
def test_children_sum_exactly_to_the_parent_and_each_stays_within_the_cap(
    parts: float, price: float, cap: float, lot: float
) -> None:
    assume(lot * price <= cap)  # else no child could hold one lot
    size = parts * cap / price  # about `parts` caps' worth
    risk = RiskManager(RiskLimits(max_child_notional=cap))
    children = risk.split(order("sell", size, cid="x"), price, fills=BookFills(lot=lot))
    sizes = [c.size for c in children if c.size is not None]
    assert len(sizes) == len(children)
    assert sum(sizes) == size
    assert all(s > 0 and s * price <= cap * (1 + 2e-9) for s in sizes)
    if len(children) > 1:
        assert [c.client_order_id for c in children] == [f"x.{k}" for k in range(1, len(sizes) + 1)]
        assert len(set(sizes[:-1])) == 1 and sizes[-1] <= sizes[0] * (1 + 1e-9)


# -- stop-loss and take-profit ----------------------------------------------------------------


def exits() -> RiskManager:
    return RiskManager(RiskLimits(stop_loss_pct=0.05, take_profit_pct=0.1))


def test_a_long_hits_its_stop_at_the_stop_price_and_is_asked_once() -> None:
    risk = exits()
    assert risk.mark(T0, 10_000, 2, 95.5, 100, symbol="BTC-USD") == []
    (stop,) = risk.mark(T0 + 1, 9_900, 2, 95, 100, symbol="BTC-USD")
    assert (stop.rule, stop.action, stop.symbol, stop.accepted) == (
        "stop_loss",
        "close",
        "BTC-USD",
        False,
    )
    assert stop.detail["return_pct"] == pytest.approx(-0.05)
    assert risk.mark(T0 + 2, 9_800, 2, 94, 100, symbol="BTC-USD") == []
    assert risk.mark(T0 + 3, 9_800, 0, 94, math.nan, symbol="BTC-USD") == []
    (take,) = risk.mark(T0 + 4, 9_800, 1, 110, 100, symbol="BTC-USD")
    assert take.rule == "take_profit"


def test_a_short_stops_out_above_its_entry_and_takes_profit_below_it() -> None:
    risk = exits()
    assert risk.mark(T0, 10_000, -2, 104, 100, symbol="A") == []
    assert [d.rule for d in risk.mark(T0 + 1, 10_000, -2, 105, 100, symbol="A")] == ["stop_loss"]
    assert risk.mark(T0 + 2, 10_000, -2, 90.1, 100, symbol="B") == []
    assert [d.rule for d in risk.mark(T0 + 3, 10_000, -2, 90, 100, symbol="B")] == ["take_profit"]


def test_stops_need_the_entry_price_of_an_open_position() -> None:
    with pytest.raises(UsageError, match="entry price"):
        exits().mark(T0, 10_000, 2, 100)


# -- limits, state and rows -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_position_pct", -0.1),
        ("max_order_notional", math.nan),
        ("daily_loss_cap", 1.5),
        ("daily_loss_cap", 0.0),
        ("max_drawdown", "0.2"),
        ("slippage_budget_bps", True),
        ("stop_loss_pct", math.inf),
        ("max_child_notional", 0),
    ],
)
def test_bad_limits_are_a_usage_error_naming_the_limit(field: str, value: object) -> None:
    with pytest.raises(UsageError, match=rf"RiskLimits\.{field} .* got {value!r}"):
        RiskLimits(**{field: value})


def test_a_mark_before_the_last_is_a_usage_error() -> None:
    risk = RiskManager(RiskLimits())
    risk.mark(T0, 10_000, 0, 100)
    with pytest.raises(UsageError, match="time runs forward"):
        risk.mark(T0 - 1, 10_000, 0, 100)


def test_the_state_keeps_the_days_start_equity_and_a_pause_across_a_restart() -> None:
    risk = RiskManager(RiskLimits(daily_loss_cap=0.02))
    risk.mark(T0, 10_000, 0, 100)
    risk.mark(T0 + HOUR, 9_000, 0, 100)
    restored = RiskManager.from_state(risk.limits, json.loads(json.dumps(risk.to_state())))
    assert restored.to_state() == risk.to_state()
    assert restored.day_start_equity == 10_000 and restored.paused_until_us == T0 + DAY_US
    assert check(restored, order("buy", 1), time_us=T0 + 2 * HOUR).rule == "daily_loss"
    with pytest.raises(UsageError, match="malformed risk state"):
        RiskManager.from_state(risk.limits, {**risk.to_state(), "killed": "yes"})
    with pytest.raises(UsageError, match="not a risk state"):
        RiskManager.from_state(risk.limits, {})


def test_a_decision_row_is_flat_with_its_detail_as_json() -> None:
    decision = check(RiskManager(RiskLimits(max_order_notional=50)), order("buy", 1, cid="c1"))
    row = decision.as_row()
    assert {k: row[k] for k in ("time_us", "client_order_id", "symbol", "rule", "accepted")} == {
        "time_us": T0,
        "client_order_id": "c1",
        "symbol": "BTC-USD",
        "rule": "order_notional",
        "accepted": False,
    }
    assert json.loads(str(row["detail"])) == decision.detail


# -- sizing -----------------------------------------------------------------------------------


def test_size_for_risk_divides_the_risk_by_the_stop_distance() -> None:
    assert size_for_risk(10_000, 0.01, 100, 95) == 20  # 100 at risk / 5 per unit
    assert size_for_risk(10_000, 0.01, 100, 105) == 20  # a short's stop above
    with pytest.raises(UsageError, match="equals the entry"):
        size_for_risk(10_000, 0.01, 100, 100)
    with pytest.raises(UsageError, match="risk_fraction"):
        size_for_risk(10_000, 0.0, 100, 95)
    with pytest.raises(UsageError, match="equity"):
        size_for_risk(-1, 0.01, 100, 95)
