"""Coinbase Advanced Trade ``level2`` traffic for the venue benchmark: ack, snapshot, updates.

A 0.01-tick BTC-USD book of 200 levels per side. Each update message changes 1-3 levels —
resizes, new levels near the touch, deletes — with ``side`` spelled ``bid``/``offer``, a
nanosecond ``event_time`` and ``sequence_num`` advancing by one per message on the
connection, exactly as the live stream does, so every update is valid after the setup.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime
from typing import Any

VENUE = "coinbase"
SYMBOL = "BTC-USD"
_MID = 6_892_300  # ticks of 0.01: 68923.00
_LEVELS = 200
_T0 = 1_775_521_738  # 2026-04-07T00:28:58Z


def _price(ticks: int) -> str:
    return f"{ticks // 100}.{ticks % 100:02d}"


def _size(rng: random.Random) -> str:
    units = rng.randint(1, 400_000_000)
    return f"{units // 10**8}.{units % 10**8:08d}"


def _time(i: int) -> str:
    seconds, nanos = divmod(i * 3_712_345, 10**9)  # ~270 messages per second
    whole = datetime.fromtimestamp(_T0 + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{nanos:09d}Z"


def _message(seq: int, kind: str, updates: list[dict[str, str]], i: int) -> bytes:
    return json.dumps(
        {
            "channel": "l2_data",
            "client_id": "",
            "timestamp": _time(i + 1),
            "sequence_num": seq,
            "events": [{"type": kind, "product_id": SYMBOL, "updates": updates}],
        },
        separators=(",", ":"),
    ).encode()


def _update(side: str, ticks: int, size: str, when: str) -> dict[str, str]:
    return {"side": side, "event_time": when, "price_level": _price(ticks), "new_quantity": size}


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(7)
    bids = {_MID - 1 - 2 * i: _size(rng) for i in range(_LEVELS)}
    asks = {_MID + 1 + 2 * i: _size(rng) for i in range(_LEVELS)}
    epoch = "1970-01-01T00:00:00Z"
    ack = {
        "channel": "subscriptions",
        "client_id": "",
        "timestamp": _time(0),
        "sequence_num": 0,
        "events": [{"subscriptions": {"level2": [SYMBOL]}}],
    }
    setup = [
        json.dumps(ack, separators=(",", ":")).encode(),
        _message(
            1,
            "snapshot",
            [_update("bid", t, bids[t], epoch) for t in sorted(bids, reverse=True)]
            + [_update("offer", t, asks[t], epoch) for t in sorted(asks)],
            0,
        ),
    ]
    deltas: list[bytes] = []
    for seq in range(2, n + 2):
        when = _time(seq)
        updates: list[dict[str, str]] = []
        touched: set[tuple[str, int]] = set()
        for _ in range(rng.randint(1, 3)):
            side = rng.choice(("bid", "offer"))
            levels = bids if side == "bid" else asks
            roll = rng.random()
            if roll < 0.3 and len(levels) > _LEVELS - 20:
                ticks = rng.choice(list(levels))
                size = "0"
            elif roll < 0.55:  # a new level near the touch, never crossing the other side
                offset = rng.randint(0, 40)
                ticks = max(bids) - offset if side == "bid" else min(asks) + offset
                size = _size(rng)
            else:
                ticks = rng.choice(list(levels))
                size = _size(rng)
            if (side, ticks) in touched:
                continue
            touched.add((side, ticks))
            updates.append(_update(side, ticks, size, when))
            if size == "0":
                levels.pop(ticks, None)
            else:
                levels[ticks] = size
        deltas.append(_message(seq, "update", updates, seq))
    return setup, deltas


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    bids: list[list[str]] = []
    asks: list[list[str]] = []
    for event in message["events"]:
        for u in event["updates"]:
            (bids if u["side"] == "bid" else asks).append([u["price_level"], u["new_quantity"]])
    return bids, asks
