"""HK vendor tick traffic (the example mapping ``data/vendors/hk_ticks.json``) for the venue
benchmark: one opening tick that sets the volume baseline, then tick messages.

0700.HK trades in the HKEX 200-500 band, tick size 0.20. Each tick moves the best bid/ask by
at most a tick and re-sizes them; about half carry a trade (the cumulative day volume rises
by whole board lots of 100 shares, at the bid or the ask), the rest are quote-only updates
with the volume unchanged. Times advance in milliseconds of Hong Kong local time, as the
vendor writes them. The "levels" of a tick are its quote: one bid and one ask level.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from workbench.venues.base import VenueProtocol
from workbench.venues.vendor import load_mapping, vendor_protocol

VENUE = "vendor"
SYMBOL = "0700.HK"
MAPPING = Path(__file__).resolve().parents[2] / "data" / "vendors" / "hk_ticks.json"
_OPEN = datetime(2026, 11, 21, 9, 30)


def protocol() -> type[VenueProtocol]:
    """The registry's ``vendor`` entry needs its mapping: the bench builds the class here."""
    return vendor_protocol(load_mapping(MAPPING))


def _price(fifths: int) -> str:
    """Price in 0.20 ticks → the vendor's three-decimal text (385.200)."""
    return f"{fifths // 5}.{fifths % 5 * 200:03d}"


def _tick(ms: int, last: int, volume: int, bid: int, bsz: int, ask: int, asz: int) -> bytes:
    time = (_OPEN + timedelta(milliseconds=ms)).isoformat(sep=" ", timespec="milliseconds")
    tick = {
        "symbol": SYMBOL,
        "time": time,
        "last_price": _price(last),
        "volume": str(volume),
        "bid_price": _price(bid),
        "bid_size": str(bsz),
        "ask_price": _price(ask),
        "ask_size": str(asz),
    }
    return json.dumps({"type": "tick", "data": [tick]}, separators=(",", ":")).encode()


def messages(n: int) -> tuple[list[bytes], list[bytes]]:
    rng = random.Random(7)
    bid, ask, last, volume, ms = 1925, 1926, 1926, 1_205_300, 123  # 385.000 / 385.200
    setup = [_tick(ms, last, volume, bid, 32_000, ask, 18_500)]
    ticks: list[bytes] = []
    for _ in range(n):
        ms += rng.randint(1, 40)
        move = rng.choice((-1, 0, 0, 1))
        bid, ask = bid + move, ask + move
        if rng.random() < 0.5:
            last = rng.choice((bid, ask))
            volume += 100 * rng.randint(1, 50)
        ticks.append(
            _tick(ms, last, volume, bid, 100 * rng.randint(1, 500), ask, 100 * rng.randint(1, 500))
        )
    return setup, ticks


def naive_levels(message: dict[str, Any]) -> tuple[list[list[str]], list[list[str]]]:
    tick = message["data"][0]
    return [[tick["bid_price"], tick["bid_size"]]], [[tick["ask_price"], tick["ask_size"]]]
