"""The contract every venue protocol implements: wire text in, normalized events out.

A venue class never touches a socket (sans-I/O, like the ``websockets`` protocol core): it
says what to send (subscribe, resubscribe and heartbeat messages, REST paths) and turns what
arrives into :mod:`workbench.events`. The feed runtime in :mod:`workbench.feeds` does the I/O,
so every rule here is testable with a list of recorded messages.

The feed creates one instance per connection, so per-connection state (a connection-wide
sequence counter, which symbols have had their first full book) lives on the instance. Book
sync is split by who knows what: the venue numbers its book messages (``seq``, ``prev_seq``)
and names the rule that orders them (:attr:`VenueProtocol.seq_rule`); the feed buffers,
orders, detects gaps and resyncs by that rule, and asks the venue to verify checksums
against the book it applied.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar, Literal, cast

from workbench.core.book import OrderBook
from workbench.errors import DepthError
from workbench.events import BookSnapshot, MarketEvent, Quote, Trade

SeqRule = Literal["contiguous", "chained", "monotonic"]
"""How a venue's book messages follow each other.

``contiguous``: each message's ``seq`` is the previous one's + 1 (the simulator, Bybit ``u``).
``chained``: each message names the ``seq`` it follows in ``prev_seq`` (Binance ``U - 1`` → ``u``,
OKX ``prevSeqId`` → ``seqId``); right after a snapshot the first message may straddle it.
``monotonic``: ``seq`` only increases and says nothing about loss (Bitstamp's
``microtimestamp``); it only tells which buffered messages a snapshot already contains.
"""


class VenueProtocol(ABC):
    name: ClassVar[str]
    default_ws_url: ClassVar[str]
    default_rest_url: ClassVar[str | None] = None
    heartbeat_interval: ClassVar[float] = 10.0
    """Seconds between application heartbeats the client must send (0 = none)."""
    stale_after: ClassVar[float] = 5.0
    """Seconds of silence after which the connection is presumed dead."""
    numeric_trade_ids: ClassVar[bool] = False
    """Trade ids are consecutive integers per symbol, so missing trades can be named."""
    sequenced: ClassVar[bool] = True
    """Book messages carry ``seq``: they can be ordered, deduplicated across redundant
    connections, and a gap is detected from the numbers. Without it the feed applies deltas in
    arrival order and relies on checksums or the venue's own signals (:class:`SyncLost`)."""
    seq_rule: ClassVar[SeqRule] = "contiguous"
    snapshot_in_band: ClassVar[bool] = True
    """The venue sends a full book after subscribing. If False (Binance, Bitstamp) the feed
    buffers the stream and fetches the REST snapshot from :meth:`snapshot_path`."""

    acknowledged_by_data: ClassVar[bool] = False
    """The venue may send no acknowledgement of a subscription (Gemini, vendor feeds): the
    first book, trade or quote of a symbol on a connection proves it subscribed. Every other
    venue answers a subscribe, and its protocol turns the answer into
    :class:`~workbench.events.Subscribed` or :class:`~workbench.events.SubscriptionRejected`."""

    has_book: ClassVar[bool] = True
    """False for sources of ticks and quotes only (vendor feeds): no book to sync or report."""
    crossed_is_desync: ClassVar[bool] = True
    """A crossed book means we lost sync. False where crossing is legitimate (OKX auctions):
    the feed still logs a ``crossed`` quality event but does not resync."""
    book_depth: ClassVar[int | None] = None
    """Levels per side the venue streams, if it streams a fixed-depth book and sends no
    delete for a level pushed out of it (Kraken): the feed truncates after every message.
    Where the client chooses the depth this is the default, and :meth:`at_depth` another."""
    book_depths: ClassVar[tuple[int, ...]] = ()
    """The depths a client may subscribe, where the venue offers a choice (Kraken, Bybit,
    OKX); empty where it streams one book, whose depth the client cannot change."""

    def __init__(self, symbols: list[str]) -> None:
        self.symbols = list(symbols)

    @classmethod
    def at_depth(cls, depth: int) -> type[VenueProtocol]:
        """This protocol subscribing ``depth`` levels per side, checked before anything
        connects: a subclass whose :attr:`book_depth` is ``depth`` (the subscription, the
        truncation and the checksum all follow it). A venue without a choice is returned
        as it is: there ``depth`` only limits what the feed stores."""
        if not cls.book_depths:
            return cls
        if depth not in cls.book_depths:
            offered = ", ".join(map(str, cls.book_depths))
            raise DepthError(
                f"{cls.name} offers book depths {offered} (levels per side); got {depth}"
            )
        if depth == cls.book_depth:
            return cls
        chosen = type(cls.__name__, (cls,), {"book_depth": depth, "__module__": cls.__module__})
        return cast(type[VenueProtocol], chosen)

    def pair(self, symbol: str) -> tuple[str, str]:
        """``(base, quote)`` of a venue symbol, e.g. ``BTCUSDT`` → ``("BTC", "USDT")``."""
        for separator in ("-", "/", "_"):
            base, found, quote = symbol.partition(separator)
            if found and base and quote:
                return base.upper(), quote.upper()
        raise ValueError(f"cannot split {symbol!r} into base and quote")

    @abstractmethod
    def subscribe_messages(self) -> list[str]:
        """Text frames to send right after connecting."""

    def heartbeat_message(self) -> str | None:
        """An application-level keep-alive, if the venue wants one."""
        return None

    def resubscribe_messages(self, symbol: str) -> list[str] | None:
        """Messages that make the venue send ``symbol``'s full book again on this connection.

        None means the venue cannot do that per symbol: the feed reconnects instead. An
        implementation also resets whatever per-connection state expects that fresh book."""
        return None

    def checksum(self, symbol: str, book: OrderBook) -> int:
        """The venue's checksum of ``book``, computed our side, to compare with the one it sent."""
        raise NotImplementedError(f"{self.name} sends no checksums")

    @abstractmethod
    def parse(self, payload: bytes, recv_ts: int) -> list[MarketEvent]:
        """Decode one message; raise ``ProtocolError`` if it breaks the protocol."""

    def snapshot_path(self, symbol: str) -> str | None:
        """REST path of a book snapshot, or None if the venue only snapshots in-band."""
        return None

    def parse_snapshot(self, body: bytes, symbol: str, recv_ts: int) -> BookSnapshot:
        raise NotImplementedError(f"{self.name} has no REST snapshot")

    def trades_path(self, symbol: str, after_id: int) -> str | None:
        """REST path of the trades after ``after_id``, or None without backfill support."""
        return None

    def parse_trades(self, body: bytes, symbol: str, recv_ts: int) -> list[Trade]:
        raise NotImplementedError(f"{self.name} has no REST trades")

    trades_page_size: ClassVar[int] = 1000

    def ticker_path(self, symbol: str) -> str | None:
        """REST path of a top-of-book ticker, for a polling source; None if there is none."""
        return None

    def parse_ticker(self, body: bytes, symbol: str, recv_ts: int) -> Quote:
        raise NotImplementedError(f"{self.name} has no REST ticker")
