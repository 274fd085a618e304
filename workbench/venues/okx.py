"""OKX v5 public WebSocket: a book channel (``books``, 400 levels, by default) and ``trades``.

Sample messages (OKX's documented formats; levels are ``[px, sz, "0", numOrders]`` strings)::

    {"arg":{"channel":"books","instId":"BTC-USDT"},"action":"update","data":[{
     "asks":[["8476.98","415","0","13"]],"bids":[["8476.97","256","0","12"]],
     "ts":"1597026383085","checksum":-855196043,"prevSeqId":123456,"seqId":123457}]}
    {"arg":{"channel":"trades","instId":"BTC-USDT"},"data":[{"instId":"BTC-USDT",
     "tradeId":"130639474","px":"42219.9","sz":"0.12060306","side":"buy",
     "ts":"1630048897897","count":"3","source":"0","seqId":1234}]}
    {"event":"notice","code":"64008","msg":"The connection will soon be closed for a
     service upgrade. Please reconnect.","connId":"a4d3ae55"}

Sync (rule ``chained``): every book message names the ``seqId`` it follows in ``prevSeqId``
(-1 on the snapshot). The feed orders and gap-checks by that chain, so a ``prevSeqId`` that
is not the last ``seqId`` is a gap and resubscribes the book. The quiet-period keep-alive
(empty update with ``prevSeqId == seqId``) and a post-maintenance reset (``seqId`` below
``prevSeqId`` while ``prevSeqId`` still matches) both chain correctly. Recordings older than
``seqId`` carry none: their messages go out unnumbered and the checksum is the only check.

Checksum: live OKX sends 0, meaning absent; older data sends a signed CRC32 of the top 25
levels interleaved as ``bidPx:bidSz:askPx:askSz:…`` in the exact wire strings. While a
symbol's stream carries non-zero checksums this class keeps each level's wire text (it sees
every level at parse time) to rebuild that string; a level whose text it no longer has is
rendered with :func:`~workbench.venues.checksums.plain`.

Depth: each depth is its own channel (:data:`CHANNELS`). ``books`` (400) is a snapshot then
increments, as above; ``books5`` (5) and ``bbo-tbt`` (1) push the whole top 5 / top 1 every
time it changes, without ``action`` or ``prevSeqId``: each push is a snapshot that replaces
the book. The tick-by-tick ``books50-l2-tbt`` and ``books-l2-tbt`` need a logged-in VIP
account (error 64003 otherwise), which this public feed does not do, so they are not offered.

A crossed book is legitimate during call auctions, so it is not a desync here.

Trades: ``side`` is the taker's. The ``trades`` channel aggregates the fills of one taker
order at one price into one message (``tradeId`` = the last id, ``count`` = fills), while the
REST ``history-trades`` lists single fills: ids skip on the stream, and backfilling from REST
would store the aggregated fills a second time. So ids are opaque here and there is no REST
backfill (the unaggregated ``trades-all`` channel lives on a different endpoint,
``/ws/v5/business``).
"""

from __future__ import annotations

import itertools
import re
import sys
from typing import Annotated, ClassVar, Literal

import msgspec

from workbench.core.book import OrderBook
from workbench.errors import ProtocolError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    Level,
    MarketEvent,
    ReconnectRequest,
    Subscribed,
    SubscriptionRejected,
    Trade,
)
from workbench.venues.base import SeqRule, VenueProtocol
from workbench.venues.checksums import okx_checksum, plain

CHANNELS = {1: "bbo-tbt", 5: "books5", 400: "books"}
"""Book channel per depth (levels per side) on the public endpoint without a login."""
SNAPSHOT_CHANNELS = frozenset({"bbo-tbt", "books5"})
"""Channels whose every push is the whole book at their depth (no ``action``)."""
DEFAULT_DEPTH = 400
TRADE_CHANNEL = "trades"
CHECKSUM_LEVELS = 25
"""OKX's checksum covers the top 25 of ``books`` (the snapshot channels send none)."""
RECONNECT_NOTICES = {"64008": "service upgrade"}
"""``notice`` codes that announce the server is about to close the connection."""
SILENT_EVENTS = frozenset({"unsubscribe", "channel-conn-count"})
_NAMED_INST_ID = re.compile(r"instId:([A-Za-z0-9_-]+)")
"""How an ``error`` reply's ``msg`` names the instrument it refused, when it does."""
_TEXT_LIMIT = 4 * DEFAULT_DEPTH

