"""Coinbase Advanced Trade market data (``wss://advanced-trade-ws.coinbase.com``).

One subscribe message per channel (``level2``, ``market_trades``, ``heartbeats``). Every
message arrives in an envelope ``{channel, client_id, timestamp, sequence_num, events}``;
``level2`` data arrives as ``channel: "l2_data"``.

Sync rule. ``sequence_num`` is ONE counter per connection across all channels, so it is kept
on the instance (the feed makes one per connection):

- ``sequence_num <= last``: a late or duplicate copy → ignored (no events).
- ``sequence_num > last + 1``: messages were lost on this connection, and with one counter
  for everything there is no telling which products they were about → :class:`SyncLost`
  for every symbol (``rule="sequence"``); the message itself is still parsed.
- A message that fails to parse does not advance the counter: it is lost data too, so the
  next good message reveals the gap and the books are resynced.

Books carry no per-product sequence (``sequenced = False``): snapshots are in-band and the
feed resyncs a book through :meth:`CoinbaseProtocol.resubscribe_messages`, an unsubscribe +
subscribe of ``level2`` and ``market_trades`` for that product on the same connection.
Coinbase answers a subscribe with a fresh snapshot on both channels; the connection-wide
``sequence_num`` simply continues (the acks take numbers too). Updates of a product between
the resubscribe and its new snapshot are still in flight from the old subscription: the new
snapshot supersedes them, so they are dropped, as are updates before a product's first
snapshot. The ``market_trades`` snapshot re-delivers the most recent trades, which recovers
trades lost in a gap; the feed drops the ones it already has by trade id.

Trades. ``side`` on ``market_trades`` is the MAKER's side, as on the Coinbase Exchange feed
that shares the matching engine: the Exchange documents ``side`` as the maker order side,
and the NautilusTrader Advanced Trade adapter inverts it for the aggressor ("Coinbase
reports the maker side on public market trades, so the aggressor is the opposite side").
The taker side is therefore the opposite (:data:`TAKER_SIDE`). Trade ids are decimal strings,
but nothing documents them as consecutive for every product type (futures included), and
Advanced Trade has no id-paged public trades endpoint, so they are treated as opaque
(``numeric_trade_ids = False``): no REST backfill, only the in-band snapshot above.

Numbers. Prices and sizes are JSON strings. The decoder runs with ``strict=False`` so that
msgspec turns them into floats in C (correctly rounded like ``float()``, JSON number grammar
only, range-checked by :data:`Price`/:data:`Size`: NaN, infinities, negative or zero prices
are rejected); parsing them in Python would cost a third of the ~3 µs budget per message.
The only other effect of lax decoding is that a quoted integer would be accepted as one.

Symbols: product ids are upper case (``BTC-USD``); events carry the symbol as the user wrote
it. Coinbase serves ``-USDC`` books under the ``-USD`` product on public channels (except
:data:`NATIVE_USDC_PRODUCTS`), so data for ``BTC-USD`` also feeds a ``BTC-USDC``
subscription (:data:`QUOTE_ALIASES`).
"""

from __future__ import annotations

from typing import ClassVar, Literal

import msgspec

from workbench.errors import ProtocolError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    Heartbeat,
    Level,
    MarketEvent,
    Side,
    Subscribed,
    SubscriptionRejected,
    SyncLost,
    Trade,
)
from workbench.venues.base import VenueProtocol
from workbench.venues.numbers import Price, Size, TradeSize, iso_us

VENUE = "coinbase"
BOOK_CHANNEL = "level2"
PRODUCT_CHANNELS = (BOOK_CHANNEL, "market_trades")
"""Subscribed per product, one message each; re-subscribed for a fresh book and recent trades."""
HEARTBEAT_CHANNEL = "heartbeats"
"""Needs no product; without it Coinbase closes quiet channels after 60-90 s."""
TAKER_SIDE: dict[str, Side] = {"BUY": "sell", "SELL": "buy"}
"""``market_trades`` side (the maker's) → the taker's side."""
QUOTE_ALIASES = {"USDC": "USD"}
"""Public channels serve ``X-USDC`` with the data of ``X-USD``."""
NATIVE_USDC_PRODUCTS = frozenset({"USDT-USDC", "EURC-USDC"})
"""USDC products that have a book of their own on every channel."""


