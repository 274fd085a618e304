"""OKX ``books`` traffic for the venue benchmark: one 400-level snapshot, then updates.

The updates walk a BTC-USDT book on the 0.1 tick: each changes 1-3 levels — resizes, new
levels and deletes (``"0"``) — chained by ``prevSeqId`` → ``seqId`` with the gaps between ids
that OKX leaves, and ``checksum`` 0 as live OKX sends it. Levels are OKX's four strings
``[px, sz, "0", numOrders]``.
"""

from __future__ import annotations

import json
import random
from typing import Any

from ._shared.book_walk import BookWalk

VENUE = "okx"
SYMBOL = "BTC-USDT"
_DEPTH = 400
_MID = 300_000  # ticks of 0.1: 30000.0
_TS = 1763712000000


def _price(ticks: int) -> str:
    return f"{ticks // 10}.{ticks % 10}" if ticks % 10 else str(ticks // 10)


def _size(rng: random.Random) -> str:
    return f"{rng.randint(1, 400_000_000) / 100_000_000:.8f}".rstrip("0").rstrip(".")


def _message(
    action: str, prev: int, seq: int, levels: tuple[list[list[str]], list[list[str]]]
) -> bytes:
    bids, asks = levels
    data = {
        "asks": asks,
        "bids": bids,
        "ts": str(_TS + seq),
        "checksum": 0,
        "prevSeqId": prev,
        "seqId": seq,
    }
    body = {"arg": {"channel": "books", "instId": SYMBOL}, "action": action, "data": [data]}
    return json.dumps(body, separators=(",", ":")).encode()


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(7)
    # a dense book (every tick): the worst level leaves the 400 without a message
    walk = BookWalk(
        rng,
        _size,
        "0",
        mid=_MID,
        levels=_DEPTH,
        floor=_DEPTH - 20,
        spacing=1,
        reach=30,
        depth=_DEPTH,
    )

    def level(ticks: int, size: str) -> list[str]:
        return [_price(ticks), size, "0", str(rng.randint(1, 30)) if size != "0" else "0"]

    seq = 10_000
    setup = [_message("snapshot", -1, seq, walk.split(walk.levels(), level))]
    deltas: list[bytes] = []
    for _ in range(n):
        levels = walk.split(walk.step(), level)
        prev, seq = seq, seq + rng.randint(1, 9)
        deltas.append(_message("update", prev, seq, levels))
    return setup, deltas


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    data = message["data"][0]
    return [level[:2] for level in data["bids"]], [level[:2] for level in data["asks"]]
