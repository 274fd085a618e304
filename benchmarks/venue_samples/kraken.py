"""Kraken v2 ``book`` traffic (depth 25) for the venue benchmark: instrument data, a snapshot,
then updates carrying the checksum Kraken would send.

The updates walk a BTC/USD book on the 0.1 tick (price precision 1, qty precision 8): each
changes 1-3 levels — resizes, new levels inside the 25 (the worst one then leaves silently,
as on Kraken) and deletes (Kraken then sends the level that moves up into the 25th place in
the same message). Prices and quantities are JSON numbers in their shortest spelling, as
Kraken sends them (``30000.0``, ``0.5``), and timestamps advance by a few ms per message, so
a new second begins every few hundred messages, as in live traffic. Each checksum is computed
here from a plain dict book with ``Decimal`` formatting, independently of the venue class.
"""

from __future__ import annotations

import json
import random
import zlib
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ._shared.book_walk import BookWalk

VENUE = "kraken"
SYMBOL = "BTC/USD"
_DEPTH = 25
_MID = 300_000  # ticks of 0.1: 30000.0
_T0 = 1_696_613_755  # 2023-10-06T17:35:55Z


def _price(ticks: int) -> float:
    return ticks / 10


def _qty(rng: random.Random) -> float:
    return rng.randint(1, 4_000_000_000) / 100_000_000


def _text(value: float, decimals: int) -> str:
    return f"{Decimal(repr(value)):.{decimals}f}".replace(".", "").lstrip("0")


def _check_text(ticks: int, qty: float) -> str:
    return _text(_price(ticks), 1) + _text(qty, 8)


def _checksum(walk: BookWalk[float]) -> int:
    bids, asks = walk.split(walk.levels(), _check_text)
    return zlib.crc32("".join(asks[:10] + bids[:10]).encode())


def _time(i: int) -> str:
    seconds, micros = divmod(440_295 + i * 3_712, 10**6)  # ~270 messages per second
    whole = datetime.fromtimestamp(_T0 + seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{micros:06d}Z"


def _level(ticks: int, qty: float) -> dict[str, float]:
    return {"price": _price(ticks), "qty": qty}


def _book_message(
    kind: str,
    levels: tuple[list[dict[str, float]], list[dict[str, float]]],
    checksum: int,
    i: int,
) -> bytes:
    bids, asks = levels
    data = {
        "symbol": SYMBOL,
        "bids": bids,
        "asks": asks,
        "checksum": checksum,
        "timestamp": _time(i),
    }
    return json.dumps(
        {"channel": "book", "type": kind, "data": [data]}, separators=(",", ":")
    ).encode()


def _instrument() -> bytes:
    pair = {
        "symbol": SYMBOL,
        "base": "BTC",
        "quote": "USD",
        "status": "online",
        "qty_precision": 8,
        "qty_increment": 1e-08,
        "price_precision": 1,
        "cost_precision": 5,
        "marginable": True,
        "has_index": True,
        "cost_min": 0.5,
        "tick_size": 0.1,
        "price_increment": 0.1,
        "qty_min": 0.0001,
    }
    body = {"channel": "instrument", "type": "snapshot", "data": {"assets": [], "pairs": [pair]}}
    return json.dumps(body, separators=(",", ":")).encode()


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(7)
    # new levels land anywhere inside the 25; the worst one then leaves without a message
    walk = BookWalk(rng, _qty, 0.0, mid=_MID, levels=_DEPTH, floor=0, reach=None, depth=_DEPTH)
    setup = [
        _instrument(),
        _book_message("snapshot", walk.split(walk.levels(), _level), _checksum(walk), 0),
    ]
    deltas: list[bytes] = []
    for i in range(1, n + 1):
        changes = walk.step()
        sent = {(side, ticks) for side, ticks, _ in changes}
        for side, levels, sign in (("b", walk.bids, -1), ("a", walk.asks, 1)):
            while len(levels) < _DEPTH:  # Kraken sends the level moving up into the 25th place
                ticks = (min(levels) if sign < 0 else max(levels)) + sign * rng.randint(1, 3)
                while (side, ticks) in sent:  # not a price this message has just deleted
                    ticks += sign
                levels[ticks] = _qty(rng)
                changes.append((side, ticks, levels[ticks]))
        deltas.append(_book_message("update", walk.split(changes, _level), _checksum(walk), i))
    return setup, deltas


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    data = message["data"][0]
    return (
        [[str(level["price"]), str(level["qty"])] for level in data["bids"]],
        [[str(level["price"]), str(level["qty"])] for level in data["asks"]],
    )
