"""Normalized market events: what every venue protocol turns its wire messages into.

Times are integers in microseconds since the Unix epoch, UTC: ``ts`` is the exchange's time,
``recv_ts`` the moment our socket read the bytes. Prices and sizes are floats parsed straight
from the venue's decimal strings (never formatted back through ``str(float)``). ``side`` on a
trade is always the TAKER side, ``"buy"`` or ``"sell"``. Book levels are ``(price, size)``
pairs with absolute sizes; size 0 deletes the level.

The structs are ``msgspec.Struct`` so that creating one per message costs ~100 ns.
"""

from __future__ import annotations

from typing import Literal

import msgspec

Side = Literal["buy", "sell"]
Level = tuple[float, float]


class Trade(msgspec.Struct, frozen=True, gc=False):
    exchange: str
    symbol: str
    ts: int
    recv_ts: int
    price: float
    size: float
    side: Side
    trade_id: str
    seq: int | None = None


class BookSnapshot(msgspec.Struct, frozen=True, gc=False):
    """A full replacement of one symbol's book; bids best-first (descending), asks ascending.

    ``last_trade_id`` is the newest trade the snapshot already reflects, where the venue says
    it: it tells a recorder which trades it still owes its user. ``checksum`` is the venue's
    checksum of the book after this message (Kraken, OKX), to be verified by the recorder."""

    exchange: str
    symbol: str
    ts: int
    recv_ts: int
    bids: list[Level]
    asks: list[Level]
    seq: int | None = None
    last_trade_id: str | None = None
    checksum: int | None = None


class BookDelta(msgspec.Struct, frozen=True, gc=False):
    """Absolute-size changes to one symbol's book, applied as one unit.

    ``seq`` numbers the message in the venue's book stream. ``prev_seq`` is the ``seq`` of the
    message this one follows, for venues that chain their messages (Binance ``U - 1``, OKX
    ``prevSeqId``); None means ``seq - 1`` under a contiguous rule. ``checksum`` as on
    :class:`BookSnapshot`."""

    exchange: str
    symbol: str
    ts: int
    recv_ts: int
    bids: list[Level]
    asks: list[Level]
    seq: int | None = None
    prev_seq: int | None = None
    checksum: int | None = None


class Quote(msgspec.Struct, frozen=True, gc=False):
    """Top of book as some sources publish it (tickers, vendor tick feeds)."""

    exchange: str
    symbol: str
    ts: int
    recv_ts: int
    bid_price: float
    bid_size: float
    ask_price: float
    ask_size: float


class Heartbeat(msgspec.Struct, frozen=True, gc=False):
    """A venue's keep-alive; ``seqs`` carries the latest sequence per symbol when the venue says it,
    so a gap at the very end of a burst is noticed even when nothing follows it."""

    exchange: str
    ts: int
    recv_ts: int
    seqs: dict[str, int] = {}


class SyncLost(msgspec.Struct, frozen=True, gc=False):
    """The venue's own stream says data was lost (e.g. Coinbase's per-connection
    ``sequence_num`` jumped): the books of ``symbol`` (every symbol if None) are out of sync."""

    exchange: str
    symbol: str | None
    recv_ts: int
    rule: str
    detail: dict[str, int | str | None] = {}


class ReconnectRequest(msgspec.Struct, frozen=True, gc=False):
    """The venue asked us to reconnect (maintenance notice, ``serverShutdown``, …)."""

    exchange: str
    recv_ts: int
    reason: str


class Subscribed(msgspec.Struct, frozen=True, gc=False):
    """The venue acknowledged the subscription of ``symbols`` on this connection, in its own
    words (a ``subscribed`` reply, or for a venue that sends none, the first message that can
    only follow a working subscription). Until it arrives a connection that is up proves
    nothing: a wrong path, a rejected symbol or a server that never answers all look alike.
    A venue whose book starts from a REST snapshot fetches it now, so a pair that rarely
    trades still gets a book."""

    exchange: str
    symbols: list[str]
    recv_ts: int


class SubscriptionRejected(msgspec.Struct, frozen=True, gc=False):
    """The venue refused a subscription: ``reason`` in its words, ``symbols`` the ones it
    named (empty when its reply names none: it answers whatever is still waiting)."""

    exchange: str
    symbols: list[str]
    recv_ts: int
    reason: str


