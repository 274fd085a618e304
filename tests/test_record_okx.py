"""`workbench record okx ...` end to end, against a local replay server.

Frames follow OKX's documented v5 public formats. The server side keeps the true book
(:class:`Okx`) and numbers its messages with ``seqId``/``prevSeqId`` as OKX does (ids that
jump, an empty keep-alive with ``prevSeqId == seqId``); older-format scenarios drop the ids
and send OKX's signed CRC32 over the exact wire strings. The expected final book is this
file's own replay of the frames the recorder received (``json.loads`` with ``Decimal`` into
``RefBook``: a message applies only if its ``prevSeqId`` is the last ``seqId``, and a checksum
mismatch or a broken chain leaves it out of sync until the next snapshot), sharing no code
with the venue or the feed.
"""

from __future__ import annotations

import json
import zlib
from decimal import Decimal
from pathlib import Path
from typing import Any

from tests.helpers.replay_server import ReplayServer, Script
from tests.venue_e2e import (
    RefBook,
    final_book,
    quality_kinds,
    quarantined,
    record_venue,
    serve,
    stored_trades,
)

EXCHANGE = "okx"
SYM = "BTC-USDT"
TS = 1763712000000  # ms
UNSUBSCRIBE = b'"op":"unsubscribe"'
NEGATIVE_SIZE = (
    b'{"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{"asks":'
    b'[["30001","-1","0","1"]],"bids":[],"ts":"1763712000999","checksum":0,'
    b'"prevSeqId":1,"seqId":2}]}'
)


def dumps(body: dict[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":")).encode()


def event(kind: str, channel: str) -> bytes:
    return dumps({"event": kind, "arg": {"channel": channel, "instId": SYM}, "connId": "a4d3ae55"})


SUBSCRIBED = [event("subscribe", "books"), event("subscribe", "trades")]
RESUBSCRIBED = [event("unsubscribe", "books"), event("subscribe", "books")]


def trades(*rows: tuple[str, str, str, int, int]) -> bytes:
    """(taker side, px, sz, tradeId, count) rows as one ``trades`` push."""
    data = [
        {
            "instId": SYM,
            "tradeId": str(trade_id),
            "px": px,
            "sz": sz,
            "side": side,
            "ts": str(TS + trade_id % 1000),
            "count": str(count),
            "source": "0",
            "seqId": 5000 + trade_id % 1000,
        }
        for side, px, sz, trade_id, count in rows
    ]
    return dumps({"arg": {"channel": "trades", "instId": SYM}, "data": data})


def okx_checksum(book: RefBook) -> int:
    """OKX's rule from its docs: top 25 bids and asks interleaved as ``bid:size:ask:size``
    in the wire strings (Decimal keeps them: str(Decimal("100.10")) == "100.10"), signed."""
    bids = sorted(book.bids.items(), reverse=True)[:25]
    asks = sorted(book.asks.items())[:25]
    parts: list[str] = []
    for i in range(max(len(bids), len(asks))):
        for side in (bids, asks):
            if i < len(side):
                parts.append(f"{side[i][0]}:{side[i][1]}")
    value = zlib.crc32(":".join(parts).encode())
    return value - 2**32 if value >= 2**31 else value


