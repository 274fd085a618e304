"""Kraken Spot WebSocket v2: the ``book`` channel at depth 25, ``trade`` and ``instrument``.

Sample messages (Kraken's documented formats; prices and quantities are JSON numbers)::

    {"channel":"book","type":"update","data":[{"symbol":"MATIC/USD",
     "bids":[{"price":0.5657,"qty":1098.3947558}],"asks":[],"checksum":2114181697,
     "timestamp":"2023-10-06T17:35:55.440295Z"}]}
    {"channel":"trade","type":"update","data":[{"symbol":"MATIC/USD","side":"sell",
     "price":0.5117,"qty":40.0,"ord_type":"market","trade_id":4665906,
     "timestamp":"2023-09-25T07:49:37.708706Z"}]}
    {"channel":"instrument","type":"snapshot","data":{"assets":[...],"pairs":[
     {"symbol":"MATIC/GBP","base":"MATIC","quote":"GBP","status":"online","qty_precision":8,
      "price_precision":4,"price_increment":0.0001,...}]}}

Sync: book messages carry no sequence number, so the CRC32 checksum of the top 10 levels,
sent with the snapshot and every update, is the gap detector. The feed applies updates in
arrival order, truncates to :data:`DEPTH` after each message (Kraken sends no delete for a
level pushed out of the subscribed depth) and compares :meth:`KrakenProtocol.checksum` with
the venue's; a mismatch resubscribes the symbol's book for a fresh snapshot. An update for a
subscribed symbol before its snapshot on this connection (e.g. in flight after a
resubscribe) has nothing to apply to and is refused as a ``ProtocolError``.

The checksum needs the pair's precisions, which only the ``instrument`` channel says; it is
subscribed first. Until a symbol's precisions are known its book events go out with
``checksum=None`` (not verified, counted in :attr:`KrakenProtocol.unverified`). Nothing
escapes for long: a checksum covers the whole top 10 as it stands, not the change, so the
first verified message checks everything applied before it. Numbers are decoded as floats
and rendered at the pair's precision for the checksum, which reproduces Kraken's digits
exactly for every number of up to 15 significant digits (a quantity below 10^7 at 8 places).

Trades: ``side`` is the taker's. ``trade_id`` is an integer but Kraken does not promise
consecutive ids and its REST ``Trades`` pages by a nanosecond cursor, not by id, so there is
no id-paged backfill; instead the trade subscription asks for a snapshot, and every
(re)connection replays the last 50 trades, which the feed deduplicates by id.
"""

from __future__ import annotations

import itertools
import zlib
from typing import Annotated, ClassVar, Literal, cast

import msgspec

from workbench.core.book import OrderBook
from workbench.errors import ProtocolError
from workbench.events import BookDelta, BookSnapshot, Heartbeat, Level, MarketEvent, Trade
from workbench.venues.base import VenueProtocol
from workbench.venues.checksums import fixed_digits
from workbench.venues.numbers import iso_us

DEPTH = 25
"""Subscribed book depth; Kraken offers 10, 25, 100, 500 or 1000."""
CHECKSUM_LEVELS = 10
ALIASES = {"XBT": "BTC", "XDG": "DOGE"}
"""Kraken's legacy (v1 / REST) asset codes → the v2 names the WebSocket uses."""
_TEXT_CACHE_LIMIT = 4096

Price = Annotated[float, msgspec.Meta(gt=0.0)]
"""msgspec checks the ranges in C; JSON cannot spell NaN and an overflow to infinity is an
error, so these bounds are the whole validation."""
Qty = Annotated[float, msgspec.Meta(ge=0.0)]
Precision = Annotated[int, msgspec.Meta(ge=0, le=18)]
Checksum = Annotated[int, msgspec.Meta(ge=0, le=0xFFFFFFFF)]


class _Level(msgspec.Struct):
    price: Price
    qty: Qty


class _BookData(msgspec.Struct):
    symbol: str
    bids: list[_Level]
    asks: list[_Level]
    checksum: Checksum
    timestamp: str | None = None


class _Book(msgspec.Struct, tag="book", tag_field="channel"):
    type: Literal["snapshot", "update"]
    data: list[_BookData]


class _TradeData(msgspec.Struct):
    symbol: str
    side: Literal["buy", "sell"]
    price: Price
    qty: Annotated[float, msgspec.Meta(gt=0.0)]
    trade_id: int
    timestamp: str
    ord_type: str | None = None


class _Trades(msgspec.Struct, tag="trade", tag_field="channel"):
    type: Literal["snapshot", "update"]
    data: list[_TradeData]


class _Pair(msgspec.Struct):
    symbol: str
    price_precision: Precision
    qty_precision: Precision