class _Update(msgspec.Struct):
    side: Literal["bid", "offer"]
    event_time: str
    price_level: Price
    new_quantity: Size


class _BookEvent(msgspec.Struct):
    type: Literal["snapshot", "update"]
    product_id: str
    updates: list[_Update]


class _L2Data(msgspec.Struct, tag="l2_data", tag_field="channel"):
    timestamp: str
    sequence_num: int
    events: list[_BookEvent]


class _MarketTrade(msgspec.Struct):
    trade_id: str
    product_id: str
    price: Price
    size: TradeSize
    side: Literal["BUY", "SELL"]
    time: str


class _TradeEvent(msgspec.Struct):
    type: Literal["snapshot", "update"]
    trades: list[_MarketTrade]


class _MarketTrades(msgspec.Struct, tag="market_trades", tag_field="channel"):
    timestamp: str
    sequence_num: int
    events: list[_TradeEvent]


class _Beat(msgspec.Struct):
    heartbeat_counter: int | str
    current_time: str | None = None


class _Heartbeats(msgspec.Struct, tag="heartbeats", tag_field="channel"):
    timestamp: str
    sequence_num: int
    events: list[_Beat]


class _Subscribed(msgspec.Struct):
    subscriptions: dict[str, list[str]] = {}
    """Channel → the products subscribed on it, everything this connection holds so far."""


class _Subscriptions(msgspec.Struct, tag="subscriptions", tag_field="channel"):
    timestamp: str
    sequence_num: int
    events: list[_Subscribed] = []


class _Error(msgspec.Struct):
    type: Literal["error"]
    message: str = ""
    reason: str = ""


_Message = _L2Data | _MarketTrades | _Heartbeats | _Subscriptions
_decode = msgspec.json.Decoder(_Message, strict=False).decode
_error_decoder = msgspec.json.Decoder(_Error)
_seconds: dict[str, int] = {}


def rfc3339_us(text: str) -> int:
    """:func:`~workbench.venues.numbers.iso_us`, fast for Coinbase's ``…THH:MM:SS[.fff]Z``:
    the whole seconds are computed once per second of wall clock and cached, the fraction is
    truncated to µs. Anything else takes the general path, so results are identical."""
    head = text[:19]
    base = _seconds.get(head)
    if base is None:
        if text[19:20] not in (".", "Z"):
            return iso_us(text)
        base = iso_us(head + "Z")  # validates the head before it is cached
        if len(_seconds) >= 4096:
            _seconds.clear()
        _seconds[head] = base
    if len(text) == 30 and text[19] == "." and text[29] == "Z":  # nanoseconds: the usual
        fraction = text[20:29]
        if fraction.isdigit() and fraction.isascii():
            return base + int(fraction[:6])
    tail = text[19:]
    if tail == "Z":
        return base
    fraction = tail[1:-1]
    if tail[:1] == "." and tail[-1:] == "Z" and fraction.isdigit() and fraction.isascii():
        return base + int(fraction[:6].ljust(6, "0"))
    return iso_us(text)


def error_reply(
    venue: str, payload: bytes, exc: msgspec.DecodeError, recv_ts: int, products: dict[str, str]
) -> list[MarketEvent]:
    """A message that failed to decode: a Coinbase ``error`` reply (both Coinbase feeds send
    the same shape, in answer to a subscribe) is a refused subscription of the ``products``
    (wire id → symbol) its ``reason`` names, or of whatever is waiting if it names none;
    anything else is malformed."""
    try:
        error = _error_decoder.decode(payload)
    except msgspec.DecodeError:
        raise ProtocolError(str(exc)) from None
    detail = f": {error.reason}" if error.reason else ""
    words = set(error.reason.replace(",", " ").split())
    named = [symbol for wire, symbol in products.items() if wire in words]
    reason = f"venue error reply: {error.message}{detail}"
    return [SubscriptionRejected(venue, named, recv_ts, reason)]


