"""Binance Spot public market data: ``aggTrade`` trades and the ``depth@100ms`` diff book.

Book sync is Binance's documented procedure, carried out by the feed from the numbers we
emit: buffer the diff stream, fetch ``GET /api/v3/depth``, drop events with
``u <= lastUpdateId``, apply the first one only if it straddles the snapshot
(``U <= lastUpdateId + 1 <= u``), then require each event to start right after the previous
one (``U == u_prev + 1``); anything else is a gap and the whole sync restarts from a new REST
snapshot. So a diff becomes a :class:`BookDelta` with ``seq = u`` and ``prev_seq = U - 1``
under the ``chained`` rule, and the REST book a :class:`BookSnapshot` with
``seq = lastUpdateId``.

Trades: aggregate trade ids (``a``) are consecutive per symbol, so a hole in them names the
missing trades and ``GET /api/v3/aggTrades?fromId=`` fetches exactly those. ``m`` says the
BUYER was the maker, i.e. the taker SOLD: the side we record is the taker's.

Keep-alive is WebSocket-level (the server pings every 20 s and the connection thread pongs),
so there is no application heartbeat; a ping counts as data for the silence watchdog.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import msgspec

from workbench.errors import ProtocolError, UsageError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    MarketEvent,
    ReconnectRequest,
    Subscribed,
    SubscriptionRejected,
    Trade,
)
from workbench.venues.base import SeqRule, VenueProtocol
from workbench.venues.numbers import levels as _levels
from workbench.venues.numbers import positive as _decimal

QUOTE_ASSETS: tuple[str, ...] = tuple(
    sorted(
        (
            "USDT", "USDC", "FDUSD", "TUSD", "BUSD", "USDP", "DAI", "UST", "PAX", "AEUR",
            "EURI", "BTC", "ETH", "BNB", "XRP", "TRX", "DOGE", "DOT", "SOL", "EUR", "GBP",
            "TRY", "BRL", "AUD", "JPY", "RUB", "UAH", "ZAR", "PLN", "RON", "ARS", "MXN",
            "COP", "CZK", "NGN", "IDRT", "BIDR", "BKRW", "VAI",
        ),
        key=len,
        reverse=True,
    )
)  # fmt: skip
"""Quote assets a Binance Spot symbol can end with, longest first so ``FDUSD`` wins over a
shorter suffix; ``pair()`` splits on the first that matches."""

STREAMS: tuple[str, ...] = ("aggTrade", "depth@100ms")
"""Channels subscribed per symbol, as ``<symbol lowercase>@<channel>``."""

MAX_STREAMS = 1024
"""Binance closes a connection that asks for more streams than this."""

SUBSCRIBE_ID = 1
"""Request id of our one SUBSCRIBE: its reply ``{"result":null,"id":1}`` is the acknowledgement.
(Binance acknowledges a stream of an unknown symbol too and then sends nothing; its REST
snapshot, fetched right after the acknowledgement, is what fails loudly then.)"""

SNAPSHOT_LIMIT = 1000
"""Levels per side of the REST snapshot (Binance allows up to 5000, at a higher weight)."""

Decimal = Annotated[str, msgspec.Meta(max_length=40)]
Id = Annotated[int, msgspec.Meta(ge=0)]


class _Depth(msgspec.Struct, tag="depthUpdate", tag_field="e"):
    E: Id
    s: str
    U: Id
    u: Id
    b: msgspec.Raw
    a: msgspec.Raw


class _AggTrade(msgspec.Struct, tag="aggTrade", tag_field="e"):
    s: str
    a: Id
    p: Decimal
    q: Decimal
    T: Id
    m: bool


class _Shutdown(msgspec.Struct, tag="serverShutdown", tag_field="e"):
    E: Id | None = None


_Event = _Depth | _AggTrade | _Shutdown


class _ErrorBody(msgspec.Struct):
    code: int
    msg: str


class _Frame(msgspec.Struct):
    """Every top-level shape in one pass: a combined-stream wrapper (``stream``, ``data``), a
    request reply (``id`` with ``result`` or ``error``; older servers put ``code``/``msg`` at
    the top), a WebSocket-API style ``{"event": {...}}`` notice, or a raw event (``e``)."""

    stream: str | None = None
    data: _Event | None = None
    e: str | None = None
    id: int | str | None = None
    error: _ErrorBody | None = None
    code: int | None = None
    msg: str | None = None
    event: _Event | None = None


class _RestDepth(msgspec.Struct):
    last_update_id: Id = msgspec.field(name="lastUpdateId")
    bids: msgspec.Raw
    asks: msgspec.Raw


class _RestAggTrade(msgspec.Struct):
    a: Id
    p: Decimal
    q: Decimal
    T: Id
    m: bool


class BinanceProtocol(VenueProtocol):
    name: ClassVar[str] = "binance"
    default_ws_url: ClassVar[str] = "wss://stream.binance.com:9443/stream"
    default_rest_url: ClassVar[str | None] = "https://api.binance.com"
    heartbeat_interval: ClassVar[float] = 0.0
    stale_after: ClassVar[float] = 30.0
    numeric_trade_ids: ClassVar[bool] = True
    sequenced: ClassVar[bool] = True
    seq_rule: ClassVar[SeqRule] = "chained"
    snapshot_in_band: ClassVar[bool] = False
    trades_page_size: ClassVar[int] = 1000

    _decoder = msgspec.json.Decoder(_Frame, strict=True)
    _event_decoder = msgspec.json.Decoder(_Event, strict=True)
    _depth_decoder = msgspec.json.Decoder(_RestDepth, strict=True)
    _trades_decoder = msgspec.json.Decoder(list[_RestAggTrade], strict=True)

    def __init__(self, symbols: list[str]) -> None:
        super().__init__(symbols)
        by_wire: dict[str, str] = {}
        for symbol in self.symbols:
            wire = symbol.upper()
            if not (wire.isascii() and wire.isalnum()):
                raise UsageError(f"binance symbols look like BTCUSDT, got {symbol!r}")
            if wire in by_wire:
                raise UsageError(f"{by_wire[wire]!r} and {symbol!r} are the same binance symbol")
            by_wire[wire] = symbol
        if len(by_wire) * len(STREAMS) > MAX_STREAMS:
            raise UsageError(f"binance allows {MAX_STREAMS} streams per connection")
        self._by_wire = by_wire

    def pair(self, symbol: str) -> tuple[str, str]:
        wire = symbol.upper()
        for quote in QUOTE_ASSETS:
            if wire.endswith(quote) and len(wire) > len(quote):
                return wire[: -len(quote)], quote
        raise ValueError(f"{symbol!r} ends with no known binance quote asset")

    def subscribe_messages(self) -> list[str]:
        params = [f"{s.lower()}@{stream}" for s in self.symbols for stream in STREAMS]
        body = {"method": "SUBSCRIBE", "params": params, "id": SUBSCRIBE_ID}
        return [msgspec.json.encode(body).decode()]

    def parse(self, payload: bytes, recv_ts: int) -> list[MarketEvent]:
        """One stream message, combined-stream wrapped or raw.

        Samples (Binance's docs)::

            {"stream":"bnbbtc@depth@100ms","data":{"e":"depthUpdate","E":1672515782136,
             "s":"BNBBTC","U":157,"u":160,"b":[["0.0024","10"]],"a":[["0.0026","100"]]}}
            {"stream":"bnbbtc@aggTrade","data":{"e":"aggTrade","E":1672515782136,
             "s":"BNBBTC","a":12345,"p":"0.001","q":"100","f":100,"l":105,
             "T":1672515782136,"m":true,"M":true}}
            {"result":null,"id":1}
            {"error":{"code":2,"msg":"Invalid request: invalid stream"},"id":1}
            {"e":"serverShutdown","E":1770123456789}
        """
        try:
            frame = self._decoder.decode(payload)
            event = frame.data
            if event is None and frame.e is not None:
                event = self._event_decoder.decode(payload)  # a raw (unwrapped) event
            elif event is None:
                event = frame.event
        except msgspec.DecodeError as exc:
            raise ProtocolError(str(exc)) from None
        if type(event) is _Depth:
            if event.u < event.U:
                raise ProtocolError(
                    f"depthUpdate ends (u {event.u}) before it starts (U {event.U})"
                )
            return [
                BookDelta(
                    self.name,
                    self._by_wire.get(event.s, event.s),
                    event.E * 1000,
                    recv_ts,
                    _levels(event.b),
                    _levels(event.a),
                    event.u,
                    event.U - 1,
                )
            ]
        if type(event) is _AggTrade:
            return [
                Trade(
                    self.name,
                    self._by_wire.get(event.s, event.s),
                    event.T * 1000,
                    recv_ts,
                    _decimal(event.p, "price"),
                    _decimal(event.q, "size"),
                    "sell" if event.m else "buy",
                    str(event.a),
                )
            ]
        if type(event) is _Shutdown:
            return [ReconnectRequest(self.name, recv_ts, "serverShutdown")]
        # Errors answer a request; SUBSCRIBE is the only one we send, for every symbol.
        if frame.error is not None:
            reason = f"venue error reply {frame.error.code}: {frame.error.msg}"
            return [SubscriptionRejected(self.name, list(self.symbols), recv_ts, reason)]
        if frame.code is not None or frame.msg is not None:
            reason = f"venue error reply {frame.code}: {frame.msg}"
            return [SubscriptionRejected(self.name, list(self.symbols), recv_ts, reason)]
        if frame.id == SUBSCRIBE_ID:
            return [Subscribed(self.name, list(self.symbols), recv_ts)]
        if frame.id is not None:
            return []  # a reply to a request we did not send: nothing to act on
        raise ProtocolError("unexpected message: no stream data, event or request id")

    def snapshot_path(self, symbol: str) -> str:
        return f"/api/v3/depth?symbol={symbol.upper()}&limit={SNAPSHOT_LIMIT}"

    def parse_snapshot(self, body: bytes, symbol: str, recv_ts: int) -> BookSnapshot:
        """``GET /api/v3/depth``; it has no timestamp, so ``ts`` is when it arrived.

        Sample::

            {"lastUpdateId":1027024,"bids":[["4.00000000","431.00000000"]],
             "asks":[["4.00000200","12.00000000"]]}
        """
        try:
            book = self._depth_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"REST depth: {exc}") from None
        return BookSnapshot(
            self.name,
            symbol,
            recv_ts,
            recv_ts,
            _levels(book.bids),
            _levels(book.asks),
            book.last_update_id,
        )

    def trades_path(self, symbol: str, after_id: int) -> str:
        return (
            f"/api/v3/aggTrades?symbol={symbol.upper()}&fromId={after_id + 1}"
            f"&limit={self.trades_page_size}"
        )

    def parse_trades(self, body: bytes, symbol: str, recv_ts: int) -> list[Trade]:
        """``GET /api/v3/aggTrades``: ascending ids from ``fromId``.

        Sample::

            [{"a":26129,"p":"0.01633102","q":"4.70443515","f":27781,"l":27781,
              "T":1498793709153,"m":true,"M":true}]
        """
        try:
            page = self._trades_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"REST aggTrades: {exc}") from None
        name = self.name
        return [
            Trade(
                name,
                symbol,
                t.T * 1000,
                recv_ts,
                _decimal(t.p, "price"),
                _decimal(t.q, "size"),
                "sell" if t.m else "buy",
                str(t.a),
            )
            for t in page
        ]
