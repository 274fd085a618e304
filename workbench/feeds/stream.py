"""A feed's WebSocket side: what its connections report, parsed and handed to the symbols'
sync machines under the feed's lock.

A connection proves nothing until the venue acknowledges the subscription
(:class:`~workbench.events.Subscribed`; for venues that send no acknowledgement, a symbol's
first market data): only then is a symbol reported subscribed, may its connection count as
healthy, and is a book that starts from REST fetched, at once, so a quiet pair gets one
too. A refusal (:class:`~workbench.events.SubscriptionRejected`) shows in the status.

Nothing a venue sends can kill a connection thread: a message that fails to parse, names an
unknown symbol or breaks an invariant goes to ``quarantine`` with the reason.
"""

from __future__ import annotations

import logging

from workbench.errors import ProtocolError
from workbench.events import (
    BookDelta,
    BookSnapshot,
    Heartbeat,
    MarketEvent,
    Quote,
    ReconnectRequest,
    Subscribed,
    SubscriptionRejected,
    SyncLost,
    Trade,
)
from workbench.feeds.connection import Connection
from workbench.feeds.state import FeedState

log = logging.getLogger(__name__)

HELD_MIN = 0.001
"""A wait for the writer shorter than this (no wait at all: room was there) is not counted."""
HOLD_TIMEOUT = 0.5
"""Longest a connection thread waits for room in the store's writer before reading again
(its loop then checks for stop and keeps the connection alive)."""


