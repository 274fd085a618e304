"""Which message goes wrong, on which connection, and how: pure decisions and garbage.

Why separate from the server: a fault is only useful to a test if it is exactly what the
ledger says it was. Keeping the decision (one ``random.Random`` seeded from the run's seed)
and the garbage generators free of sockets lets the tests check every variant directly, and
the server merely delivers the bytes these functions return.

Per message at most one fault is drawn, with the configured probabilities, and it applies to
ONE connection chosen among those subscribed to the symbol, so a redundant second connection
always has the true message. ``malformed`` and ``gap`` consume the message's seq on that
connection (the client there sees a jump next); ``duplicate`` sends it twice and ``crossed``
sends it once with an extra level that crosses the book.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Final, Literal, NamedTuple

import msgspec

from workbench.feeds.wsframe import OP_BINARY, OP_TEXT
from workbench.sim.market import Delta, Message, Trade, price_str, size_str

FaultKind = Literal["malformed", "gap", "duplicate", "crossed"]
_KINDS: Final[tuple[FaultKind, ...]] = ("malformed", "gap", "duplicate", "crossed")
Variant = Literal[
    "truncated", "wrong_type", "missing_field", "not_json", "bad_utf8", "binary", "huge"
]

COMMON_VARIANTS: Final[tuple[Variant, ...]] = (
    "truncated",
    "wrong_type",
    "missing_field",
    "not_json",
    "bad_utf8",
    "binary",
)
HUGE_ODDS: Final = 20
"""About one malformed message in ``HUGE_ODDS`` is the oversized variant."""
HUGE_SIZE: Final = 5 * 1024 * 1024
"""Bigger than the feed client's 4 MiB message limit, so it must be skipped, not parsed."""

_NOT_JSON: Final = (
    b"<html><body><h1>502 Bad Gateway</h1></body></html>",
    b"Internal Server Error",
    b"\x00\x01\x02",
)


class FaultRates(NamedTuple):
    """Per-message probabilities; their sum is at most 1 because a message gets one fault."""

    malformed: float = 0.0
    gap: float = 0.0
    duplicate: float = 0.0
    crossed: float = 0.0


class Fault(NamedTuple):
    kind: FaultKind
    conn: int
    variant: Variant | None = None


class CrossedLevel(NamedTuple):
    """The level a ``crossed`` fault adds: a bid above the best ask or an ask below the best bid."""

    side: Literal["bid", "ask"]
    price: str
    size: str


def next_in_turn(candidates: Sequence[int], last: int) -> int:
    """Round robin over connection numbers: the smallest one after ``last``, wrapping around.

    Connections come and go between turns, so the turn is kept as the last number served
    rather than as an index into a list that has since changed.
    """
    if not candidates:
        raise ValueError("no connection to choose from")
    later = [c for c in candidates if c > last]
    return min(later) if later else min(candidates)


class FaultInjector:
    """Draws per-message faults from one seeded stream and builds the faulty payloads."""

    def __init__(self, seed: int, rates: FaultRates) -> None:
        self.rates = rates
        self._rng = random.Random(f"faults/{seed}")

    @property
    def enabled(self) -> bool:
        return any(rate > 0 for rate in self.rates)

    def decide(self, message: Message, conns: Sequence[int]) -> Fault | None:
        """At most one fault for ``message``, applied to one of ``conns``.

        One uniform draw per message picks the band (malformed, gap, duplicate, crossed); a
        ``crossed`` draw on a trade is no fault, so ``--crossed`` is a rate per delta.
        """
        rng = self._rng
        u = rng.random()
        kind: FaultKind | None = None
        bound = 0.0
        for name, rate in zip(_KINDS, self.rates, strict=True):
            bound += rate
            if u < bound:
                kind = name
                break
        if kind is None or not conns or (kind == "crossed" and not isinstance(message, Delta)):
            return None
        conn = conns[rng.randrange(len(conns))]
        if kind != "malformed":
            return Fault(kind, conn)
        if rng.randrange(HUGE_ODDS) == 0:
            return Fault(kind, conn, "huge")
        return Fault(kind, conn, rng.choice(COMMON_VARIANTS))

    def garble(self, variant: Variant, message: Message) -> tuple[int, bytes]:
        """``(opcode, payload)`` of the garbage that replaces ``message`` on one connection."""
        rng = self._rng
        encoded = msgspec.json.encode(message)
        if variant == "truncated":
            return OP_TEXT, encoded[: rng.randrange(1, len(encoded))]
        if variant == "wrong_type":
            return OP_TEXT, msgspec.json.encode(_wrong_type(rng, message))
        if variant == "missing_field":
            fields = msgspec.to_builtins(message)
            del fields[rng.choice(list(fields))]
            return OP_TEXT, msgspec.json.encode(fields)
        if variant == "not_json":
            return OP_TEXT, rng.choice(_NOT_JSON)
        if variant == "bad_utf8":
            quoted = msgspec.json.encode(message.symbol)
            broken = quoted[:-1] + rng.choice((b"\xff", b"\xc0\xaf", b"\xed\xa0\x80")) + b'"'
            return OP_TEXT, encoded.replace(quoted, broken, 1)
        if variant == "binary":
            return OP_BINARY, rng.randbytes(rng.randint(16, 512))
        return OP_TEXT, _huge(message)

    def cross(
        self, delta: Delta, best_bid: int, best_ask: int, tick: int
    ) -> tuple[Delta, CrossedLevel]:
        """``delta`` plus one level 1-3 ticks through the other side of the post-delta book.

        Strictly through (not merely touching) so that any crossed-book check flags it. The
        new level is the best on its side, so it goes first and the delta stays sorted.
        """
        rng = self._rng
        ticks = rng.randint(1, 3) * tick
        size = size_str(rng.randint(1, 2_000))
        if rng.random() < 0.5:
            level = CrossedLevel("bid", price_str(best_ask + ticks), size)
            crossed = msgspec.structs.replace(delta, bids=[(level.price, size), *delta.bids])
        else:
            level = CrossedLevel("ask", price_str(best_bid - ticks), size)
            crossed = msgspec.structs.replace(delta, asks=[(level.price, size), *delta.asks])
        return crossed, level


def _wrong_type(rng: random.Random, message: Message) -> dict[str, object]:
    fields: dict[str, object] = msgspec.to_builtins(message)
    choices: list[tuple[str, object]] = [
        ("seq", str(message.seq)),
        ("ts", float(message.ts)),
        ("symbol", 42),
    ]
    if isinstance(message, Trade):
        choices += [
            ("price", {"value": message.price}),
            ("size", None),
            ("trade_id", str(message.trade_id)),
            ("side", message.side == "buy"),
        ]
    else:
        choices += [("bids", "none"), ("asks", {"levels": fields["asks"]})]
    key, value = rng.choice(choices)
    fields[key] = value
    return fields


def _huge(message: Message) -> bytes:
    """Valid JSON of exactly ``HUGE_SIZE`` bytes: only its size is wrong."""
    kind = b"trade" if isinstance(message, Trade) else b"delta"
    symbol = msgspec.json.encode(message.symbol)
    head = b'{"type":"%s","symbol":%s,"seq":%d,"pad":"' % (kind, symbol, message.seq)
    tail = b'"}'
    return head + b"x" * (HUGE_SIZE - len(head) - len(tail)) + tail