class _InstrumentData(msgspec.Struct):
    pairs: list[_Pair] = []


class _Instrument(msgspec.Struct, tag="instrument", tag_field="channel"):
    type: Literal["snapshot", "update"]
    data: _InstrumentData


class _Heartbeat(msgspec.Struct, tag="heartbeat", tag_field="channel"):
    pass


class _Status(msgspec.Struct, tag="status", tag_field="channel"):
    """Engine state on connect and on change (``online``, ``maintenance``, …): informational;
    during maintenance the book simply stops and the silence watchdog takes over."""


class _Reply(msgspec.Struct):
    """Acknowledgement of a request we sent (``subscribe``, ``unsubscribe``, ``ping``)."""

    method: Literal["subscribe", "unsubscribe", "pong"]
    success: bool = True
    error: str | None = None


_Channel = _Book | _Trades | _Heartbeat | _Status | _Instrument


class _Checksummer:
    """The checksum of one symbol's book, computed after every message, so made cheap: each
    level's text is cached by (price, qty), and each side's last top 10 is kept with its text
    (asks with their CRC) so a side the message did not touch costs one list comparison."""

    __slots__ = (
        "_ask_crc",
        "_asks",
        "_bid_text",
        "_bids",
        "_price_precision",
        "_qty_precision",
        "_texts",
    )

    def __init__(self, price_precision: int, qty_precision: int) -> None:
        self._price_precision = price_precision
        self._qty_precision = qty_precision
        self._texts: dict[Level, bytes] = {}
        self._asks: list[Level] = []
        self._ask_crc = zlib.crc32(b"")
        self._bids: list[Level] = []
        self._bid_text = b""

    def __call__(self, bids: list[Level], asks: list[Level]) -> int:
        if asks != self._asks:
            self._asks = asks
            self._ask_crc = zlib.crc32(self._text(asks))
        if bids != self._bids:
            self._bids = bids
            self._bid_text = self._text(bids)
        return zlib.crc32(self._bid_text, self._ask_crc)

    def _text(self, levels: list[Level]) -> bytes:
        texts = self._texts
        known = list(map(texts.get, levels))
        if None in known:
            if len(texts) > _TEXT_CACHE_LIMIT:
                texts.clear()
            for i, level in enumerate(levels):
                if known[i] is None:
                    price, qty = level
                    text = fixed_digits(price, self._price_precision) + fixed_digits(
                        qty, self._qty_precision
                    )
                    known[i] = texts[level] = text.encode("ascii")
        return b"".join(cast(list[bytes], known))


