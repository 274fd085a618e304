"""Coinbase Exchange legacy feed (``wss://ws-feed.exchange.coinbase.com``).

One subscribe message for ``level2_batch`` (the ``level2`` schema in 50 ms batches; plain
``level2`` needs authentication), ``matches`` and ``heartbeat``.

Sync rule. The book stream carries no sequence numbers (``sequenced = False``): a ``snapshot``
per product arrives in-band after subscribing and ``l2update`` messages follow with absolute
sizes. Updates before a product's snapshot are dropped (the snapshot already contains them).
With no numbers and no checksum, a crossed book is the only in-stream sign of lost sync; the
feed then resyncs through :meth:`CoinbaseExchangeProtocol.resubscribe_messages`: unsubscribe
+ subscribe ``level2_batch`` for that product, which makes Coinbase send a fresh snapshot on
the same connection; updates still in flight from the old subscription are dropped until it
arrives. A reconnect subscribes anew, so it also starts from a fresh snapshot.

``match.sequence`` is the product's order-book sequence, which numbers every order event
(received, open, done, change, match), so subscribed to ``matches`` alone it jumps between
consecutive trades: it says nothing about loss here and is not gap-checked. Trades are
checked by their ids instead: ``trade_id`` is a consecutive integer per product
(``numeric_trade_ids = True``), so the feed names missing trades and backfills them over
REST. ``last_match`` (the newest trade when the subscription starts) is emitted as a trade:
after a reconnect it shows which trades passed while the connection was down.

Trades. ``side`` on ``match`` (and on REST trades) is the MAKER order's side; the taker did
the opposite (:data:`TAKER_SIDE`). ``heartbeat.last_trade_id`` is not used: a Heartbeat event
has no place for it, and the feed has been seen sending 0 there.

Backfill. ``GET /products/{id}/trades`` pages by trade id with cursors: ``after=C`` returns
trades with id < C, newest first, ``limit`` at most 1000. Only ``after`` is used, bounding
each page by ids: trades ``(after_id, after_id + 1000]`` are ``after=after_id+1001``. The
``before`` cursor is documented only as "the page before (newer)"; whether a ``before=``
request far behind the newest trade returns the adjacent page or the newest page is not
stated, and the second would silently skip trades. If fewer than 1000 trades follow
``after_id``, the response also holds older ones; those are dropped here (``trades_path``
notes the ``after_id`` of each request for ``parse_trades``), so a page is full only while
more trades may follow, which is what ends the feed's paging loop.
"""

from __future__ import annotations

from typing import ClassVar, Literal
from urllib.parse import quote

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
    Trade,
)
from workbench.venues.base import VenueProtocol
from workbench.venues.coinbase import error_reply, rfc3339_us
from workbench.venues.numbers import Price, Size, TradeSize

CHANNELS = ("level2_batch", "matches", "heartbeat")
"""Subscribed for every product in one message."""
BOOK_CHANNEL = "level2_batch"
"""Re-subscribed alone for a fresh book."""
TAKER_SIDE: dict[str, Side] = {"buy": "sell", "sell": "buy"}
"""``match``/REST ``side`` (the maker's) → the taker's side."""
TRADES_PAGE = 1000
"""Trades per REST page: Coinbase's maximum ``limit``."""


class _Channel(msgspec.Struct):
    name: str
    product_ids: list[str] = []


class _Subscriptions(msgspec.Struct, tag="subscriptions", tag_field="type"):
    channels: list[_Channel | str] = []
    """Objects naming their products; a bare channel name is tolerated (and names none)."""


class _Snapshot(msgspec.Struct, tag="snapshot", tag_field="type"):
    product_id: str
    bids: list[tuple[Price, Size]]
    asks: list[tuple[Price, Size]]
    time: str | None = None


class _L2Update(msgspec.Struct, tag="l2update", tag_field="type"):
    product_id: str
    time: str
    changes: list[tuple[Literal["buy", "sell"], Price, Size]]


class _Match(msgspec.Struct, tag="match", tag_field="type"):
    trade_id: int
    product_id: str
    time: str
    size: TradeSize
    price: Price
    side: Literal["buy", "sell"]
    sequence: int | None = None


class _LastMatch(_Match, tag="last_match"):
    pass


class _Heartbeat(msgspec.Struct, tag="heartbeat", tag_field="type"):
    product_id: str
    time: str
    sequence: int | None = None
    last_trade_id: int | None = None


class _RestTrade(msgspec.Struct):
    trade_id: int
    time: str
    price: Price
    size: TradeSize
    side: Literal["buy", "sell"]


_Message = _L2Update | _Match | _LastMatch | _Heartbeat | _Snapshot | _Subscriptions