Positive = Annotated[float, msgspec.Meta(gt=0.0, le=sys.float_info.max)]
NonNegative = Annotated[float, msgspec.Meta(ge=0.0, le=sys.float_info.max)]
OkxLevel = tuple[Positive, NonNegative, str, str]
"""``[px, sz, "0", numOrders]``; ``sz`` "0" deletes the level."""
Text = Annotated[str, msgspec.Meta(max_length=40)]


# ``gc=False`` on the decoded structs: built from JSON, they hold scalars and lists of them
# and can form no cycle, so the cyclic GC need not track the thousands made per second.
class _Arg(msgspec.Struct, gc=False):
    channel: str
    instId: str | None = None


class _Data(msgspec.Struct, gc=False):
    """One ``data`` element of a ``books`` or a ``trades`` push (which is which is in ``arg``:
    one struct for both keeps the decode single-pass; :meth:`OkxProtocol.parse` checks that
    the fields of the channel are there)."""

    ts: int
    """Milliseconds; OKX sends a decimal string, which the lax decoder reads as an int in C
    (an integral number's text; a fraction, spaces, ``+`` or letters are decode errors)."""
    asks: list[OkxLevel] | None = None
    bids: list[OkxLevel] | None = None
    checksum: int = 0
    prevSeqId: int | None = None
    seqId: int | None = None
    instId: str | None = None
    tradeId: str | None = None
    px: Positive | None = None
    sz: Positive | None = None
    side: Literal["buy", "sell"] | None = None


class _Envelope(msgspec.Struct, gc=False):
    """Both shapes OKX sends: a data push (``arg`` + ``data``) or an ``event`` reply."""

    arg: _Arg | None = None
    action: Literal["snapshot", "update"] | None = None
    data: list[_Data] | None = None
    event: str | None = None
    code: str | None = None
    msg: str | None = None


class _TextBook(msgspec.Struct):
    asks: list[tuple[Text, Text, str, str]]
    bids: list[tuple[Text, Text, str, str]]


class _TextEnvelope(msgspec.Struct):
    data: list[_TextBook]


