"""Bybit v5 public spot stream: ``orderbook.{depth}`` books and ``publicTrade`` trades.

Sync rule: a ``snapshot`` replaces the book, every ``delta`` advances the update id ``u`` by
exactly one (``seq_rule = "contiguous"``), so the feed orders by ``u`` and names any jump a gap;
a gap is repaired by unsubscribing and resubscribing the book topic, which makes Bybit send a
fresh snapshot on the same connection. The stream is a fixed window of the subscribed depth,
one of :data:`DEPTHS` (50 unless ``--depth`` chooses another; depth 1 sends snapshots only):
the feed truncates to it after every message, so a level pushed out of the window never
lingers. Bybit sends no book checksum.

Bybit also sends an unrequested snapshot mid-stream when something went wrong on its side
("a new snapshot resets the book"; ``u`` restarts at 1 after a service restart). It is an
ordinary :class:`BookSnapshot` at its ``u``: the feed applies every in-band snapshot of a
connection already streaming, and the sequence continues from its ``u``, lower or not.

Trades carry the TAKER side in ``S``; trade ids ``i`` are strings, not consecutive, and Bybit
has no id-paged trade history, so trades missed during a disconnect cannot be backfilled.
"""

from __future__ import annotations

import re
from collections import deque
from typing import Annotated, ClassVar, Literal

import msgspec

from workbench.errors import ProtocolError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    MarketEvent,
    Subscribed,
    SubscriptionRejected,
    Trade,
)
from workbench.venues.base import SeqRule, VenueProtocol
from workbench.venues.numbers import levels as _levels
from workbench.venues.numbers import positive as _decimal

DEPTHS = (1, 50, 200, 1000)
"""Levels per side of the ``orderbook.{depth}.{symbol}`` topics of spot, linear and inverse
(options, with other depths, are not covered here)."""
DEFAULT_DEPTH = 50
TRADE_TOPIC = "publicTrade.{}"
MAX_ARGS_PER_REQUEST = 10
"""Bybit spot accepts at most 10 topics in one subscribe request."""
QUOTES = (
    "FDUSD", "USDT", "USDC", "USDE", "USD1", "USDR", "USDQ", "EURI", "PYUSD",
    "BTC", "ETH", "EUR", "BRL", "BRZ", "TRY", "PLN", "DAI", "MNT", "SOL", "USD",
)  # fmt: skip
"""Quote currencies of Bybit spot symbols, matched as the longest suffix first."""
_QUOTES_LONGEST_FIRST = tuple(sorted(QUOTES, key=len, reverse=True))
_NAMED_BOOK = re.compile(r"orderbook\.\d+\.([A-Za-z0-9]+)")
"""How a refusal's ``ret_msg`` names a book topic it refused, when it does."""

Decimal = Annotated[str, msgspec.Meta(max_length=40)]


class _Book(msgspec.Struct):
    s: str
    b: msgspec.Raw
    a: msgspec.Raw
    u: int


class _Trade(msgspec.Struct):
    T: int
    s: str
    S: Literal["Buy", "Sell"]
    v: Decimal
    p: Decimal
    i: str


class _Message(msgspec.Struct):
    """Either a topic push (``topic``, ``type``, ``ts``, ``data``) or an ``op`` reply."""

    topic: str | None = None
    type: Literal["snapshot", "delta"] | None = None
    ts: int | None = None
    cts: int | None = None
    data: _Book | list[_Trade] | None = None
    op: str | None = None
    success: bool | None = None
    ret_msg: str | None = None


