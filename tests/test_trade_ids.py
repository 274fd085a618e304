"""Trade-id bookkeeping: exactly-once recording and naming what is missing."""

from __future__ import annotations

from workbench.core.trades import TradeIdTracker


def test_consecutive_ids_advance_the_watermark() -> None:
    t = TradeIdTracker()
    assert t.add(5) and t.add(6) and t.add(7)
    assert t.watermark == 7 and not t.missing


def test_duplicates_are_rejected() -> None:
    t = TradeIdTracker()
    t.add(5)
    t.add(7)
    assert not t.add(5) and not t.add(7)


def test_hole_is_missing_until_filled() -> None:
    t = TradeIdTracker()
    t.add(5)
    t.add(8)
    assert t.missing and t.watermark == 5
    t.add(6)
    t.add(7)
    assert not t.missing and t.watermark == 8


def test_venue_claim_of_newer_trades_makes_them_missing() -> None:
    t = TradeIdTracker()
    t.add(5)
    t.exists_through(9)
    assert t.missing
    for i in range(6, 10):
        t.add(i)
    assert not t.missing


def test_start_after_ignores_earlier_trades() -> None:
    t = TradeIdTracker()
    t.start_after(100)
    assert not t.add(100) and not t.add(42)
    assert t.add(101)


def test_text_ids_deduplicate_within_the_window() -> None:
    t = TradeIdTracker(recent_limit=2)
    assert t.add_text("a") and t.add_text("b")
    assert not t.add_text("a")
    t.add_text("c")  # evicts "a"
    assert t.add_text("a")
