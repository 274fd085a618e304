"""Sequencing one symbol's messages from one or two connections: order, gaps, duplicates."""

from __future__ import annotations

from workbench.core.sequencer import SymbolSequencer


def synced(last: int = 10, conns: tuple[int, ...] = (1,)) -> SymbolSequencer[str]:
    seq: SymbolSequencer[str] = SymbolSequencer(gap_timeout=0.5)
    for conn in conns:
        seq.connection_up(conn)
        seq.note_position(conn, last)
    seq.snapshot_applied(None, last, 0.0)
    seq.notes.clear()
    return seq


def test_in_order_messages_are_ready_at_once() -> None:
    seq = synced()
    assert seq.on_message(1, 11, "a", 0.0) == ["a"]
    assert seq.on_message(1, 12, "b", 0.0) == ["b"]
    assert seq.last == 12 and not seq.notes


def test_messages_before_the_first_snapshot_are_buffered_then_released() -> None:
    seq: SymbolSequencer[str] = SymbolSequencer()
    seq.connection_up(1)
    assert seq.on_message(1, 5, "x", 0.0) == []
    assert seq.on_message(1, 6, "y", 0.0) == []
    assert seq.snapshot_applied(None, 5, 0.0) == ["y"]
    assert seq.synced and seq.last == 6


def test_single_connection_gap_is_declared_immediately() -> None:
    seq = synced()
    assert seq.on_message(1, 13, "c", 0.0) == []
    assert not seq.synced and seq.needs_resync
    gap = [n for n in seq.notes if n.kind == "gap"]
    assert gap[0].detail == {"from_seq": 11, "to_seq": 12}


def test_resync_releases_buffered_successors_and_reports_the_window() -> None:
    seq = synced()
    seq.on_message(1, 13, "c", 0.0)
    seq.on_message(1, 14, "d", 0.0)
    seq.on_message(1, 15, "e", 0.0)
    seq.notes.clear()
    assert seq.snapshot_applied(None, 13, 0.0) == ["d", "e"]
    assert seq.synced and seq.last == 15
    assert seq.notes[0].kind == "resync"
    assert seq.notes[0].detail == {"from_seq": 11, "snapshot_seq": 13}


def test_stale_snapshot_leaves_the_gap_open() -> None:
    seq = synced()
    seq.on_message(1, 13, "c", 0.0)
    seq.notes.clear()
    assert seq.snapshot_applied(None, 11, 0.0) == []
    assert [n.kind for n in seq.notes if n.kind == "gap"] == ["gap"]
    assert seq.needs_resync


def test_duplicate_on_a_connection_is_reported_and_ignored() -> None:
    seq = synced()
    seq.on_message(1, 11, "a", 0.0)
    assert seq.on_message(1, 11, "a", 0.0) == []
    assert [n.kind for n in seq.notes] == ["duplicate"]


def test_redundant_twin_fills_a_hole_without_a_gap() -> None:
    seq = synced(conns=(1, 2))
    assert seq.on_message(1, 11, "a", 0.0) == ["a"]
    assert seq.on_message(1, 13, "c", 0.0) == []  # conn 1 skipped 12
    assert seq.synced
    assert seq.on_message(2, 11, "a", 0.0) == []  # twin of an applied message
    assert seq.on_message(2, 12, "b", 0.0) == ["b", "c"]
    assert seq.on_message(2, 13, "c", 0.0) == []
    assert seq.synced and seq.last == 13
    kinds = [n.kind for n in seq.notes]
    assert kinds == ["conn_gap"]
    assert seq.notes[0].detail == {"conn": 1, "from_seq": 12, "to_seq": 12}


def test_redundant_gap_declared_once_every_connection_passed_it() -> None:
    seq = synced(conns=(1, 2))
    seq.on_message(1, 12, "b", 0.0)
    assert seq.synced
    seq.on_message(2, 12, "b", 0.0)
    assert not seq.synced
    assert any(n.kind == "gap" and n.detail["from_seq"] == 11 for n in seq.notes)


def test_gap_declared_after_timeout_when_a_twin_is_silent() -> None:
    seq = synced(conns=(1, 2))
    seq.on_message(1, 12, "b", 1.0)
    seq.tick(1.2)
    assert seq.synced
    seq.tick(1.6)
    assert not seq.synced and seq.needs_resync


def test_heartbeat_reveals_a_lost_tail() -> None:
    seq = synced()
    seq.on_heartbeat(1, 12, 0.0)
    assert not seq.synced
    assert any(n.kind == "gap" and n.detail["from_seq"] == 11 for n in seq.notes)


def test_heartbeat_at_current_seq_is_quiet() -> None:
    seq = synced()
    seq.on_heartbeat(1, 10, 0.0)
    assert seq.synced and not seq.notes


def test_connection_down_lets_the_survivor_decide() -> None:
    seq = synced(conns=(1, 2))
    seq.on_message(1, 12, "b", 0.0)
    assert seq.synced
    seq.connection_down(2, 0.1)
    assert not seq.synced


