"""One symbol's book sync: venue events and the time in; applied events, incidents and actions out.

:class:`BookSync` is what a feed does with a symbol's events, with no threads, sockets or
locks: it sequences book messages (:class:`~workbench.core.sequencer.SymbolSequencer`), applies
what is in order to the :class:`~workbench.core.book.OrderBook`, trims it to the venue's depth,
checks it (checksum, crossing), keeps the trade ids (:class:`~workbench.core.trades.TradeIdTracker`)
and decides when the book must be fetched again and which trades must be backfilled. What it
applied and what went wrong go to a :class:`SyncOutput` (the feed records and publishes them);
what must happen outside goes back as :data:`Action` values from :meth:`BookSync.due`, which the
feed's worker executes (a REST snapshot, a resubscribe, a REST trade backfill) and reports back
(:meth:`BookSync.apply_snapshot`, :meth:`BookSync.snapshot_failed`, :meth:`BookSync.add_trade`,
:meth:`BookSync.backfill_done`). Time is a parameter: ``now`` is a monotonic clock reading.

The venue's rules come in as :class:`SyncRules` (from its protocol class) and its checksum as a
function; they stay with the venue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from workbench.core.book import OrderBook
from workbench.core.sequencer import Rule, SymbolSequencer
from workbench.core.trades import TradeIdTracker
from workbench.events import BookDelta, BookSnapshot, Level, Trade

TWIN_WINDOW = 4096
"""Applied deltas kept so a redundant connection's copy can be compared."""
RETRY_CAP = 5.0
"""Seconds at most between attempts to fetch a book that keep failing."""

Trim = tuple[list[Level], list[Level]]
"""The levels a depth trim removed, as (price, 0.0) deletions per side."""
Checksum = Callable[[int, str, OrderBook], int | None]
"""The venue's checksum of ``book`` for ``symbol`` as connection ``conn`` computes it (None:
that connection has none)."""


@dataclass(frozen=True, slots=True)
class SyncRules:
    """How a venue's book and trade streams behave (from its protocol class)."""

    sequenced: bool = True
    seq_rule: Rule = "contiguous"
    book_depth: int | None = None
    crossed_is_desync: bool = True
    snapshot_in_band: bool = False
    numeric_trade_ids: bool = True
    redundant: bool = False
    gap_timeout: float = 0.5
    backfill: bool = True
    backfill_delay: float = 0.3


@dataclass(frozen=True, slots=True)
class FetchSnapshot:
    """Fetch the book over REST; apply it only while ``generation`` is still current."""

    symbol: str
    generation: int


@dataclass(frozen=True, slots=True)
class Resubscribe:
    """No REST book: ask the venue for a fresh in-band one (or reconnect)."""

    symbol: str


@dataclass(frozen=True, slots=True)
class Backfill:
    """Fetch the trades after id ``after`` over REST and hand each to :meth:`BookSync.add_trade`."""

    symbol: str
    after: int


Action = FetchSnapshot | Resubscribe | Backfill


class SyncOutput(Protocol):
    """Where a :class:`BookSync` puts what it applied and what went wrong, in order."""

    def applied_delta(self, symbol: str, delta: BookDelta, trimmed: Trim | None) -> None: ...

    def applied_snapshot(self, symbol: str, snap: BookSnapshot, trimmed: Trim | None) -> None: ...

    def incident(self, symbol: str | None, kind: str, detail: dict[str, Any]) -> None: ...


