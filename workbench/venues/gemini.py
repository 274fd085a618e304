"""Gemini market data v2: the ``l2`` subscription (book changes and trades in one stream).

Sync rule: the first ``l2_updates`` for a symbol after subscribing is its full book (with its
last 50 trades); later ones are deltas of absolute quantities, applied in arrival order. Only a
full book carries the ``trades`` list, so one that does is always taken as a book. Gemini
numbers nothing and sends no checksum, so no in-band signal reveals a lost message: the only
protections are the crossed-book check (a crossed book → resync) and a fresh book on every
reconnect. A resync unsubscribes and resubscribes the symbol; deltas of the old subscription
still in flight are dropped until the new full book arrives.

Trades carry the TAKER side. Ids (``tid``, or ``event_id`` where a message has no ``tid``) are
not consecutive, and Gemini's REST trade history pages by time, not id, so there is no id-paged
backfill; the last 50 trades in every fresh full book recover recent trades missed during a
short disconnect (the feed stores each trade id once).
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from workbench.errors import ProtocolError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    Heartbeat,
    Level,
    MarketEvent,
    SubscriptionRejected,
    Trade,
)
from workbench.venues.base import VenueProtocol
from workbench.venues.numbers import Price, Size
from workbench.venues.numbers import positive as _decimal

QUOTES = (
    "RLUSD", "GUSD", "USDT", "USDC", "USD", "BTC", "ETH", "EUR", "GBP", "SGD",
    "DAI", "AUD", "CAD", "CHF", "HKD", "JPY", "KRW", "SOL",
)  # fmt: skip
"""Quote currencies of Gemini symbols, matched as the longest suffix first."""
_QUOTES_LONGEST_FIRST = tuple(sorted(QUOTES, key=len, reverse=True))
CHANNEL = "l2"

Decimal = Annotated[str, msgspec.Meta(max_length=40)]
_decode_changes = msgspec.json.Decoder(
    list[tuple[Literal["buy", "sell"], Price, Size]], strict=False
).decode
"""Wire ``[["buy","9122.04","0.00121425"], ...]`` → sides and float levels in one C pass:
``strict=False`` lets exactly these decimal strings become correctly rounded floats (the value
``float()`` gives); the constraints reject NaN, infinities, non-positive prices and negative
sizes, as ``numbers.levels`` does at three times the cost."""


class _Trade(msgspec.Struct, tag="trade", tag_field="type"):
    symbol: str
    timestamp: int
    price: Decimal
    quantity: Decimal
    side: Literal["buy", "sell"]
    tid: int | None = None
    event_id: int | None = None


class _L2(msgspec.Struct, tag="l2_updates", tag_field="type"):
    symbol: str
    changes: msgspec.Raw
    trades: list[_Trade] | None = None


class _Heartbeat(msgspec.Struct, tag="heartbeat", tag_field="type"):
    timestamp: int


class _AuctionOpen(msgspec.Struct, tag="auction_open", tag_field="type"):
    pass


class _AuctionIndicative(msgspec.Struct, tag="auction_indicative", tag_field="type"):
    pass


class _AuctionResult(msgspec.Struct, tag="auction_result", tag_field="type"):
    pass


class _ErrorReply(msgspec.Struct):
    """Gemini's answer to a request it refuses (no ``type`` field)."""

    result: Literal["error"]
    reason: str = ""
    message: str = ""


_Message = _L2 | _Trade | _Heartbeat | _AuctionOpen | _AuctionIndicative | _AuctionResult
_error_decoder = msgspec.json.Decoder(_ErrorReply)


