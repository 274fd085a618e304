"""Acceptance: 30 s of `workbench record` against a faulty `workbench sim` loses nothing.

Every trade the simulator generated after our first snapshot is stored exactly once, the
final stored book equals the simulator's true book, and every fault the simulator injected
is visible in quality_events or quarantine.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import query, read_ledger, run_record, sim_process

pytestmark = pytest.mark.slow

TRADING = 30
FAULTS = [
    "--drop-every",
    "5",
    "--malformed",
    "0.01",
    "--gap",
    "0.005",
    "--duplicate",
    "0.01",
    "--crossed",
    "0.002",
]


def run_session(tmp_path: Path, *record_flags: str) -> tuple[Path, list[dict[str, Any]], str]:
    ledger = tmp_path / "ledger.jsonl"
    db = tmp_path / "rec.duckdb"
    with sim_process(
        "--seed",
        "11",
        "--symbols",
        "BTC-USD,ETH-USD",
        "--rate",
        "100",
        "--duration",
        str(TRADING),
        "--grace",
        "8",
        "--ledger",
        str(ledger),
        *FAULTS,
    ) as (sim, port):
        out = run_record(
            port, db, "--duration", str(TRADING + 4), *record_flags, timeout=TRADING + 60
        )
        sim.wait(timeout=30)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Traceback" not in out.stderr, out.stderr
    return db, read_ledger(ledger), out.stdout


def quality(db: Path) -> list[tuple[str, str, dict[str, Any]]]:
    rows = query(db, "SELECT symbol, kind, detail FROM quality_events")
    return [(s, k, json.loads(d)) for s, k, d in rows]


def initial_snapshot_seq(events: list[tuple[str, str, dict[str, Any]]], symbol: str) -> int:
    return min(
        d["snapshot_seq"]
        for s, k, d in events
        if s == symbol and k == "resync" and d.get("initial")
    )


def assert_no_trade_lost(
    db: Path, ledger: list[dict[str, Any]], events: Any, *, unless_only_copy_lost: bool = False
) -> None:
    """Every trade after the first snapshot is stored exactly once, with its values.

    ``unless_only_copy_lost``: for a redundant feed without backfill. The simulator spoils a
    message on one of the connections subscribed at that moment; while the twin reconnects
    that is the only copy, so such a trade may be missing — nothing else may, and most
    spoiled trades must have been saved by the twin.
    """
    stored = query(db, "SELECT symbol, trade_id, price, size, side FROM trades")
    assert len(stored) == len({(s, t) for s, t, *_ in stored})
    stored_map = {(s, t): (p, q, side) for s, t, p, q, side in stored}
    spoiled_seqs = {(r["symbol"], r["seq"]) for r in ledger if r["kind"] in ("gap", "malformed")}
    for symbol in ("BTC-USD", "ETH-USD"):
        first = initial_snapshot_seq(events, symbol)
        trades = [
            r for r in ledger if r["kind"] == "trade" and r["symbol"] == symbol and r["seq"] > first
        ]
        expected = {
            (symbol, str(r["trade_id"])): (float(r["price"]), float(r["size"]), r["side"])
            for r in trades
        }
        got = {k: v for k, v in stored_map.items() if k[0] == symbol}
        assert len(expected) > 200
        if not unless_only_copy_lost:
            assert got == expected
            continue
        spoiled = {
            (symbol, str(r["trade_id"])) for r in trades if (symbol, r["seq"]) in spoiled_seqs
        }
        assert got.items() <= expected.items()
        assert expected.keys() - got.keys() <= spoiled
        assert len(spoiled & got.keys()) >= len(spoiled) / 2


def assert_final_book_is_true_book(db: Path, ledger: list[dict[str, Any]]) -> None:
    for line in (r for r in ledger if r["kind"] == "book"):
        symbol = line["symbol"]
        rows = query(
            db,
            f"""
            SELECT side, level, price, size, valid FROM book_snapshots
            WHERE symbol = '{symbol}' AND recv_ts = (
                SELECT max(recv_ts) FROM book_snapshots WHERE symbol = '{symbol}')
            ORDER BY side, level""",
        )
        assert rows and all(valid for *_, valid in rows)
        depth = max(level for _, level, *_ in rows) + 1
        assert depth == 20
        for side, key in (("bid", "bids"), ("ask", "asks")):
            got = [(p, q) for s, _, p, q, _ in rows if s == side]
            want = [(float(p), float(q)) for p, q in line[key][:depth]]
            assert got == want, f"{symbol} {side}"


def assert_every_fault_shows(db: Path, ledger: list[dict[str, Any]], events: Any) -> None:
    faults = [
        r for r in ledger if r["kind"] in ("gap", "malformed", "duplicate", "crossed", "drop")
    ]
    kinds = Counter(r["kind"] for r in faults)
    assert all(kinds[k] > 0 for k in ("gap", "malformed", "duplicate", "drop")), kinds
    (quarantined,) = query(db, "SELECT count(*) FROM quarantine")[0]
    assert quarantined == kinds["malformed"]
    disconnects = sum(1 for _, k, _ in events if k == "disconnect")
    assert disconnects >= kinds["drop"]

    def covered(symbol: str, seq: int) -> bool:
        for s, k, d in events:
            if s != symbol:
                continue
            if k == "gap" and d["from_seq"] <= seq <= (d["to_seq"] or 1 << 62):
                return True
            if k == "resync" and not d.get("initial") and d["from_seq"] <= seq <= d["snapshot_seq"]:
                return True
        return False

    def exact(symbol: str, kinds: tuple[str, ...], seq: int) -> bool:
        return any(s == symbol and k in kinds and d.get("seq") == seq for s, k, d in events)

    # A gap on the last message a connection carried for a symbol before it was dropped
    # cannot be seen by its client (nothing follows it on that connection).
    last_before_drop = {
        (r["conn"], symbol): seq
        for r in ledger
        if r["kind"] == "drop"
        for symbol, seq in r["last_seqs"].items()
    }
    unexplained = []
    for f in faults:
        symbol, seq = f.get("symbol"), f.get("seq")
        if f["kind"] in ("malformed", "drop"):
            continue  # counted above
        if f["kind"] == "gap" and (
            covered(symbol, seq) or last_before_drop.get((f["conn"], symbol)) == seq
        ):
            continue
        if f["kind"] == "duplicate" and (
            exact(symbol, ("duplicate",), seq) or covered(symbol, seq)
        ):
            continue
        if f["kind"] == "crossed" and (
            exact(symbol, ("crossed", "mismatch"), seq) or covered(symbol, seq)
        ):
            continue
        unexplained.append(f)
    assert unexplained == []


def test_recording_through_faults_loses_nothing(tmp_path: Path) -> None:
    db, ledger, stdout = run_session(tmp_path)
    events = quality(db)
    assert_no_trade_lost(db, ledger, events)
    assert_final_book_is_true_book(db, ledger)
    assert_every_fault_shows(db, ledger, events)
    assert "sim:BTC-USD,ETH-USD" in stdout and "backfilled" in stdout


def test_redundant_connection_without_backfill_loses_only_trades_it_never_received(
    tmp_path: Path,
) -> None:
    db, ledger, _ = run_session(tmp_path, "--redundant", "--no-backfill")
    events = quality(db)
    assert not any(k == "backfill" for _, k, _ in events)
    assert_no_trade_lost(db, ledger, events, unless_only_copy_lost=True)
    assert_final_book_is_true_book(db, ledger)
    assert_every_fault_shows(db, ledger, events)