MarketEvent = (
    Trade
    | BookSnapshot
    | BookDelta
    | Quote
    | Heartbeat
    | SyncLost
    | ReconnectRequest
    | Subscribed
    | SubscriptionRejected
)


# -- the applied stream -----------------------------------------------------------------------
# What a feed applied, in order: what subscribers receive and what ``workbench.replay`` reads back
# from a recording. Each mirrors the rows the recorder wrote, so a live log and a replay of the
# same session compare equal.


class BookChange(msgspec.Struct, frozen=True, gc=False):
    """One applied book message: absolute sizes per level (0 deletes it), in application order.

    ``reset`` True: the book was cleared first, so ``bids``/``asks`` hold the whole new book
    (an applied snapshot, initial or after a resync). Levels the recorder trimmed beyond the
    venue's depth appear as size-0 entries after the message's own."""

    exchange: str
    symbol: str
    ts: int
    recv_ts: int
    seq: int | None
    reset: bool
    bids: list[Level]
    asks: list[Level]


class BookTop(msgspec.Struct, frozen=True, gc=False):
    """The periodic top-N picture of a book (``book_snapshots``), best first; ``valid`` False
    while a detected gap awaits a resync."""

    exchange: str
    symbol: str
    ts: int
    recv_ts: int
    seq: int | None
    valid: bool
    bids: list[Level]
    asks: list[Level]


class QualityEvent(msgspec.Struct, frozen=True, gc=False):
    """A data-quality incident (``quality_events``); ``detail`` is its JSON text as stored."""

    exchange: str
    symbol: str | None
    ts: int
    kind: str
    detail: str


AppliedEvent = Trade | BookChange | Quote | BookTop | QualityEvent

APPLIED_KINDS: dict[str, type[AppliedEvent]] = {
    "trade": Trade,
    "book": BookChange,
    "quote": Quote,
    "top": BookTop,
    "quality": QualityEvent,
}
"""The kinds a subscriber or a replay can ask for, and the event type of each."""


class Applied(msgspec.Struct, frozen=True, gc=False):
    """One event of the applied stream with its ``ingest_seq``: its ordinal in the recording
    (increasing in the order the feed applied events)."""

    ingest_seq: int
    kind: str
    event: AppliedEvent

    @property
    def time_us(self) -> int:
        """When it happened to the recorder: ``recv_ts``, for a quality incident its ``ts``."""
        event = self.event
        return event.ts if isinstance(event, QualityEvent) else event.recv_ts


# -- trading ----------------------------------------------------------------------------------
# What a strategy sees and does: bars, the orders it submits and the fills they get. The
# backtester and the runner share them, so a backtest's orders and fills read like a live run's.

OrderType = Literal["market", "limit", "stop"]
"""``stop`` is a stop-market order: a market order once the price reaches ``price``."""
TimeInForce = Literal["gtc", "ioc", "post_only"]
"""For limit orders: rest until cancelled, take what is there at once and cancel the rest, or
rest only as a maker (rejected if it would take)."""


class Bar(msgspec.Struct, frozen=True, gc=False):
    """One OHLCV bar (the ``bars`` table's row). ``ts`` is the bucket's start, ``end`` its
    close: a bar is only known once ``end`` has passed, so that is when a strategy sees it."""

    exchange: str
    symbol: str
    ts: int
    end: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class Order(msgspec.Struct, frozen=True, gc=False):
    """An order as the strategy submitted it. Exactly one of ``size`` (base units, > 0) and
    ``target`` (the position to end with, as a fraction of equity: 1 all in long, -0.5 half
    short) is set; a target is turned into a size when the order fills, at the fill's price.
    ``price`` is the limit price, or a stop's trigger price."""

    client_order_id: str
    symbol: str
    side: Side
    type: OrderType
    created_us: int
    size: float | None = None
    target: float | None = None
    price: float | None = None
    tif: TimeInForce = "gtc"


class Fill(msgspec.Struct, frozen=True, gc=False):
    """An execution: ``fee`` in the quote currency, ``liquidity`` ``maker`` or ``taker``."""

    client_order_id: str
    symbol: str
    side: Side
    ts: int
    price: float
    size: float
    fee: float
    liquidity: Literal["maker", "taker"]