class _Texts:
    """Wire text of each level of one symbol, kept while its stream has checksums to verify."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids: dict[float, tuple[float, str]] = {}
        self.asks: dict[float, tuple[float, str]] = {}


class OkxProtocol(VenueProtocol):
    name: ClassVar[str] = "okx"
    default_ws_url: ClassVar[str] = "wss://ws.okx.com:8443/ws/v5/public"
    heartbeat_interval: ClassVar[float] = 20.0
    """OKX drops a connection after 30 s without data; a text ``ping`` gets ``pong``."""
    stale_after: ClassVar[float] = 30.0
    sequenced: ClassVar[bool] = True
    seq_rule: ClassVar[SeqRule] = "chained"
    crossed_is_desync: ClassVar[bool] = False
    book_depth: ClassVar[int | None] = DEFAULT_DEPTH
    book_depths: ClassVar[tuple[int, ...]] = tuple(CHANNELS)

    _decoder = msgspec.json.Decoder(_Envelope, strict=False)
    """Lax mode so that the decimal strings of prices and sizes become floats in C (one
    correctly rounded conversion, as ``float()``; no whitespace, ``+``, ``_`` or hex), checked
    against the ``Positive`` / ``NonNegative`` bounds; it would also read ``"5"`` as an int."""
    _text_decoder = msgspec.json.Decoder(_TextEnvelope)

    def __init__(self, symbols: list[str]) -> None:
        super().__init__(symbols)
        self._wire = {s: s.upper() for s in self.symbols}
        self._user = {wire: s for s, wire in self._wire.items()}
        self._ids = itertools.count(1)
        self._texts: dict[str, _Texts] = {}
        self._channel = CHANNELS[self.book_depth or DEFAULT_DEPTH]

    def pair(self, symbol: str) -> tuple[str, str]:
        """``BTC-USDT`` → (BTC, USDT); also ``BTC-USDT-SWAP``, ``BTC-USD-250328``."""
        parts = symbol.upper().split("-")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            raise ValueError(f"cannot split {symbol!r} into base and quote")
        return parts[0], parts[1]

    def subscribe_messages(self) -> list[str]:
        args = [
            {"channel": channel, "instId": wire}
            for channel in (self._channel, TRADE_CHANNEL)
            for wire in self._wire.values()
        ]
        return [self._request("subscribe", args)]

    def heartbeat_message(self) -> str:
        return "ping"

    def resubscribe_messages(self, symbol: str) -> list[str]:
        """Unsubscribe and resubscribe ``symbol``'s book: OKX answers with a snapshot."""
        args = [{"channel": self._channel, "instId": self._wire.get(symbol, symbol)}]
        self._texts.pop(symbol, None)
        return [self._request("unsubscribe", args), self._request("subscribe", args)]

    def parse(self, payload: bytes, recv_ts: int) -> list[MarketEvent]:
        if payload == b"pong":
            return []
        try:
            msg = self._decoder.decode(payload)
        except msgspec.DecodeError as exc:
            raise ProtocolError(str(exc)) from None
        if msg.event is not None:
            return self._event(msg, recv_ts)
        arg = msg.arg
        if arg is None or not msg.data:
            raise ProtocolError("neither an event nor a data push")
        if arg.channel == self._channel:
            action: Literal["snapshot", "update"] | None = (
                "snapshot" if self._channel in SNAPSHOT_CHANNELS else msg.action
            )
            return self._book(arg.instId, action, msg.data, payload, recv_ts)
        if arg.channel == TRADE_CHANNEL:
            return self._trades(msg.data, recv_ts)
        raise ProtocolError(f"unexpected channel {arg.channel!r}")

    def checksum(self, symbol: str, book: OrderBook) -> int:
        """Signed CRC32 of the top 25 levels per side, interleaved, in wire text."""
        texts = self._texts.get(symbol) or _Texts()
        if len(texts.bids) + len(texts.asks) > _TEXT_LIMIT:  # levels that left the 400 silently
            texts.bids = {p: texts.bids[p] for p, _ in book.bids() if p in texts.bids}
            texts.asks = {p: texts.asks[p] for p, _ in book.asks() if p in texts.asks}
        bids, asks = book.top(CHECKSUM_LEVELS)
        return okx_checksum(_level_texts(bids, texts.bids), _level_texts(asks, texts.asks))

    # -- message kinds -------------------------------------------------------------------
    def _book(
        self,
        inst_id: str | None,
        action: Literal["snapshot", "update"] | None,
        data: list[_Data],
        payload: bytes,
        recv_ts: int,
    ) -> list[MarketEvent]:
        if inst_id is None or action is None:
            raise ProtocolError("books push without instId or action")
        symbol = self._user.get(inst_id, inst_id)
        name = self.name
        snapshot = action == "snapshot"
        if snapshot:
            self._texts.pop(symbol, None)
        verify = symbol in self._texts
        events: list[MarketEvent] = []
        for d in data:
            raw_bids = d.bids
            raw_asks = d.asks
            if raw_bids is None or raw_asks is None:
                raise ProtocolError("books data without bids or asks")
            # Most updates touch one side: an empty side skips the comprehension's call.
            bids = [(level[0], level[1]) for level in raw_bids] if raw_bids else []
            asks = [(level[0], level[1]) for level in raw_asks] if raw_asks else []
            checksum = d.checksum or None
            if checksum is not None:
                verify = True
            if snapshot:
                event: MarketEvent = BookSnapshot(
                    name, symbol, d.ts * 1000, recv_ts, bids, asks, d.seqId, checksum=checksum
                )
            else:
                event = BookDelta(
                    name, symbol, d.ts * 1000, recv_ts, bids, asks, d.seqId, d.prevSeqId, checksum
                )
            events.append(event)
        if verify:
            self._remember(symbol, payload)
        return events

    def _remember(self, symbol: str, payload: bytes) -> None:
        """Keep the wire text of every level this message sets (a zero size forgets it): a
        second, text-typed decode, paid only while the symbol's checksums are non-zero."""
        try:
            data = self._text_decoder.decode(payload).data
        except msgspec.DecodeError as exc:
            raise ProtocolError(f"books levels: {exc}") from None
        texts = self._texts.get(symbol)
        if texts is None:
            texts = self._texts[symbol] = _Texts()
        for d in data:
            for side, raw in ((texts.bids, d.bids), (texts.asks, d.asks)):
                for level in raw:
                    px = level[0]
                    sz = level[1]
                    size = float(sz)
                    if size:
                        side[float(px)] = (size, f"{px}:{sz}")
                    else:
                        side.pop(float(px), None)

    def _trades(self, data: list[_Data], recv_ts: int) -> list[MarketEvent]:
        name = self.name
        user = self._user
        trades: list[MarketEvent] = []
        for t in data:
            if t.instId is None or t.tradeId is None or t.px is None or t.sz is None:
                raise ProtocolError("trade without instId, tradeId, px or sz")
            if t.side is None:
                raise ProtocolError("trade without side")
            trades.append(
                Trade(
                    name,
                    user.get(t.instId, t.instId),
                    t.ts * 1000,
                    recv_ts,
                    t.px,
                    t.sz,
                    t.side,
                    t.tradeId,
                )
            )
        return trades

    def _event(self, msg: _Envelope, recv_ts: int) -> list[MarketEvent]:
        """Replies and notices. Samples (OKX's docs)::

            {"id":"1","event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT"},
             "connId":"a4d3ae55"}
            {"id":"1","event":"error","code":"60018",
             "msg":"Wrong URL or channel:books,instId:BTC-USDX doesn't exist.","connId":"a"}

        One ``subscribe`` reply per argument; the book channel's makes the symbol subscribed.
        An ``error`` answers a request we sent (subscribe, or a resubscribe's unsubscribe)."""
        event = msg.event
        if event == "subscribe":
            arg = msg.arg
            if arg is None or arg.channel != self._channel or arg.instId is None:
                return []
            return [Subscribed(self.name, [self._user.get(arg.instId, arg.instId)], recv_ts)]
        if event in SILENT_EVENTS:
            return []
        if event == "notice" and msg.code in RECONNECT_NOTICES:
            reason = f"okx notice {msg.code} ({RECONNECT_NOTICES[msg.code]}): {msg.msg}"
            return [ReconnectRequest(self.name, recv_ts, reason)]
        if event == "error":
            named = _NAMED_INST_ID.findall(msg.msg or "")
            symbols = [self._user[wire] for wire in named if wire in self._user]
            reason = f"okx error {msg.code}: {msg.msg}"
            return [SubscriptionRejected(self.name, symbols, recv_ts, reason)]
        raise ProtocolError(f"okx {event} {msg.code}: {msg.msg}")

    def _request(self, op: str, args: list[dict[str, str]]) -> str:
        return msgspec.json.encode({"id": str(next(self._ids)), "op": op, "args": args}).decode()


def _level_texts(side: list[Level], texts: dict[float, tuple[float, str]]) -> list[str]:
    out: list[str] = []
    for price, size in side:
        known = texts.get(price)
        if known is not None and known[0] == size:
            out.append(known[1])
        else:
            out.append(f"{plain(price)}:{plain(size)}")
    return out