def test_invalidate_marks_window_from_the_bad_message() -> None:
    seq = synced()
    seq.on_message(1, 11, "a", 0.0)
    seq.invalidate("crossed", 11)
    assert seq.needs_resync
    assert seq.on_message(1, 12, "b", 0.0) == []
    seq.notes.clear()
    assert seq.snapshot_applied(None, 12, 0.0) == []
    assert seq.notes[0].detail == {"from_seq": 11, "snapshot_seq": 12}


def test_reset_waits_for_a_fresh_snapshot() -> None:
    seq = synced()
    seq.reset()
    assert not seq.synced
    assert seq.on_message(1, 30, "z", 0.0) == []
    assert seq.snapshot_applied(1, 29, 0.0) == ["z"]


def test_buffer_is_bounded_while_waiting_for_a_snapshot() -> None:
    seq: SymbolSequencer[str] = SymbolSequencer(max_buffer=3)
    seq.connection_up(1)
    for n in range(1, 5):
        seq.on_message(1, n, str(n), 0.0)
    assert seq.buffered == 1  # the overflow dropped the backlog, then kept the newest
    assert [n.kind for n in seq.notes] == ["buffer_overflow"]
    assert seq.snapshot_applied(None, 3, 0.0) == ["4"]


def test_chained_rule_drops_what_the_snapshot_holds_and_applies_the_straddling_event() -> None:
    # Binance: events (U..u) buffered before the REST snapshot at lastUpdateId 105.
    seq: SymbolSequencer[str] = SymbolSequencer(rule="chained")
    seq.on_message(1, 100, "old", 0.0, prev=94)
    seq.on_message(1, 108, "straddles", 0.0, prev=100)
    seq.on_message(1, 112, "next", 0.0, prev=108)
    assert seq.snapshot_applied(None, 105, 0.0) == ["straddles", "next"]
    assert seq.on_message(1, 115, "live", 0.0, prev=112) == ["live"]
    assert seq.on_message(1, 113, "stale", 0.0, prev=110) == []


def test_chained_rule_declares_a_gap_when_a_link_is_missing() -> None:
    seq: SymbolSequencer[str] = SymbolSequencer(rule="chained")
    seq.snapshot_applied(None, 10, 0.0)
    assert seq.on_message(1, 20, "a", 0.0, prev=10) == ["a"]
    assert seq.on_message(1, 40, "b", 0.0, prev=30) == []
    gaps = [n.detail for n in seq.notes if n.kind == "gap"]
    assert gaps == [{"from_seq": 21, "to_seq": 30}]
    assert seq.needs_resync and not seq.synced


def test_chained_rule_accepts_a_sequence_reset_whose_link_matches() -> None:
    # OKX after maintenance: seqId drops below prevSeqId, but prevSeqId is the last seqId.
    seq: SymbolSequencer[str] = SymbolSequencer(rule="chained")
    seq.snapshot_applied(1, 500, 0.0)
    assert seq.on_message(1, 500, "keepalive", 0.0, prev=500) == ["keepalive"]
    assert seq.on_message(1, 3, "reset", 0.0, prev=500) == ["reset"]
    assert seq.on_message(1, 4, "after", 0.0, prev=3) == ["after"]
    assert seq.notes == []


def test_monotonic_rule_never_gaps_and_drops_only_what_the_snapshot_contains() -> None:
    # Bitstamp: microtimestamps order the diffs but say nothing about loss.
    seq: SymbolSequencer[str] = SymbolSequencer(rule="monotonic")
    for ts, name in ((1000, "a"), (1500, "b"), (2700, "c")):
        seq.on_message(1, ts, name, 0.0)
    assert seq.snapshot_applied(None, 1500, 0.0) == ["c"]
    assert seq.on_message(1, 9000, "d", 0.0) == ["d"]
    assert seq.on_message(1, 8000, "late", 0.0) == []
    seq.tick(100.0)
    assert [n.kind for n in seq.notes] == ["duplicate"]
    assert seq.synced


def test_monotonic_snapshot_older_than_everything_buffered_is_a_gap() -> None:
    # Diffs between the snapshot (1000) and the first buffered one (2000) were never seen.
    seq: SymbolSequencer[str] = SymbolSequencer(rule="monotonic")
    seq.on_message(1, 2000, "a", 0.0)
    assert seq.snapshot_applied(None, 1000, 0.0) == []
    assert [n.kind for n in seq.notes] == ["gap"] and seq.needs_resync
    assert seq.snapshot_applied(None, 2500, 0.0) == []  # the refetched book holds "a"
    assert seq.synced and not seq.needs_resync


def test_held_back_messages_wait_for_the_next_snapshot() -> None:
    seq = synced(last=10)
    assert seq.on_message(1, 11, "a", 0.0) == ["a"]
    seq.invalidate("crossed", 11)
    seq.hold(12, "b")
    assert seq.snapshot_applied(None, 11, 0.0) == ["b"]