class KrakenProtocol(VenueProtocol):
    name: ClassVar[str] = "kraken"
    default_ws_url: ClassVar[str] = "wss://ws.kraken.com/v2"
    heartbeat_interval: ClassVar[float] = 20.0
    """Kraken closes a connection after about a minute without traffic from the client."""
    stale_after: ClassVar[float] = 10.0
    """Kraken sends a ``heartbeat`` every second when nothing else flows."""
    sequenced: ClassVar[bool] = False
    book_depth: int | None = DEPTH

    _decoder = msgspec.json.Decoder(_Channel, strict=True)
    _reply_decoder = msgspec.json.Decoder(_Reply, strict=True)

    def __init__(self, symbols: list[str]) -> None:
        super().__init__(symbols)
        self._wire = {s: _wire_symbol(s) for s in self.symbols}
        self._user = {wire: s for s, wire in self._wire.items()}
        self._req_ids = itertools.count(1)
        self._precision: dict[str, tuple[int, int]] = {}
        self._booked: set[str] = set()
        self._summers: dict[str, _Checksummer] = {}
        self.unverified: dict[str, int] = {}
        """Book messages per symbol sent on before the symbol's precisions were known."""
        self._second = ("", 0)

    def pair(self, symbol: str) -> tuple[str, str]:
        base, quote = super().pair(symbol)
        return ALIASES.get(base, base), ALIASES.get(quote, quote)

    def subscribe_messages(self) -> list[str]:
        wire = list(self._wire.values())
        return [
            self._request("subscribe", {"channel": "instrument", "snapshot": True}),
            self._request(
                "subscribe", {"channel": "book", "symbol": wire, "depth": DEPTH, "snapshot": True}
            ),
            self._request("subscribe", {"channel": "trade", "symbol": wire, "snapshot": True}),
        ]

    def heartbeat_message(self) -> str:
        return f'{{"method":"ping","req_id":{next(self._req_ids)}}}'

    def resubscribe_messages(self, symbol: str) -> list[str]:
        """Unsubscribe and resubscribe ``symbol``'s book: Kraken answers with a snapshot."""
        wire = [self._wire.get(symbol, symbol)]
        self._booked.discard(symbol)
        return [
            self._request("unsubscribe", {"channel": "book", "symbol": wire, "depth": DEPTH}),
            self._request(
                "subscribe", {"channel": "book", "symbol": wire, "depth": DEPTH, "snapshot": True}
            ),
        ]

    def parse(self, payload: bytes, recv_ts: int) -> list[MarketEvent]:
        try:
            msg = self._decoder.decode(payload)
        except msgspec.DecodeError as exc:
            return self._reply(payload, exc)
        if type(msg) is _Book:
            return self._book(msg, recv_ts)
        if type(msg) is _Trades:
            return self._trades(msg, recv_ts)
        if type(msg) is _Heartbeat:
            return [Heartbeat(self.name, recv_ts, recv_ts)]
        if type(msg) is _Instrument:
            self._instruments(msg.data.pairs)
        return []

    def checksum(self, symbol: str, book: OrderBook) -> int:
        """CRC32 of the top 10 asks then bids, each price and qty at the pair's precision."""
        summer = self._summers.get(symbol)
        if summer is None:
            summer = self._summers[symbol] = _Checksummer(*self._precision[symbol])
        bids, asks = book.top(CHECKSUM_LEVELS)
        return summer(bids, asks)

    # -- message kinds -------------------------------------------------------------------
    def _book(self, msg: _Book, recv_ts: int) -> list[MarketEvent]:
        name = self.name
        snapshot = msg.type == "snapshot"
        events: list[MarketEvent] = []
        for data in msg.data:
            symbol = self._user.get(data.symbol, data.symbol)
            ts = self._time(data.timestamp) if data.timestamp is not None else recv_ts
            bids = [(level.price, level.qty) for level in data.bids] if data.bids else []
            asks = [(level.price, level.qty) for level in data.asks] if data.asks else []
            subscribed = symbol in self._wire
            if snapshot:
                self._booked.add(symbol)
            elif subscribed and symbol not in self._booked:
                raise ProtocolError(
                    f"book update for {symbol} before its snapshot on this connection"
                )
            checksum: int | None = data.checksum
            if symbol not in self._precision:
                checksum = None
                if subscribed:
                    self.unverified[symbol] = self.unverified.get(symbol, 0) + 1
            if snapshot:
                events.append(
                    BookSnapshot(name, symbol, ts, recv_ts, bids, asks, checksum=checksum)
                )
            else:
                events.append(BookDelta(name, symbol, ts, recv_ts, bids, asks, checksum=checksum))
        return events

    def _trades(self, msg: _Trades, recv_ts: int) -> list[MarketEvent]:
        name = self.name
        user = self._user
        return [
            Trade(
                name,
                user.get(t.symbol, t.symbol),
                self._time(t.timestamp),
                recv_ts,
                t.price,
                t.qty,
                t.side,
                str(t.trade_id),
            )
            for t in msg.data
        ]

    def _instruments(self, pairs: list[_Pair]) -> None:
        for pair in pairs:
            symbol = self._user.get(pair.symbol)
            if symbol is None:
                continue
            precision = (pair.price_precision, pair.qty_precision)
            if self._precision.get(symbol) != precision:
                self._precision[symbol] = precision
                self._summers.pop(symbol, None)

    def _time(self, text: str) -> int:
        """RFC 3339 µs time; the whole-second part is parsed once per second, not per message
        (a full ``iso_us`` costs more than the rest of a book update)."""
        if len(text) == 27 and text[19] == "." and text[26] == "Z":
            micros = text[20:26]
            if micros.isdecimal():
                head = text[:19]
                second_head, second = self._second
                if head != second_head:
                    second = iso_us(head + "Z")
                    self._second = (head, second)
                return second + int(micros)
        return iso_us(text)

    def _reply(self, payload: bytes, error: msgspec.DecodeError) -> list[MarketEvent]:
        """Requests' acknowledgements carry ``method`` instead of ``channel``."""
        try:
            reply = self._reply_decoder.decode(payload)
        except msgspec.DecodeError:
            raise ProtocolError(str(error)) from None
        if not reply.success:
            raise ProtocolError(f"kraken rejected {reply.method}: {reply.error}")
        return []

    def _request(self, method: str, params: dict[str, object]) -> str:
        body = {"method": method, "params": params, "req_id": next(self._req_ids)}
        return msgspec.json.encode(body).decode()


def _wire_symbol(symbol: str) -> str:
    """``xbt/usd`` → ``BTC/USD``: v2 spells pairs upper case with the new asset names."""
    return "/".join(ALIASES.get(part, part) for part in symbol.upper().split("/"))
