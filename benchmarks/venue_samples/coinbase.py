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

from ._shared.book_walk import BookWalk, fixed

VENUE = "coinbase"
SYMBOL = "BTC-USD"
_MID = 6_892_300  # ticks of 0.01: 68923.00
_LEVELS = 200
_T0 = 1_775_521_738  # 2026-04-07T00:28:58Z


def _size(rng: random.Random) -> str:
    return fixed(rng.randint(1, 400_000_000), 8)


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
    return {"side": side, "event_time": when, "price_level": fixed(ticks, 2), "new_quantity": size}


def book_walk(sides: tuple[str, str]) -> BookWalk[str]:
    """The BTC-USD book walk of both Coinbase samples: this one and ``coinbase_exchange``."""
    return BookWalk(
        random.Random(7),
        _size,
        "0",
        mid=_MID,
        levels=_LEVELS,
        floor=_LEVELS - 20,
        reach=40,
        deletes=0.3,
        sides=sides,
    )


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    walk = book_walk(("bid", "offer"))
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
        _message(1, "snapshot", [_update(*level, epoch) for level in walk.levels()], 0),
    ]
    deltas: list[bytes] = []
    for seq in range(2, n + 2):
        when = _time(seq)
        updates = [_update(*change, when) for change in walk.step()]
        deltas.append(_message(seq, "update", updates, seq))
    return setup, deltas


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    bids: list[list[str]] = []
    asks: list[list[str]] = []
    for event in message["events"]:
        for u in event["updates"]:
            (bids if u["side"] == "bid" else asks).append([u["price_level"], u["new_quantity"]])
    return bids, asks