class Stream:
    """The :class:`~workbench.feeds.connection.ConnectionHandler` of a feed's connections."""

    def __init__(self, state: FeedState) -> None:
        self.state = state
        self.connections: list[Connection] = []
        """Set by the feed once it made them (they need this handler first)."""
        self._connected_before: set[int] = set()

    def on_connected(self, conn: int) -> list[str]:
        state = self.state
        with state.lock:
            # A fresh protocol per session: its per-connection state starts over.
            venue = state.venues[conn] = state.venue_cls(state.symbol_names)
            state.live.add(conn)
            for st in state.symbols.values():
                st.sync.connection_up(conn)
                st.acked.discard(conn)  # a new session must be acknowledged afresh
            if conn in self._connected_before:
                state.reconnects += 1
                state.quality(None, "reconnect", {"conn": conn})
            self._connected_before.add(conn)
        return venue.subscribe_messages()

    def on_disconnected(self, conn: int, reason: str, *, stale: bool) -> None:
        state = self.state
        now = state.clock.now()
        with state.lock:
            state.live.discard(conn)
            state.last_error = reason
            if stale:
                state.stale += 1
                state.quality(None, "stale", {"conn": conn, "reason": reason})
            state.quality(None, "disconnect", {"conn": conn, "reason": reason})
            for st in state.symbols.values():
                st.acked.discard(conn)
                st.sync.connection_down(conn, now, last=not state.live)

    def on_oversized(self, conn: int, prefix: bytes, recv_ts: int) -> None:
        state = self.state
        with state.lock:
            state.messages += 1
            limit = self.connections[conn - 1].max_message
            reason = f"message larger than the {limit}-byte limit"
            state.quarantine(recv_ts, reason, prefix, truncated=True)

    def on_messages(self, conn: int, payloads: list[bytes], recv_ts: int) -> None:
        state = self.state
        now = state.clock.now()
        with state.lock:
            parse = state.venues[conn].parse
            symbols = state.symbols
            # (checked per batch: once every symbol is in, the per-event test is skipped)
            data_acks = state.venue_cls.acknowledged_by_data and any(
                conn not in st.acked for st in symbols.values()
            )
            state.messages += len(payloads)
            state.last_message_at = now
            for payload in payloads:
                try:
                    for event in parse(payload, recv_ts):
                        if data_acks:
                            self._ack_by_data(conn, event)
                        if isinstance(event, BookDelta):
                            state.state(event.symbol).sync.on_delta(conn, event, now)
                            state.last_lag_us = event.recv_ts - event.ts
                        elif isinstance(event, Trade):
                            st = state.state(event.symbol)
                            if st.sync.on_trade(conn, event, now):
                                state.record_trade(st, event)
                            state.last_lag_us = event.recv_ts - event.ts
                        elif isinstance(event, Heartbeat):
                            for symbol, seq in event.seqs.items():
                                if symbol in symbols:
                                    symbols[symbol].sync.on_heartbeat(conn, seq, now)
                        elif isinstance(event, BookSnapshot):
                            state.state(event.symbol).sync.on_snapshot(conn, event, now)
                        elif isinstance(event, Quote):
                            state.record_quote(event)
                        elif isinstance(event, SyncLost):
                            self._on_sync_lost(event, now)
                        elif isinstance(event, ReconnectRequest):
                            reason = f"venue asked to reconnect: {event.reason}"
                            self.connections[conn - 1].drop(reason)
                        elif isinstance(event, Subscribed):
                            self._on_subscribed(conn, event)
                        elif isinstance(event, SubscriptionRejected):
                            self._on_rejected(conn, event, payload)
                except ProtocolError as exc:
                    state.quarantine(recv_ts, str(exc), payload)
                except Exception as exc:  # a venue or feed bug must not kill the thread
                    state.quarantine(recv_ts, f"internal {type(exc).__name__}: {exc}", payload)
            if state.rec.published:
                state.rec.publish()
        # Backpressure, outside the lock: while the writer is a full queue behind, reading
        # more would only pile rows up in memory; the socket's buffer (then the venue) waits.
        started = state.clock.now()
        state.rec.sink.wait_for_room(HOLD_TIMEOUT)
        held = state.clock.now() - started
        if held >= HELD_MIN:  # not the fast path's few µs: no second lock per batch for it
            with state.lock:
                state.held_back += held

    # -- events about the stream itself (lock held) ----------------------------------------
    def _on_sync_lost(self, event: SyncLost, now: float) -> None:
        """The venue's own numbering says messages were lost: resync the affected books."""
        state = self.state
        states = [state.state(event.symbol)] if event.symbol else list(state.symbols.values())
        for st in states:
            st.sync.sync_lost(event.rule, event.detail, now)

    def _on_subscribed(self, conn: int, event: Subscribed) -> None:
        """The venue acknowledged ``event.symbols`` on ``conn``: the connection may now prove
        itself healthy (its backoff starts over only then), and a book that starts from a
        REST snapshot is fetched by the maintenance worker right away, diffs or not."""
        symbols = self.state.symbols
        states = [symbols[s] for s in event.symbols if s in symbols]
        for st in states:
            if not st.acked_once:
                log.info("feed %s: %s subscribed", self.state.name, st.name)
            st.acked.add(conn)
            st.acked_once = True
            st.rejected = None
        if states:
            self.connections[conn - 1].mark_subscribed()

    def _ack_by_data(self, conn: int, event: MarketEvent) -> None:
        """For a venue that acknowledges nothing: a symbol's first market data on ``conn``."""
        if isinstance(event, Trade | BookSnapshot | BookDelta | Quote):
            st = self.state.symbols.get(event.symbol)
            if st is not None and conn not in st.acked:
                acked = Subscribed(self.state.exchange, [st.name], event.recv_ts)
                self._on_subscribed(conn, acked)

    def _on_rejected(self, conn: int, event: SubscriptionRejected, payload: bytes) -> None:
        """A refusal of the symbols it names, or (naming none of ours) of every symbol still
        waiting for its acknowledgement on ``conn``. Loud: the status and ``workbench
        record`` say it; the reply itself is kept in quarantine."""
        state = self.state
        states = [state.symbols[s] for s in event.symbols if s in state.symbols] or [
            st for st in state.symbols.values() if conn not in st.acked
        ]
        for st in states:
            st.rejected = event.reason
        names = ", ".join(st.name for st in states)
        state.last_error = f"subscription rejected{f' ({names})' if names else ''}: {event.reason}"
        log.info("feed %s: %s", state.name, state.last_error)
        state.quarantine(event.recv_ts, event.reason, payload)