def routes(symbols: list[str], aliases: dict[str, str]) -> dict[str, tuple[str, ...]]:
    """Wire product id → the user's symbols its data belongs to."""
    route: dict[str, tuple[str, ...]] = {}
    for symbol in symbols:
        wire = symbol.upper()
        names = [wire]
        base, _, quote = wire.partition("-")
        alias = aliases.get(quote)
        if alias is not None and wire not in NATIVE_USDC_PRODUCTS:
            names.append(f"{base}-{alias}")
        for name in names:
            owners = route.get(name, ())
            if symbol not in owners:
                route[name] = (*owners, symbol)
    return route


class CoinbaseProtocol(VenueProtocol):
    name: ClassVar[str] = VENUE
    default_ws_url: ClassVar[str] = "wss://advanced-trade-ws.coinbase.com"
    heartbeat_interval: ClassVar[float] = 0.0  # Coinbase sends heartbeats every second
    stale_after: ClassVar[float] = 5.0
    numeric_trade_ids: ClassVar[bool] = False
    sequenced: ClassVar[bool] = False

    def __init__(self, symbols: list[str]) -> None:
        super().__init__(symbols)
        self._route = routes(self.symbols, QUOTE_ALIASES)
        self._products = {s.upper(): s for s in self.symbols}
        self._last_seq: int | None = None
        self._synced: set[str] = set()
        """Wire products whose snapshot arrived since they were (re)subscribed."""
        self._ready: dict[str, str] = {}
        """Synced wire product → its symbol, for the products that feed one symbol: their
        updates take the fast path in :meth:`parse`."""

    def subscribe_messages(self) -> list[str]:
        products = [s.upper() for s in self.symbols]
        messages = [self._request("subscribe", c, products) for c in PRODUCT_CHANNELS]
        heartbeats = {"type": "subscribe", "channel": HEARTBEAT_CHANNEL}
        return [*messages, msgspec.json.encode(heartbeats).decode()]

    def resubscribe_messages(self, symbol: str) -> list[str]:
        for product, owners in self._route.items():
            if symbol in owners:
                self._synced.discard(product)
                self._ready.pop(product, None)
        return [
            self._request(action, channel, [symbol.upper()])
            for channel in PRODUCT_CHANNELS
            for action in ("unsubscribe", "subscribe")
        ]

    @staticmethod
    def _request(action: str, channel: str, products: list[str]) -> str:
        body = {"type": action, "product_ids": products, "channel": channel}
        return msgspec.json.encode(body).decode()

    def parse(self, payload: bytes, recv_ts: int) -> list[MarketEvent]:
        """Decode one envelope. Samples (Coinbase's documentation)::

            {"channel":"l2_data","client_id":"","timestamp":"2023-02-09T20:32:50.714964855Z",
             "sequence_num":0,"events":[{"type":"snapshot","product_id":"BTC-USD","updates":[
             {"side":"bid","event_time":"1970-01-01T00:00:00Z","price_level":"21921.73",
              "new_quantity":"0.06317902"},
             {"side":"bid","event_time":"1970-01-01T00:00:00Z","price_level":"21921.3",
              "new_quantity":"0.02"}]}]}
            {"channel":"market_trades","client_id":"","timestamp":"2023-02-09T20:19:35.39625135Z",
             "sequence_num":0,"events":[{"type":"snapshot","trades":[{"trade_id":"000000000",
             "product_id":"ETH-USD","price":"1260.01","size":"0.3","side":"BUY",
             "time":"2019-08-14T20:42:27.265Z"}]}]}
            {"channel":"heartbeats","client_id":"","timestamp":"2023-06-23T20:31:26.122969572Z",
             "sequence_num":0,"events":[{"heartbeat_counter":3049,
             "current_time":"2023-06-23 20:31:56.121961769 +0000 UTC m=+91717.525857105"}]}

            {"channel":"subscriptions","client_id":"","timestamp":"2023-02-09T20:32:50.7Z",
             "sequence_num":1,"events":[{"subscriptions":{"level2":["BTC-USD"],
             "market_trades":["BTC-USD"]}}]}

        The ``subscriptions`` reply (one per subscribe, listing everything held so far) is the
        acknowledgement. Errors come without an envelope and answer a subscribe:
        ``{"type":"error","message":"failure to subscribe"}``.
        """
        try:
            msg = _decode(payload)
        except msgspec.DecodeError as exc:
            return error_reply(self.name, payload, exc, recv_ts, self._products)
        seq = msg.sequence_num
        last = self._last_seq
        if type(msg) is _L2Data and last is not None and seq == last + 1:
            events = msg.events
            if len(events) == 1:
                # The hot path, written out: the next message, one update of a synced
                # product that feeds one symbol (``_ready``). Anything else (the first
                # message, a gap, a snapshot, aliases) takes the general path below.
                event = events[0]
                symbol = self._ready.get(event.product_id)
                if symbol is not None and event.type == "update":
                    updates = event.updates
                    bids: list[Level] = []
                    asks: list[Level] = []
                    for u in updates:
                        (bids if u.side == "bid" else asks).append((u.price_level, u.new_quantity))
                    ts = rfc3339_us(updates[-1].event_time) if updates else recv_ts
                    self._last_seq = seq
                    return [BookDelta(VENUE, symbol, ts, recv_ts, bids, asks)]
        out: list[MarketEvent] = []
        if last is not None:
            if seq <= last:
                return out
            if seq != last + 1:
                detail: dict[str, int | str | None] = {"expected": last + 1, "got": seq}
                out.append(SyncLost(self.name, None, recv_ts, "sequence", detail))
        if type(msg) is _L2Data:
            self._book(msg, recv_ts, out)
        elif type(msg) is _MarketTrades:
            self._trades(msg, recv_ts, out)
        elif type(msg) is _Heartbeats:
            out.append(Heartbeat(self.name, rfc3339_us(msg.timestamp), recv_ts))
        elif type(msg) is _Subscriptions:
            self._subscribed(msg, recv_ts, out)
        self._last_seq = seq  # only now: a message that failed to parse counts as lost
        return out

    def _book(self, msg: _L2Data, recv_ts: int, out: list[MarketEvent]) -> None:
        name = self.name
        route = self._route
        for event in msg.events:
            product = event.product_id
            updates = event.updates
            bids: list[Level] = []
            asks: list[Level] = []
            for u in updates:
                (bids if u.side == "bid" else asks).append((u.price_level, u.new_quantity))
            if event.type == "snapshot":
                self._synced.add(product)
                owners = route.get(product, ())
                if len(owners) == 1:
                    self._ready[product] = owners[0]
                ts = rfc3339_us(msg.timestamp)  # a snapshot's event_time can be the epoch
                bids.sort(reverse=True)
                asks.sort()
                for symbol in route.get(product, (product,)):
                    out.append(BookSnapshot(name, symbol, ts, recv_ts, bids, asks))
            elif product in self._synced or product not in route:
                ts = rfc3339_us(updates[-1].event_time) if updates else recv_ts
                for symbol in route.get(product, (product,)):
                    out.append(BookDelta(name, symbol, ts, recv_ts, bids, asks))

    def _subscribed(self, msg: _Subscriptions, recv_ts: int, out: list[MarketEvent]) -> None:
        """A symbol is subscribed once a product that feeds it is listed on ``level2``."""
        symbols = [
            symbol
            for event in msg.events
            for product in event.subscriptions.get(BOOK_CHANNEL, ())
            for symbol in self._route.get(product, ())
        ]
        if symbols:
            out.append(Subscribed(self.name, list(dict.fromkeys(symbols)), recv_ts))

    def _trades(self, msg: _MarketTrades, recv_ts: int, out: list[MarketEvent]) -> None:
        name = self.name
        route = self._route
        for event in msg.events:
            # a snapshot lists the newest trade first: store in the order they happened
            trades = reversed(event.trades) if event.type == "snapshot" else event.trades
            for t in trades:
                ts = rfc3339_us(t.time)
                side = TAKER_SIDE[t.side]
                for symbol in route.get(t.product_id, (t.product_id,)):
                    out.append(Trade(name, symbol, ts, recv_ts, t.price, t.size, side, t.trade_id))
