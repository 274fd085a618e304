"""Coinbase Exchange ``level2_batch`` traffic for the venue benchmark: snapshot, l2updates.

The same 0.01-tick BTC-USD book of 200 levels per side as the ``coinbase`` sample. Each
``l2update`` changes 1-3 levels — resizes, new levels near the touch, deletes — as
``[side, price, size]`` with ``side`` ``buy``/``sell`` and the microsecond ``time`` the feed
sends; the stream has no sequence numbers, so every update is valid after the snapshot.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from ._shared.book_walk import fixed
from .coinbase import book_walk

VENUE = "coinbase-exchange"
SYMBOL = "BTC-USD"
_T0 = 1_775_521_738  # 2026-04-07T00:28:58Z


def _level(ticks: int, size: str) -> list[str]:
    return [fixed(ticks, 2), size]


def _time(i: int) -> str:
    seconds, micros = divmod(i * 3_712, 10**6)  # ~270 messages per second
    whole = datetime.fromtimestamp(_T0 + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{micros:06d}Z"


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    walk = book_walk(("buy", "sell"))
    bids, asks = walk.split(walk.levels(), _level)
    setup = [
        _encode(
            {
                "type": "subscriptions",
                "channels": [{"name": "level2_batch", "product_ids": [SYMBOL]}],
            }
        ),
        _encode({"type": "snapshot", "product_id": SYMBOL, "bids": bids, "asks": asks}),
    ]
    deltas: list[bytes] = []
    for i in range(1, n + 1):
        changes = [[side, *_level(ticks, size)] for side, ticks, size in walk.step()]
        deltas.append(
            _encode(
                {"type": "l2update", "product_id": SYMBOL, "time": _time(i), "changes": changes}
            )
        )
    return setup, deltas


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    bids = [[price, size] for side, price, size in message["changes"] if side == "buy"]
    asks = [[price, size] for side, price, size in message["changes"] if side == "sell"]
    return bids, asks