class BybitProtocol(VenueProtocol):
    """Book and trades of Bybit spot symbols as Bybit spells them (``BTCUSDT``).

    Samples (Bybit v5 docs)::

        {"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1687940967466,
         "data":{"s":"BTCUSDT","b":[["30247.20","30.028"],["30240.00","0"]],
                 "a":[["30248.70","0"],["30249.30","0.892"]],"u":177400507,"seq":66544703342},
         "cts":1687940967464}
        {"topic":"publicTrade.BTCUSDT","type":"snapshot","ts":1672304486868,
         "data":[{"T":1672304486865,"s":"BTCUSDT","S":"Buy","v":"0.001","p":"16578.50",
                  "L":"PlusTick","i":"20f43950-d8dd-5b31-9112-a178eb6023af","BT":false}]}
        {"success":true,"ret_msg":"pong","conn_id":"0970e817-426e-429a-a679-ff7f55e0b16a",
         "op":"ping"}
        {"success":true,"ret_msg":"subscribe","conn_id":"2324d924-aa4d-45b0-a858-7b8be29ab52b",
         "req_id":"","op":"subscribe"}
        {"success":false,"ret_msg":"Invalid symbol :[orderbook.50.BTCUSDX]","conn_id":"c1",
         "req_id":"","op":"subscribe"}

    A subscribe reply names no topic: Bybit answers a connection's requests in order, so the
    n-th reply answers the n-th subscribe request sent on it (:attr:`_unanswered`).
    """

    name: ClassVar[str] = "bybit"
    default_ws_url: ClassVar[str] = "wss://stream.bybit.com/v5/public/spot"
    heartbeat_interval: ClassVar[float] = 20.0
    stale_after: ClassVar[float] = 30.0
    numeric_trade_ids: ClassVar[bool] = False
    sequenced: ClassVar[bool] = True
    seq_rule: ClassVar[SeqRule] = "contiguous"
    snapshot_in_band: ClassVar[bool] = True
    book_depth: ClassVar[int | None] = DEFAULT_DEPTH
    book_depths: ClassVar[tuple[int, ...]] = DEPTHS

    _decoder = msgspec.json.Decoder(_Message, strict=True)

    def __init__(self, symbols: list[str]) -> None:
        super().__init__(symbols)
        self._wire = {s: s.upper() for s in self.symbols}
        self._user = {w: s for s, w in self._wire.items()}
        self._unanswered: deque[list[str]] = deque()
        """Per subscribe request sent and not yet answered, the symbols whose book it asks for."""

    def pair(self, symbol: str) -> tuple[str, str]:
        wire = symbol.upper()
        for quote in _QUOTES_LONGEST_FIRST:
            if wire.endswith(quote) and len(wire) > len(quote):
                return wire[: -len(quote)], quote
        raise ValueError(f"cannot split Bybit symbol {symbol!r}: quote not in {QUOTES}")

    def subscribe_messages(self) -> list[str]:
        topics: list[str] = []
        for wire in self._wire.values():
            topics += [self._book_topic(wire), TRADE_TOPIC.format(wire)]
        chunks = [
            topics[i : i + MAX_ARGS_PER_REQUEST]
            for i in range(0, len(topics), MAX_ARGS_PER_REQUEST)
        ]
        self._unanswered = deque(self._books_in(chunk) for chunk in chunks)
        return [_op("subscribe", chunk) for chunk in chunks]

    def heartbeat_message(self) -> str:
        return '{"op":"ping"}'

    def resubscribe_messages(self, symbol: str) -> list[str]:
        """A fresh subscription of the book topic makes Bybit send its snapshot again; no state
        here waits for it (the feed buffers until it arrives)."""
        wire = self._wire.get(symbol, symbol.upper())
        topic = [self._book_topic(wire)]
        self._unanswered.append(self._books_in(topic))
        return [_op("unsubscribe", topic), _op("subscribe", topic)]

    def _books_in(self, topics: list[str]) -> list[str]:
        books = {self._book_topic(wire): symbol for symbol, wire in self._wire.items()}
        return [books[topic] for topic in topics if topic in books]

    def _book_topic(self, wire: str) -> str:
        return f"orderbook.{self.book_depth}.{wire}"

    def parse(self, payload: bytes, recv_ts: int) -> list[MarketEvent]:
        try:
            msg = self._decoder.decode(payload)
        except msgspec.DecodeError as exc:
            raise ProtocolError(str(exc)) from None
        data = msg.data
        if type(data) is _Book:
            return self._book(msg, data, recv_ts)
        if type(data) is list:
            return self._trades(data, recv_ts)
        if msg.op is not None and msg.topic is None:
            if msg.op == "subscribe":
                return self._subscribe_reply(msg, recv_ts)
            if msg.success is False:
                raise ProtocolError(f"venue error reply to {msg.op!r}: {msg.ret_msg}")
            return []  # unsubscribe acks and pongs
        raise ProtocolError("unexpected message: neither a book, trades nor an op reply")

    def _subscribe_reply(self, msg: _Message, recv_ts: int) -> list[MarketEvent]:
        """The answer to the oldest unanswered subscribe request (none left: a reply we cannot
        place, which answers whatever is still waiting). A refusal that names book topics
        refuses those; one that names none refuses the whole request."""
        asked = self._unanswered.popleft() if self._unanswered else []
        if msg.success is not False:
            return [Subscribed(self.name, asked, recv_ts)] if asked else []
        reason = f"venue error reply to 'subscribe': {msg.ret_msg}"
        named = [self._user[w] for w in _NAMED_BOOK.findall(msg.ret_msg or "") if w in self._user]
        refused = named or asked
        events: list[MarketEvent] = [SubscriptionRejected(self.name, refused, recv_ts, reason)]
        granted = [s for s in asked if s not in refused]
        if granted:
            events.append(Subscribed(self.name, granted, recv_ts))
        return events

    def _book(self, msg: _Message, data: _Book, recv_ts: int) -> list[MarketEvent]:
        if msg.ts is None or msg.type is None:
            raise ProtocolError("book message without ts or type")
        bids = _levels(data.b)
        asks = _levels(data.a)
        wire = data.s
        symbol = self._user.get(wire, wire)
        ts = (msg.cts or msg.ts) * 1000
        if msg.type == "delta":
            return [BookDelta(self.name, symbol, ts, recv_ts, bids, asks, data.u)]
        return [BookSnapshot(self.name, symbol, ts, recv_ts, bids, asks, data.u)]

    def _trades(self, data: list[_Trade], recv_ts: int) -> list[MarketEvent]:
        user = self._user
        name = self.name
        return [
            Trade(
                name,
                user.get(t.s, t.s),
                t.T * 1000,
                recv_ts,
                _decimal(t.p, "price"),
                _decimal(t.v, "size"),
                "buy" if t.S == "Buy" else "sell",
                t.i,
            )
            for t in data
        ]


def _op(op: str, args: list[str]) -> str:
    return msgspec.json.encode({"op": op, "args": args}).decode()
