"""Bitstamp WebSocket v2: ``diff_order_book_{pair}`` books and ``live_trades_{pair}`` trades.

Book sync: Bitstamp numbers nothing, but every diff carries ``microtimestamp`` and so does
the REST book (``GET /api/v2/order_book/{pair}/``). The feed subscribes, buffers the diffs,
fetches the REST book and applies only the diffs newer than it. That is the ``monotonic``
rule with ``seq = microtimestamp``: it orders and deduplicates, and says which buffered diffs
the snapshot already contains, but it cannot reveal a lost diff, so the book is rebuilt from a
fresh REST snapshot on every reconnect (and after a crossed book).

Trades: ``type`` 0 is a buy and 1 a sell, by the TAKER. Trade ids are global across pairs,
not consecutive per pair, and the only REST trade history (``/api/v2/transactions/{pair}/``)
is time-windowed (``minute``/``hour``/``day``), not id-paged, so there is no backfill: trades
missed while disconnected are lost and the ``disconnect`` quality event marks the window.

Keep-alive: we send ``{"event":"bts:heartbeat"}``; the server answers it, which also feeds
the silence watchdog on a quiet pair.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

import msgspec

from workbench.errors import ProtocolError, UsageError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    Heartbeat,
    MarketEvent,
    ReconnectRequest,
    Subscribed,
    SubscriptionRejected,
    Trade,
)
from workbench.venues.base import SeqRule, VenueProtocol
from workbench.venues.numbers import Levels
from workbench.venues.numbers import positive as _decimal

BOOK_CHANNEL = "diff_order_book_"
TRADES_CHANNEL = "live_trades_"
CHANNELS: tuple[str, ...] = (BOOK_CHANNEL, TRADES_CHANNEL)
"""Subscribed per pair as ``<channel><pair>``; the book first, as its diffs are what the
REST snapshot must be matched against."""

QUOTE_CURRENCIES: tuple[str, ...] = tuple(
    sorted(
        ("USD", "EUR", "GBP", "BTC", "ETH", "USDT", "USDC", "PAX", "PYUSD", "CHF", "AUD"),
        key=len,
        reverse=True,
    )
)
"""Quote currencies of Bitstamp pairs, longest first so ``btcusdc`` splits as BTC/USDC."""

HEARTBEAT = '{"event":"bts:heartbeat"}'

Decimal = Annotated[str, msgspec.Meta(max_length=40)]
Micros = Annotated[str, msgspec.Meta(max_length=19)]


class _Book(msgspec.Struct, gc=False):
    """A diff's ``data`` and the REST book alike. Decoded lax (see :data:`Levels`); lax mode
    never turns a number into a ``str``, so ``microtimestamp`` stays a checked string.
    ``gc=False`` (here and on :class:`_BookMessage`): built from JSON, these can form no
    cycle, so the cyclic GC need not track them."""

    microtimestamp: Micros
    bids: Levels
    asks: Levels


class _BookMessage(msgspec.Struct, tag="data", tag_field="event", gc=False):
    channel: str
    data: msgspec.Raw
    """Decoded by the lax book decoder: the envelope and the trades stay strict."""


class _TradeBody(msgspec.Struct):
    id: Annotated[int, msgspec.Meta(ge=0)]
    microtimestamp: Micros
    price_str: Decimal
    amount_str: Decimal
    type: Literal[0, 1]


class _TradeMessage(msgspec.Struct, tag="trade", tag_field="event"):
    channel: str
    data: _TradeBody


class _Subscribed(msgspec.Struct, tag="bts:subscription_succeeded", tag_field="event"):
    channel: str = ""


class _HeartbeatReply(msgspec.Struct, tag="bts:heartbeat", tag_field="event"):
    pass


class _Reconnect(msgspec.Struct, tag="bts:request_reconnect", tag_field="event"):
    pass


class _ErrorBody(msgspec.Struct):
    message: str = ""
    code: int | str | None = None


class _Error(msgspec.Struct, tag="bts:error", tag_field="event"):
    data: _ErrorBody
    channel: str = ""


_Message = _BookMessage | _TradeMessage | _Subscribed | _HeartbeatReply | _Reconnect | _Error

_SIDES: dict[int, Literal["buy", "sell"]] = {0: "buy", 1: "sell"}


def _micros(text: str) -> int:
    """A ``microtimestamp``: decimal digits only (a msgspec pattern would cost 0.5 µs)."""
    if not (text.isdigit() and text.isascii()):
        raise ProtocolError(f"bad microtimestamp {text!r}")
    return int(text)


class BitstampProtocol(VenueProtocol):
    name: ClassVar[str] = "bitstamp"
    default_ws_url: ClassVar[str] = "wss://ws.bitstamp.net"
    default_rest_url: ClassVar[str | None] = "https://www.bitstamp.net"
    heartbeat_interval: ClassVar[float] = 10.0
    stale_after: ClassVar[float] = 25.0
    numeric_trade_ids: ClassVar[bool] = False
    sequenced: ClassVar[bool] = True
    seq_rule: ClassVar[SeqRule] = "monotonic"
    snapshot_in_band: ClassVar[bool] = False

    _decoder = msgspec.json.Decoder(_Message, strict=True)
    _book_decoder = msgspec.json.Decoder(_Book, strict=False)

    def __init__(self, symbols: list[str]) -> None:
        super().__init__(symbols)
        by_pair: dict[str, str] = {}
        for symbol in self.symbols:
            pair = symbol.lower()
            if not (pair.isascii() and pair.isalnum()):
                raise UsageError(f"bitstamp pairs look like btcusd, got {symbol!r}")
            if pair in by_pair:
                raise UsageError(f"{by_pair[pair]!r} and {symbol!r} are the same bitstamp pair")
            by_pair[pair] = symbol
        self._by_pair = by_pair

    def pair(self, symbol: str) -> tuple[str, str]:
        wire = symbol.upper()
        for quote in QUOTE_CURRENCIES:
            if wire.endswith(quote) and len(wire) > len(quote):
                return wire[: -len(quote)], quote
        raise ValueError(f"{symbol!r} ends with no known bitstamp quote currency")

    def subscribe_messages(self) -> list[str]:
        return [
            f'{{"event":"bts:subscribe","data":{{"channel":"{channel}{pair}"}}}}'
            for pair in self._by_pair
            for channel in CHANNELS
        ]

    def heartbeat_message(self) -> str:
        return HEARTBEAT

    def parse(self, payload: bytes, recv_ts: int) -> list[MarketEvent]:
        """One message.

        Samples (Bitstamp's WebSocket v2 docs and recorded sessions)::

            {"data":{"timestamp":"1580336904","microtimestamp":"1580336904228758",
             "bids":[["9317.09","2.67910000"],["9296.14","0.00000000"]],
             "asks":[["9333.85","0.00000000"],["9339.20","0.20000000"]]},
             "event":"data","channel":"diff_order_book_btcusd"}
            {"data":{"id":157699738,"timestamp":"1615877939","amount":0.02,
             "amount_str":"0.02000000","price":55008.3,"price_str":"55008.30","type":0,
             "microtimestamp":"1615877939649000","buy_order_id":1339567984607234,
             "sell_order_id":1339567982141443},"channel":"live_trades_btcusd","event":"trade"}
            {"event":"bts:subscription_succeeded","channel":"live_trades_btcusd","data":{}}
            {"event":"bts:heartbeat","channel":"","data":{"status":"success"}}
            {"event":"bts:request_reconnect","channel":"","data":""}
            {"event":"bts:error","channel":"",
             "data":{"code":null,"message":"Incorrect JSON format."}}
        """
        try:
            msg = self._decoder.decode(payload)
        except msgspec.DecodeError as exc:
            raise ProtocolError(str(exc)) from None
        if type(msg) is _BookMessage:
            channel = msg.channel
            if not channel.startswith(BOOK_CHANNEL):
                raise ProtocolError(f"book data on unexpected channel {channel!r}")
            pair = channel[len(BOOK_CHANNEL) :]
            try:
                book = self._book_decoder.decode(msg.data)
            except msgspec.DecodeError as exc:
                raise ProtocolError(f"diff book: {exc}") from None
            micros = _micros(book.microtimestamp)
            return [
                BookDelta(
                    self.name,
                    self._by_pair.get(pair, pair),
                    micros,
                    recv_ts,
                    book.bids,
                    book.asks,
                    micros,
                )
            ]
        if type(msg) is _TradeMessage:
            channel = msg.channel
            if not channel.startswith(TRADES_CHANNEL):
                raise ProtocolError(f"trade on unexpected channel {channel!r}")
            pair = channel[len(TRADES_CHANNEL) :]
            t = msg.data
            return [
                Trade(
                    self.name,
                    self._by_pair.get(pair, pair),
                    _micros(t.microtimestamp),
                    recv_ts,
                    _decimal(t.price_str, "price"),
                    _decimal(t.amount_str, "size"),
                    _SIDES[t.type],
                    str(t.id),
                )
            ]
        if type(msg) is _HeartbeatReply:
            return [Heartbeat(self.name, recv_ts, recv_ts)]
        if type(msg) is _Reconnect:
            return [ReconnectRequest(self.name, recv_ts, "bts:request_reconnect")]
        if type(msg) is _Error:
            # The reply names no channel ("channel":""): it answers what is still waiting.
            code = "" if msg.data.code is None else f" {msg.data.code}"
            reason = f"venue error reply{code}: {msg.data.message}"
            return [SubscriptionRejected(self.name, [], recv_ts, reason)]
        if isinstance(msg, _Subscribed) and msg.channel.startswith(BOOK_CHANNEL):
            # The book channel is the subscription that matters: its diffs are what the REST
            # snapshot is matched against, so the feed may fetch that snapshot now.
            pair = msg.channel[len(BOOK_CHANNEL) :]
            return [Subscribed(self.name, [self._by_pair.get(pair, pair)], recv_ts)]
        return []  # the trades channel's acknowledgement

    def snapshot_path(self, symbol: str) -> str:
        return f"/api/v2/order_book/{symbol.lower()}/"

    def parse_snapshot(self, body: bytes, symbol: str, recv_ts: int) -> BookSnapshot:
        """``GET /api/v2/order_book/{pair}/``, the full book.

        Sample (cut to one level per side)::

            {"timestamp":"1643643584","microtimestamp":"1643643584684047",
             "bids":[["36773.41","0.10000000"]],"asks":[["36780.12","0.05436000"]]}
        """
        try:
            book = self._book_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"REST order_book: {exc}") from None
        micros = _micros(book.microtimestamp)
        return BookSnapshot(self.name, symbol, micros, recv_ts, book.bids, book.asks, micros)
