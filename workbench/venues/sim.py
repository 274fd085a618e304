"""The embedded simulator's protocol (see README, "The embedded exchange simulator protocol").

Sample messages::

    {"type":"delta","symbol":"BTC-USD","seq":1042,"ts":1763712000001234,
     "bids":[["29999.50","0"]],"asks":[["30001.00","2.000"]]}
    {"type":"trade","symbol":"BTC-USD","seq":1043,"ts":1763712000001300,
     "trade_id":5821,"price":"30000.50","size":"0.300","side":"buy"}
    {"type":"subscribed","symbols":["BTC-USD"]}
    {"type":"error","message":"unknown symbols: XYZ-USD (available: BTC-USD, ETH-USD)"}

msgspec validates the shape and types strictly in C (a seq sent as a string is malformed,
not coerced); decimal strings become floats and are range-checked (levels in one C pass,
``numbers.levels``), so negative sizes, non-positive prices, NaN and infinities are rejected.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal
from urllib.parse import quote

import msgspec

from workbench.errors import ProtocolError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    Heartbeat,
    MarketEvent,
    Subscribed,
    SubscriptionRejected,
    Trade,
)
from workbench.venues.base import VenueProtocol
from workbench.venues.numbers import levels as _levels
from workbench.venues.numbers import positive as _decimal

Decimal = Annotated[str, msgspec.Meta(max_length=40)]


def _optional_id(trade_id: int | None) -> str | None:
    return None if trade_id is None else str(trade_id)


class _Snapshot(msgspec.Struct, tag="snapshot", tag_field="type"):
    symbol: str
    seq: int
    ts: int
    bids: msgspec.Raw
    asks: msgspec.Raw
    last_trade_id: int | None = None


class _Delta(msgspec.Struct, tag="delta", tag_field="type"):
    symbol: str
    seq: int
    ts: int
    bids: msgspec.Raw
    asks: msgspec.Raw


class _Trade(msgspec.Struct, tag="trade", tag_field="type"):
    symbol: str
    seq: int
    ts: int
    trade_id: int
    price: Decimal
    size: Decimal
    side: Literal["buy", "sell"]


class _Heartbeat(msgspec.Struct, tag="heartbeat", tag_field="type"):
    ts: int
    seqs: dict[str, int] = {}


class _Pong(msgspec.Struct, tag="pong", tag_field="type"):
    id: int | None = None
    ts: int | None = None


class _Subscribed(msgspec.Struct, tag="subscribed", tag_field="type"):
    symbols: list[str]


class _Error(msgspec.Struct, tag="error", tag_field="type"):
    message: str


class _RestBook(msgspec.Struct):
    symbol: str
    seq: int
    ts: int
    bids: msgspec.Raw
    asks: msgspec.Raw
    last_trade_id: int | None = None


class _RestTrade(msgspec.Struct):
    trade_id: int
    price: Decimal
    size: Decimal
    side: Literal["buy", "sell"]
    ts: int
    seq: int | None = None


class _RestTrades(msgspec.Struct):
    symbol: str
    trades: list[_RestTrade]


_Message = _Delta | _Trade | _Heartbeat | _Snapshot | _Pong | _Subscribed | _Error


class SimProtocol(VenueProtocol):
    name: ClassVar[str] = "sim"
    default_ws_url: ClassVar[str] = "ws://127.0.0.1:8765/ws"
    default_rest_url: ClassVar[str | None] = "http://127.0.0.1:8765"
    heartbeat_interval: ClassVar[float] = 5.0
    stale_after: ClassVar[float] = 3.0
    numeric_trade_ids: ClassVar[bool] = True
    trades_page_size: ClassVar[int] = 5000

    _decoder = msgspec.json.Decoder(_Message, strict=True)
    _book_decoder = msgspec.json.Decoder(_RestBook, strict=True)
    _trades_decoder = msgspec.json.Decoder(_RestTrades, strict=True)

    def __init__(self, symbols: list[str]) -> None:
        super().__init__(symbols)
        self._ping_id = 0

    def subscribe_messages(self) -> list[str]:
        return [msgspec.json.encode({"op": "subscribe", "symbols": self.symbols}).decode()]

    def heartbeat_message(self) -> str:
        self._ping_id += 1
        return f'{{"op":"ping","id":{self._ping_id}}}'

    def parse(self, payload: bytes, recv_ts: int) -> list[MarketEvent]:
        try:
            msg = self._decoder.decode(payload)
        except msgspec.DecodeError as exc:
            raise ProtocolError(str(exc)) from None
        name = self.name
        if type(msg) is _Delta:
            return [
                BookDelta(
                    name, msg.symbol, msg.ts, recv_ts, _levels(msg.bids), _levels(msg.asks), msg.seq
                )
            ]
        if type(msg) is _Trade:
            return [
                Trade(
                    name,
                    msg.symbol,
                    msg.ts,
                    recv_ts,
                    _decimal(msg.price, "price"),
                    _decimal(msg.size, "size"),
                    msg.side,
                    str(msg.trade_id),
                    msg.seq,
                )
            ]
        if type(msg) is _Heartbeat:
            return [Heartbeat(name, msg.ts, recv_ts, msg.seqs)]
        if type(msg) is _Snapshot:
            return [
                BookSnapshot(
                    name,
                    msg.symbol,
                    msg.ts,
                    recv_ts,
                    _levels(msg.bids),
                    _levels(msg.asks),
                    msg.seq,
                    _optional_id(msg.last_trade_id),
                )
            ]
        if type(msg) is _Subscribed:
            return [Subscribed(name, msg.symbols, recv_ts)]
        if type(msg) is _Error:
            # The simulator rejects a subscribe as a whole and names no symbol; we send it
            # nothing else that could be refused but pings.
            return [SubscriptionRejected(name, [], recv_ts, f"venue error reply: {msg.message}")]
        return []

    def snapshot_path(self, symbol: str) -> str:
        return f"/book/{quote(symbol, safe='')}"

    def parse_snapshot(self, body: bytes, symbol: str, recv_ts: int) -> BookSnapshot:
        try:
            book = self._book_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"REST book: {exc}") from None
        if book.symbol != symbol:
            raise ProtocolError(f"REST book for {book.symbol!r}, asked for {symbol!r}")
        return BookSnapshot(
            self.name,
            symbol,
            book.ts,
            recv_ts,
            _levels(book.bids),
            _levels(book.asks),
            book.seq,
            _optional_id(book.last_trade_id),
        )

    def trades_path(self, symbol: str, after_id: int) -> str:
        return f"/trades/{quote(symbol, safe='')}?since_id={after_id}&limit={self.trades_page_size}"

    def parse_trades(self, body: bytes, symbol: str, recv_ts: int) -> list[Trade]:
        try:
            page = self._trades_decoder.decode(body)
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"REST trades: {exc}") from None
        name = self.name
        return [
            Trade(
                name,
                symbol,
                t.ts,
                recv_ts,
                _decimal(t.price, "price"),
                _decimal(t.size, "size"),
                t.side,
                str(t.trade_id),
                t.seq,
            )
            for t in page.trades
        ]