class Okx:
    """The venue's true book and the ``books`` pushes it sends about it."""

    def __init__(self, *, seq_ids: bool = True, checksums: bool = False) -> None:
        self.book = RefBook()
        self.seq_ids = seq_ids
        self.checksums = checksums
        self.seq = 1000

    def snapshot(self, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> bytes:
        self.book.reset()
        return self._push("snapshot", bids, asks, prev=-1, seq=self._next())

    def update(
        self,
        bids: list[tuple[str, str]],
        asks: list[tuple[str, str]],
        *,
        prev: int | None = None,
        seq: int | None = None,
        wrong_checksum: bool = False,
    ) -> bytes:
        last = self.seq
        seq = self._next() if seq is None else seq
        self.seq = seq
        return self._push("update", bids, asks, last if prev is None else prev, seq, wrong_checksum)

    def keep_alive(self) -> bytes:
        return self._push("update", [], [], self.seq, self.seq)

    def _next(self) -> int:
        self.seq += 7  # OKX's ids grow but are not contiguous
        return self.seq

    def _push(
        self,
        action: str,
        bids: list[tuple[str, str]],
        asks: list[tuple[str, str]],
        prev: int,
        seq: int,
        wrong_checksum: bool = False,
    ) -> bytes:
        for side, levels in (("bid", bids), ("ask", asks)):
            for price, size in levels:
                self.book.set(side, Decimal(price), Decimal(size))
        data: dict[str, Any] = {
            "asks": [[p, s, "0", "1"] for p, s in asks],
            "bids": [[p, s, "0", "1"] for p, s in bids],
            "ts": str(TS + seq),
            "checksum": okx_checksum(self.book) + (7 if wrong_checksum else 0)
            if self.checksums
            else 0,
        }
        if self.seq_ids:
            data |= {"prevSeqId": prev, "seqId": seq}
        return dumps({"arg": {"channel": "books", "instId": SYM}, "action": action, "data": [data]})


def ladder(best: str, step: str, n: int) -> list[tuple[str, str]]:
    return [(str(Decimal(best) + Decimal(step) * i), f"{i + 1}.{i:03d}") for i in range(n)]


def reference(frames: list[bytes]) -> RefBook:
    ref = RefBook()
    last: int | None = None
    synced = False
    for raw in frames:
        if not raw.startswith(b"{"):
            continue  # the text "pong"
        msg = json.loads(raw, parse_float=Decimal)
        if msg.get("arg", {}).get("channel") != "books" or "data" not in msg:
            continue
        for data in msg["data"]:
            if msg["action"] == "snapshot":
                ref.reset()
                synced = True
            elif not synced or ("prevSeqId" in data and data["prevSeqId"] != last):
                synced = False
                continue
            last = data.get("seqId")
            for side, key in (("bid", "bids"), ("ask", "asks")):
                for price, size, _, _ in data[key]:
                    ref.set(side, price, size)
            if data["checksum"] and okx_checksum(ref) != data["checksum"]:
                synced = False
    assert synced, "the scenario must end in sync"
    return ref


def expected_trades(frames: list[bytes]) -> list[tuple[str, str, float, float, str]]:
    return sorted(
        {
            (SYM, t["tradeId"], float(t["px"]), float(t["sz"]), t["side"])
            for raw in frames
            if raw.startswith(b"{")
            and (msg := json.loads(raw)).get("arg", {}).get("channel") == "trades"
            for t in msg.get("data", [])
        }
    )


def resubscribe_requests(server: ReplayServer) -> list[dict[str, Any]]:
    sent = [json.loads(m) for m in server.received if m.startswith(b"{")]
    return [{"op": m["op"], "args": m["args"]} for m in sent[1:]]


def test_book_trades_keep_alive_reset_and_a_crossed_auction_book(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    okx = Okx()
    frames = [
        *SUBSCRIBED,
        okx.snapshot(ladder("30000.0", "-0.1", 30), ladder("30000.1", "0.1", 30)),
        okx.update([("30000.0", "2.5")], [("30000.1", "0")]),
        trades(("buy", "30000.1", "0.812", 130639474, 3), ("sell", "30000.0", "0.5", 130639475, 1)),
        okx.keep_alive(),
        b"pong",
        okx.update([("30000.05", "0.00001")], []),
        okx.update([], [("30000.2", "1.10")], seq=okx.seq - 500),  # ids reset after maintenance
        okx.update([("30000.3", "4")], []),  # call auction: the book crosses
        okx.update([], [("30000.2", "0")]),  # still crossed: logged once
        NEGATIVE_SIZE,
        okx.update([("30000.3", "0")], []),  # the auction ends: uncrossed
        trades(("sell", "29999.9", "0.00005", 130639480, 2)),
    ]
    server = serve(servers, Script(frames))
    db = tmp_path / "okx.duckdb"
    record_venue(EXCHANGE, [SYM], server, db, "--depth", "400")

    assert json.loads(server.received[0])["args"] == [
        {"channel": "books", "instId": SYM},
        {"channel": "trades", "instId": SYM},
    ]
    assert quality_kinds(db, EXCHANGE) == ["resync", "crossed"]
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference([f for f in frames if f != NEGATIVE_SIZE]).top(400)
    assert (bids, asks) == okx.book.top(400)
    assert bids[:2] == [(30000.05, 0.00001), (30000.0, 2.5)] and asks[0] == (30000.3, 3.002)
    assert stored_trades(db, EXCHANGE) == expected_trades(frames)
    assert [t[4] for t in stored_trades(db, EXCHANGE)] == ["buy", "sell", "sell"]
    ((reason, raw),) = quarantined(db, EXCHANGE)
    assert "asks" in reason and '"-1"' in raw


def test_a_broken_seq_chain_is_a_gap_repaired_by_resubscribing(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    okx = Okx()
    frames = [
        *SUBSCRIBED,
        okx.snapshot(ladder("100.0", "-0.1", 5), ladder("100.1", "0.1", 5)),
        okx.update([("100.0", "1.5")], []),
        trades(("buy", "100.1", "0.5", 900001, 1)),
    ]
    okx.update([("99.9", "8")], [])  # lost on the way
    frames += [okx.update([], [("100.1", "0.5")]), okx.update([("99.8", "9")], [])]
    fresh = [
        *RESUBSCRIBED,
        okx.snapshot(ladder("100.0", "-0.1", 5), ladder("100.2", "0.1", 5)),
        okx.update([("99.6", "0")], [("100.3", "6")]),
        trades(("sell", "100.0", "0.25", 900002, 1)),
    ]
    server = serve(servers, Script(frames, replies={UNSUBSCRIBE: fresh}))
    db = tmp_path / "okx.duckdb"
    record_venue(EXCHANGE, [SYM], server, db)

    assert resubscribe_requests(server)[:2] == [
        {"op": "unsubscribe", "args": [{"channel": "books", "instId": SYM}]},
        {"op": "subscribe", "args": [{"channel": "books", "instId": SYM}]},
    ]
    assert quality_kinds(db, EXCHANGE) == ["resync", "gap", "resync"]
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(frames + fresh).top(20)
    assert (bids, asks) == okx.book.top(20)
    assert stored_trades(db, EXCHANGE) == expected_trades(frames + fresh)


def test_older_data_with_checksums_resyncs_on_a_mismatch(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    okx = Okx(seq_ids=False, checksums=True)
    frames = [
        *SUBSCRIBED,
        okx.snapshot(ladder("3366.1", "-0.1", 30), ladder("3366.8", "0.10", 30)),
        okx.update([("3366.0", "6.50")], [("3366.80", "0")]),
        okx.update([], [("3366.90", "12")]),
        okx.update([("3365.5", "0")], [], wrong_checksum=True),
    ]
    fresh = [
        *RESUBSCRIBED,
        okx.snapshot(ladder("3366.0", "-0.1", 30), ladder("3366.5", "0.1", 30)),
        okx.update([("3366.0", "0.001")], [("3366.5", "0")]),
    ]
    server = serve(servers, Script(frames, replies={UNSUBSCRIBE: fresh}))
    db = tmp_path / "okx.duckdb"
    record_venue(EXCHANGE, [SYM], server, db, "--depth", "400")

    assert resubscribe_requests(server)[:1] == [
        {"op": "unsubscribe", "args": [{"channel": "books", "instId": SYM}]}
    ]
    assert quality_kinds(db, EXCHANGE) == ["resync", "checksum", "resync"]
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(frames + fresh).top(400)
    assert (bids, asks) == okx.book.top(400)
    assert quarantined(db, EXCHANGE) == []


def test_a_disconnect_and_a_maintenance_notice_each_rebuild_the_book(
    servers: list[ReplayServer], tmp_path: Path
) -> None:
    okx = Okx()
    first = [
        *SUBSCRIBED,
        okx.snapshot(ladder("50.00", "-0.01", 10), ladder("50.01", "0.01", 10)),
        okx.update([("50.00", "3")], []),
        trades(("buy", "50.01", "1", 700001, 1)),
    ]
    second = [
        *SUBSCRIBED,
        okx.snapshot(ladder("50.02", "-0.01", 10), ladder("50.03", "0.01", 10)),
        okx.update([], [("50.03", "0.125")]),
        trades(("sell", "50.02", "2", 700005, 4)),
        b'{"event":"notice","code":"64008","msg":"The connection will soon be closed for a '
        b'service upgrade. Please reconnect.","connId":"a4d3ae55"}',
    ]
    third = [
        *SUBSCRIBED,
        okx.snapshot(ladder("50.01", "-0.01", 10), ladder("50.02", "0.01", 10)),
        okx.update([("50.01", "0")], [("50.02", "7.5")]),
        trades(("buy", "50.02", "0.5", 700006, 1)),
    ]
    server = serve(servers, Script(first, close_after=True), Script(second), Script(third))
    db = tmp_path / "okx.duckdb"
    record_venue(EXCHANGE, [SYM], server, db)

    assert server.connections >= 3
    seen = quality_kinds(db, EXCHANGE)
    assert seen.count("disconnect") >= 2 and seen.count("reconnect") >= 2
    assert "gap" not in seen and "checksum" not in seen
    valid, bids, asks = final_book(db, EXCHANGE, SYM)
    assert valid and (bids, asks) == reference(third).top(20)
    assert (bids, asks) == okx.book.top(20)
    # No REST backfill for OKX (aggregated stream trades): the stream's trades, once each.
    assert stored_trades(db, EXCHANGE) == expected_trades(first + second + third)
    assert quarantined(db, EXCHANGE) == []