class GeminiProtocol(VenueProtocol):
    """Book and trades of Gemini symbols as Gemini spells them (``BTCUSD``).

    Samples (Gemini market data v2 docs)::

        {"type":"l2_updates","symbol":"BTCUSD",
         "changes":[["buy","9122.04","0.00121425"],["sell","9122.07","0.98942292"]],
         "trades":[{"type":"trade","symbol":"BTCUSD","eventid":169841458,
                    "timestamp":1560976400428,"price":"9122.04","quantity":"0.0073173",
                    "side":"sell","tid":2840140800042677}],
         "auction_events":[]}
        {"type":"l2_updates","symbol":"BTCUSD","changes":[["sell","9160.20","0.1921229751"]]}
        {"type":"trade","symbol":"BTCUSD","event_id":3575573053,"timestamp":151231241,
         "price":"9004.21000000","quantity":"0.09110000","side":"buy","tid":2840140800042677}
        {"type":"heartbeat","timestamp":1560976400428}
        {"result":"error","reason":"InvalidJson","message":"..."}

    Gemini acknowledges no subscription (``acknowledged_by_data``): a symbol's first full
    book is the proof that it works. A refused request gets the ``result: error`` reply, which
    names no symbol.
    """

    name: ClassVar[str] = "gemini"
    default_ws_url: ClassVar[str] = "wss://api.gemini.com/v2/marketdata"
    heartbeat_interval: ClassVar[float] = 0.0
    stale_after: ClassVar[float] = 15.0
    """Gemini sends a heartbeat about every 5 s; three missed ones mean the link is dead."""
    numeric_trade_ids: ClassVar[bool] = False
    sequenced: ClassVar[bool] = False
    snapshot_in_band: ClassVar[bool] = True
    acknowledged_by_data: ClassVar[bool] = True

    _decoder = msgspec.json.Decoder(_Message, strict=True)

    def __init__(self, symbols: list[str]) -> None:
        super().__init__(symbols)
        self._wire = {s: s.upper() for s in self.symbols}
        self._user = {w: s for s, w in self._wire.items()}
        self._awaiting = set(self._user)
        """Wire symbols whose next ``l2_updates`` must be their full book."""
        self._resubscribed: set[str] = set()
        """Awaiting symbols whose old subscription may still have deltas in flight."""

    def pair(self, symbol: str) -> tuple[str, str]:
        wire = symbol.upper()
        for quote in _QUOTES_LONGEST_FIRST:
            if wire.endswith(quote) and len(wire) > len(quote):
                return wire[: -len(quote)], quote
        raise ValueError(f"cannot split Gemini symbol {symbol!r}: quote not in {QUOTES}")

    def subscribe_messages(self) -> list[str]:
        self._awaiting = set(self._user)
        self._resubscribed.clear()
        return [_subscription("subscribe", list(self._wire.values()))]

    def resubscribe_messages(self, symbol: str) -> list[str]:
        wire = self._wire.get(symbol, symbol.upper())
        self._awaiting.add(wire)
        self._resubscribed.add(wire)
        return [_subscription("unsubscribe", [wire]), _subscription("subscribe", [wire])]

    def parse(self, payload: bytes, recv_ts: int) -> list[MarketEvent]:
        try:
            msg = self._decoder.decode(payload)
        except msgspec.DecodeError as exc:
            try:
                error = _error_decoder.decode(payload)
            except msgspec.DecodeError:
                raise ProtocolError(str(exc)) from None
            reason = f"venue error reply {error.reason}: {error.message}"
            return [SubscriptionRejected(self.name, [], recv_ts, reason)]
        if type(msg) is _L2:
            return self._l2(msg, recv_ts)
        if type(msg) is _Trade:
            return [self._trade(msg, recv_ts)]
        if type(msg) is _Heartbeat:
            return [Heartbeat(self.name, msg.timestamp * 1000, recv_ts)]
        return []  # auction announcements: no book or trade content

    def _l2(self, msg: _L2, recv_ts: int) -> list[MarketEvent]:
        try:
            changes = _decode_changes(msg.changes)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"l2 changes: {exc}") from None
        bids: list[Level] = []
        asks: list[Level] = []
        for side, price, quantity in changes:
            (bids if side == "buy" else asks).append((price, quantity))
        wire = msg.symbol
        symbol = self._user.get(wire, wire)
        if msg.trades is None:
            if wire not in self._awaiting:
                # No exchange time on l2_updates: receipt time is the best we know.
                return [BookDelta(self.name, symbol, recv_ts, recv_ts, bids, asks)]
            if wire in self._resubscribed:
                return []  # a delta of the old subscription: the fresh book supersedes it
        self._awaiting.discard(wire)
        self._resubscribed.discard(wire)
        bids.sort(reverse=True)  # best first, whatever order Gemini listed them in
        asks.sort()
        events: list[MarketEvent] = [BookSnapshot(self.name, symbol, recv_ts, recv_ts, bids, asks)]
        events += [self._trade(t, recv_ts) for t in msg.trades or ()]
        return events

    def _trade(self, t: _Trade, recv_ts: int) -> Trade:
        trade_id = t.tid if t.tid is not None else t.event_id
        if trade_id is None:
            raise ProtocolError("trade without tid or event_id")
        wire = t.symbol
        return Trade(
            self.name,
            self._user.get(wire, wire),
            t.timestamp * 1000,
            recv_ts,
            _decimal(t.price, "price"),
            _decimal(t.quantity, "quantity"),
            t.side,
            str(trade_id),
        )


def _subscription(kind: str, symbols: list[str]) -> str:
    return msgspec.json.encode(
        {"type": kind, "subscriptions": [{"name": CHANNEL, "symbols": symbols}]}
    ).decode()