class BookSync:
    """The book, sequence and trade-id state of one symbol, and the rules that move it."""

    def __init__(
        self, symbol: str, rules: SyncRules, out: SyncOutput, checksum: Checksum | None = None
    ) -> None:
        self.symbol = symbol
        self.rules = rules
        self.out = out
        self.checksum = checksum
        self.book = OrderBook()
        self.seq: SymbolSequencer[BookDelta] = SymbolSequencer(
            gap_timeout=rules.gap_timeout, rule=rules.seq_rule
        )
        self.trades = TradeIdTracker()
        self.flagged = False  # a check failed outside the sequencer: resync wanted
        self.crossed = False  # inside a crossed stretch the venue calls legitimate
        self.generation = 0  # bumped when the stream restarts: a REST book fetched before
        # that belongs to the old stream and must not be applied to the new one
        self.synced_once = False
        self.resync_at = 0.0
        self.resync_attempt = 0
        self.missing_since: float | None = None
        self.backfill_after = 0.0
        self._applied: dict[int, BookDelta] = {}
        self._now = 0.0  # the latest time an event came in with: when a gap was found
        # counters
        self.gaps = 0
        self.resyncs = 0
        self.duplicates = 0
        self.crossings = 0
        self.checksum_failures = 0
        self.mismatches = 0

    @property
    def wants_resync(self) -> bool:
        return self.seq.needs_resync or self.flagged

    # -- connections -----------------------------------------------------------------------
    def connection_up(self, conn: int) -> None:
        self.seq.connection_up(conn)

    def connection_down(self, conn: int, now: float, *, last: bool) -> None:
        """``conn`` is gone; ``last``: no connection is left, the stream starts over."""
        self._now = now
        self.seq.connection_down(conn, now)
        if last:
            self.seq.reset()
            self.book.invalidate()
            self.generation += 1
        self._drain_notes()

    def resume_after(self, trade_id: int, now: float) -> None:
        """The file already holds the trades up to ``trade_id``: backfill from there."""
        self.trades.start_after(trade_id)
        self.missing_since = now

    # -- events ------------------------------------------------------------------------------
    def on_delta(self, conn: int, delta: BookDelta, now: float) -> None:
        self._now = now
        if delta.seq is None or not self.rules.sequenced:
            self._apply_delta(delta, conn)
            return
        seq = self.seq
        if self.rules.redundant and seq.last is not None and delta.seq <= seq.last:
            self._compare_twin(conn, delta)
        self._apply_released(seq.on_message(conn, delta.seq, delta, now, delta.prev_seq), conn)
        if seq.synced:
            self.book.seq = seq.last
        if seq.notes:
            self._drain_notes()

    def on_trade(self, conn: int, trade: Trade, now: float) -> bool:
        """A trade from the stream; True if it is new (record it), False for a duplicate."""
        self._now = now
        if trade.seq is not None:
            seq = self.seq
            self._apply_released(seq.on_message(conn, trade.seq, None, now), conn)
            if seq.synced:
                self.book.seq = seq.last  # the book is current up to this trade too
            if seq.notes:
                self._drain_notes()
        new = self.add_trade(trade)
        if self.trades.missing and self.missing_since is None:
            self.missing_since = now
        return new

    def add_trade(self, trade: Trade) -> bool:
        """Note a trade's id (from the stream or a backfill); True if it was not seen yet."""
        if self.rules.numeric_trade_ids:
            return self.trades.add(int(trade.trade_id))
        return self.trades.add_text(trade.trade_id)

    def on_heartbeat(self, conn: int, seq: int, now: float) -> None:
        self._now = now
        self.seq.on_heartbeat(conn, seq, now)
        if self.seq.notes:
            self._drain_notes()

    def on_snapshot(self, conn: int | None, snap: BookSnapshot, now: float) -> None:
        """An in-band snapshot is the venue saying "this is the book": applied, except the
        opening snapshot of a redundant twin while the book is in sync (it would rewind it)."""
        seq = self.seq
        if seq.synced and conn is not None and seq.position(conn) is None:
            if snap.seq is not None:
                seq.note_position(conn, snap.seq)
            return
        self.apply_snapshot(snap, conn, now)

    def sync_lost(self, rule: str, detail: dict[str, Any], now: float) -> None:
        """The venue's own numbering says messages were lost: resync."""
        self._now = now
        self.gaps += 1
        self._lose_sync("gap", {"rule": rule, **detail})

    def apply_snapshot(
        self, snap: BookSnapshot, conn: int | None, now: float, *, source: str | None = None
    ) -> None:
        """Replace the book (in-band on ``conn``, or from REST with ``conn`` None)."""
        self._now = now
        book = self.book
        was_out_of_sync = self.synced_once and not book.valid
        book.apply_snapshot(snap.bids, snap.asks, seq=snap.seq, ts=snap.ts)
        self.flagged = False
        self.crossed = False
        self.out.applied_snapshot(self.symbol, snap, self._trim())
        self._check(snap.seq, snap.checksum, conn)
        if not book.valid:
            return  # the snapshot itself failed a check: another resync is under way
        if snap.last_trade_id is not None and self.rules.numeric_trade_ids:
            last_id = int(snap.last_trade_id)
            if self.trades.watermark is None:
                self.trades.start_after(last_id)
            else:
                self.trades.exists_through(last_id)
        source = source or ("in-band" if conn is not None else "rest")
        if not self.synced_once:
            self.synced_once = True
            detail: dict[str, Any] = {"snapshot_seq": snap.seq, "source": source, "initial": True}
            if snap.last_trade_id is not None:
                detail["last_trade_id"] = snap.last_trade_id
            self.out.incident(self.symbol, "resync", detail)
        else:
            if self.missing_since is None:
                # Trades may have passed while the book was out of sync: let backfill look.
                self.missing_since = now
            if was_out_of_sync and (snap.seq is None or not self.rules.sequenced):
                # (numbered snapshots hear this from the sequencer, with the seq window)
                self.resyncs += 1
                self.out.incident(self.symbol, "resync", {"source": source})
        if snap.seq is not None and self.rules.sequenced:
            self._apply_released(self.seq.snapshot_applied(conn, snap.seq, now), conn)
            if self.seq.synced:
                book.seq = self.seq.last
        self._drain_notes(source=source)
        self.resync_attempt = 0

    # -- what must happen outside ----------------------------------------------------------
    def due(self, now: float, *, acked: bool, rest_book: bool) -> list[Action]:
        """Run the gap timeout, then what is due at ``now``: a resync of a book that is out of
        sync (``rest_book``: the venue serves one over REST) and a backfill of missing trades.
        ``acked``: a live connection's subscription of this symbol was acknowledged."""
        self._now = now
        self.seq.tick(now)
        if self.seq.notes:
            self._drain_notes()
        actions: list[Action] = []
        rules = self.rules
        if now >= self.resync_at and (
            self.wants_resync
            or (
                not rules.snapshot_in_band
                and not self.seq.synced
                # a diff to match, or an acknowledged stream: a quiet pair must not wait for
                # its first diff to get a book
                and (self.seq.buffered or (acked and not self.book.valid))
            )
        ):
            if rest_book:
                actions.append(FetchSnapshot(self.symbol, self.generation))
            else:
                actions.append(Resubscribe(self.symbol))
        watermark = self.trades.watermark
        if (
            rules.backfill
            and self.missing_since is not None
            and now - self.missing_since >= rules.backfill_delay
            and now >= self.backfill_after
        ):
            if watermark is None:
                self.missing_since = None
            else:
                actions.append(Backfill(self.symbol, watermark))
        return actions

    def wants_snapshot(self, generation: int) -> bool:
        """Whether a REST book fetched for ``generation`` should still be applied."""
        return generation == self.generation and (self.wants_resync or not self.seq.synced)

    def snapshot_failed(self, now: float) -> None:
        """Fetching the book failed: try again later, waiting longer each time."""
        self.resync_attempt += 1
        self.resync_at = now + min(RETRY_CAP, 0.1 * 2**self.resync_attempt)

    def resubscribing(self, until: float) -> None:
        """A fresh in-band book was asked for: buffer until it comes, ask again at ``until``."""
        self.seq.reset()
        self.resync_at = until

    def backfill_failed(self, now: float) -> None:
        self.backfill_after = now + 1.0

    def backfill_done(self, now: float, first: int, added: int) -> None:
        """A backfill after id ``first`` found ``added`` new trades."""
        if added:
            detail = {"after_id": first, "count": added, "watermark": self.trades.watermark}
            self.out.incident(self.symbol, "backfill", detail)
        self.missing_since = now if self.trades.missing else None
        self.backfill_after = now + self.rules.backfill_delay

    # -- internals ---------------------------------------------------------------------------
    def _compare_twin(self, conn: int, delta: BookDelta) -> None:
        """A redundant twin must say what the applied copy said; if not, one path is corrupt."""
        applied = self._applied.get(delta.seq) if delta.seq is not None else None
        if applied is not None and (applied.bids != delta.bids or applied.asks != delta.asks):
            self.mismatches += 1
            self.out.incident(self.symbol, "mismatch", {"conn": conn, "seq": delta.seq})

    def _apply_released(self, ready: list[BookDelta | None], conn: int | None) -> None:
        """Apply what the sequencer released, in order, until a check fails: the rest goes
        back to the sequencer, so the next snapshot still finds what it does not contain."""
        for i, item in enumerate(ready):
            if item is None:
                continue
            if not self.book.valid:
                for later in ready[i:]:
                    if later is not None and later.seq is not None:
                        self.seq.hold(later.seq, later, later.prev_seq)
                return
            self._apply_delta(item, conn)

    def _apply_delta(self, d: BookDelta, conn: int | None) -> None:
        if self.rules.redundant and d.seq is not None:
            applied = self._applied
            applied[d.seq] = d
            if len(applied) > TWIN_WINDOW:
                del applied[next(iter(applied))]
        book = self.book
        set_bid, set_ask = book.set_bid, book.set_ask
        for price, size in d.bids:
            set_bid(price, size)
        for price, size in d.asks:
            set_ask(price, size)
        book.seq = d.seq
        book.ts = d.ts
        self.out.applied_delta(self.symbol, d, self._trim())
        self._check(d.seq, d.checksum, conn)

    def _trim(self) -> Trim | None:
        """Cut the book to the venue's depth once a whole message is applied: the levels cut
        (None: none), which the recorder stores as deletions so the deltas rebuild this book."""
        depth = self.rules.book_depth
        if depth is None:
            return None
        bids, asks = self.book.truncate(depth)
        if not bids and not asks:
            return None
        return [(p, 0.0) for p in bids], [(p, 0.0) for p in asks]

    def _check(self, seq: int | None, checksum: int | None, conn: int | None) -> None:
        """The checks that run once a whole message is applied: checksum, crossing."""
        book = self.book
        if not book.valid:
            return  # out of sync already: a resync is on its way
        if checksum is not None and conn is not None and self.checksum is not None:
            ours = self.checksum(conn, self.symbol, book)
            if ours is not None and ours != checksum:
                self.checksum_failures += 1
                detail = {"seq": seq, "expected": checksum, "computed": ours}
                self._lose_sync("checksum", detail)
                return
        if book.crossed:
            best = {"best_bid": book.best_bid_price, "best_ask": book.best_ask_price}
            if not self.rules.crossed_is_desync:
                if not self.crossed:  # log the start of a crossed stretch, not every message
                    self.crossed = True
                    self.crossings += 1
                    self.out.incident(self.symbol, "crossed", {"seq": seq, **best})
                return
            self.crossings += 1
            self._lose_sync("crossed", {"seq": seq, **best})
        else:
            self.crossed = False

    def _lose_sync(self, kind: str, detail: dict[str, Any]) -> None:
        """A check failed: the book is invalid from here until a fresh snapshot is applied."""
        self.out.incident(self.symbol, kind, detail)
        self.book.invalidate()
        self.seq.invalidate(kind, detail.get("seq"))
        self.flagged = True
        self.resync_at = 0.0
        self._drain_notes()

    def _drain_notes(self, source: str | None = None) -> None:
        """The sequencer's notes as incidents (and counters); a gap means trades may have
        been missed too, so backfill looks from then on."""
        for note in self.seq.notes:
            kind, detail = note.kind, note.detail
            if kind == "gap":
                self.gaps += 1
                self.book.invalidate()
                detail = {**detail, "scope": "feed", "rule": self.rules.seq_rule}
                if self.missing_since is None:
                    self.missing_since = self._now
            elif kind == "conn_gap":
                if not self.rules.redundant:
                    continue  # with one connection the feed-level gap says the same
                kind, detail = "gap", {**detail, "scope": "connection"}
            elif kind == "duplicate":
                self.duplicates += 1
            elif kind == "resync":
                self.resyncs += 1
                if source is not None:
                    detail = {**detail, "source": source}
            elif kind == "invalid":
                continue  # the caller already logged the specific check that failed
            elif kind == "buffer_overflow":
                kind = "gap"
            self.out.incident(self.symbol, kind, detail)
        self.seq.notes.clear()