class CoinbaseExchangeProtocol(VenueProtocol):
    name: ClassVar[str] = "coinbase-exchange"
    default_ws_url: ClassVar[str] = "wss://ws-feed.exchange.coinbase.com"
    default_rest_url: ClassVar[str | None] = "https://api.exchange.coinbase.com"
    heartbeat_interval: ClassVar[float] = 0.0  # Coinbase sends a heartbeat per product per second
    stale_after: ClassVar[float] = 5.0
    numeric_trade_ids: ClassVar[bool] = True
    sequenced: ClassVar[bool] = False
    trades_page_size: ClassVar[int] = TRADES_PAGE

    # lax: msgspec parses the decimal strings into floats in C (see workbench.venues.coinbase)
    _decoder = msgspec.json.Decoder(_Message, strict=False)
    _trades_decoder = msgspec.json.Decoder(list[_RestTrade], strict=False)

    def __init__(self, symbols: list[str]) -> None:
        super().__init__(symbols)
        self._user = {s.upper(): s for s in self.symbols}
        self._synced: set[str] = set()
        """Wire products whose snapshot arrived since they were (re)subscribed."""
        self._backfill_after: dict[str, int] = {}
        """Per symbol, the ``after_id`` of the last trades page asked for."""

    def subscribe_messages(self) -> list[str]:
        return [_request("subscribe", list(self._user), CHANNELS)]

    def resubscribe_messages(self, symbol: str) -> list[str]:
        wire = symbol.upper()
        self._synced.discard(wire)
        return [
            _request(action, [wire], (BOOK_CHANNEL,)) for action in ("unsubscribe", "subscribe")
        ]

    def parse(self, payload: bytes, recv_ts: int) -> list[MarketEvent]:
        """Decode one message. Samples (Coinbase Exchange documentation)::

            {"type":"snapshot","product_id":"BTC-USD","bids":[["10101.10","0.45054140"]],
             "asks":[["10102.55","0.57753524"]]}
            {"type":"l2update","product_id":"BTC-USD","time":"2019-08-14T20:42:27.265Z",
             "changes":[["buy","10101.80000000","0.162567"]]}
            {"type":"match","trade_id":10,"sequence":50,
             "maker_order_id":"ac928c66-ca53-498f-9c13-a110027a60e8",
             "taker_order_id":"132fb6ae-456b-4654-b4e0-d681ac05cea1",
             "time":"2014-11-07T08:19:27.028459Z","product_id":"BTC-USD","size":"5.23512",
             "price":"400.23","side":"sell"}
            {"type":"heartbeat","sequence":90,"last_trade_id":20,"product_id":"BTC-USD",
             "time":"2014-11-07T08:19:28.464459Z"}

            {"type":"subscriptions","channels":[{"name":"level2_batch",
             "product_ids":["BTC-USD"]},{"name":"matches","product_ids":["BTC-USD"]}]}

        ``last_match`` has the shape of ``match``. ``subscriptions`` acknowledges a subscribe;
        a refusal reads ``{"type":"error","message":"...","reason":"..."}``.
        """
        try:
            msg = self._decoder.decode(payload)
        except msgspec.DecodeError as exc:
            return error_reply(self.name, payload, exc, recv_ts, self._user)
        name = self.name
        # isinstance narrows the union for the type checker; _LastMatch is a _Match
        if isinstance(msg, _L2Update):
            product = msg.product_id
            if product not in self._synced and product in self._user:
                return []  # before the (fresh) snapshot, which supersedes it
            bids: list[Level] = []
            asks: list[Level] = []
            for side, price, size in msg.changes:
                (bids if side == "buy" else asks).append((price, size))
            symbol = self._user.get(product, product)
            return [BookDelta(name, symbol, rfc3339_us(msg.time), recv_ts, bids, asks)]
        if isinstance(msg, _Match):
            symbol = self._user.get(msg.product_id, msg.product_id)
            return [
                Trade(
                    name,
                    symbol,
                    rfc3339_us(msg.time),
                    recv_ts,
                    msg.price,
                    msg.size,
                    TAKER_SIDE[msg.side],
                    str(msg.trade_id),
                )
            ]
        if isinstance(msg, _Snapshot):
            product = msg.product_id
            self._synced.add(product)
            ts = rfc3339_us(msg.time) if msg.time else recv_ts
            bids = sorted(msg.bids, reverse=True)
            asks = sorted(msg.asks)
            return [BookSnapshot(name, self._user.get(product, product), ts, recv_ts, bids, asks)]
        if isinstance(msg, _Heartbeat):
            return [Heartbeat(name, rfc3339_us(msg.time), recv_ts)]
        # The subscriptions reply: a product is subscribed once its book channel lists it.
        symbols = [
            self._user[product]
            for channel in msg.channels
            if isinstance(channel, _Channel) and channel.name == BOOK_CHANNEL
            for product in channel.product_ids
            if product in self._user
        ]
        return [Subscribed(name, symbols, recv_ts)] if symbols else []

    def trades_path(self, symbol: str, after_id: int) -> str:
        self._backfill_after[symbol] = after_id
        product = quote(symbol.upper(), safe="")
        return f"/products/{product}/trades?after={after_id + TRADES_PAGE + 1}&limit={TRADES_PAGE}"

    def parse_trades(self, body: bytes, symbol: str, recv_ts: int) -> list[Trade]:
        """One page, ascending by id, only ids above the ``after_id`` asked for. Sample::

            [{"time":"2014-11-07T22:19:28.578544Z","trade_id":74,"price":"10.00000000",
              "size":"0.01000000","side":"buy"}]

        ``side`` is the maker's, as on the feed.
        """
        after_id = self._backfill_after.get(symbol)
        if after_id is None:
            raise ProtocolError(f"REST trades for {symbol!r} that no trades_path asked for")
        try:
            page = self._trades_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"REST trades: {exc}") from None
        page = sorted((t for t in page if t.trade_id > after_id), key=_trade_id)
        name = self.name
        return [
            Trade(
                name,
                symbol,
                rfc3339_us(t.time),
                recv_ts,
                t.price,
                t.size,
                TAKER_SIDE[t.side],
                str(t.trade_id),
            )
            for t in page
        ]


def _trade_id(trade: _RestTrade) -> int:
    return trade.trade_id


def _request(action: str, products: list[str], channels: tuple[str, ...]) -> str:
    body = {"type": action, "product_ids": products, "channels": list(channels)}
    return msgspec.json.encode(body).decode()
