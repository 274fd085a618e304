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
    action: str, prev: int, seq: int, bids: list[list[str]], asks: list[list[str]]
) -> bytes:
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


def _level(ticks: int, size: str, rng: random.Random) -> list[str]:
    return [_price(ticks), size, "0", str(rng.randint(1, 30)) if size != "0" else "0"]


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(7)
    bids = {_MID - 1 - i: _size(rng) for i in range(_DEPTH)}
    asks = {_MID + 1 + i: _size(rng) for i in range(_DEPTH)}
    seq = 10_000
    setup = [
        _message(
            "snapshot",
            -1,
            seq,
            [_level(t, bids[t], rng) for t in sorted(bids, reverse=True)],
            [_level(t, asks[t], rng) for t in sorted(asks)],
        )
    ]
    deltas: list[bytes] = []
    for _ in range(n):
        changes: dict[str, list[list[str]]] = {"b": [], "a": []}
        for _ in range(rng.randint(1, 3)):
            side = rng.choice("ba")
            levels = bids if side == "b" else asks
            roll = rng.random()
            if roll < 0.25 and len(levels) > _DEPTH - 20:
                ticks = rng.choice(list(levels))
                del levels[ticks]
                size = "0"
            elif roll < 0.5:  # a new level near the top, never crossing the other side
                ticks = (
                    max(bids) - rng.randint(0, 30)
                    if side == "b"
                    else min(asks) + rng.randint(0, 30)
                )
                size = levels[ticks] = _size(rng)
            else:
                ticks = rng.choice(list(levels))
                size = levels[ticks] = _size(rng)
            changes[side].append(_level(ticks, size, rng))
            if len(levels) > _DEPTH:  # the worst level leaves the 400
                del levels[min(levels) if side == "b" else max(levels)]
        prev, seq = seq, seq + rng.randint(1, 9)
        deltas.append(_message("update", prev, seq, changes["b"], changes["a"]))
    return setup, deltas


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    data = message["data"][0]
    return [level[:2] for level in data["bids"]], [level[:2] for level in data["asks"]]
