"""A feed's maintenance worker: every 50 ms (on the feed's Clock) it runs the symbols' gap
timeouts, hands the rows to the writer, writes the top-N book snapshots at their interval,
and executes what the sync machines ask for — REST snapshots, resubscribes (or reconnects),
REST trade backfill — or, in polling mode, a REST polling round. HTTP is never done under the
feed's lock, so receiving never waits on it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from workbench.core.sync import Action, FetchSnapshot, Resubscribe
from workbench.errors import FeedError, ProtocolError
from workbench.events import BookSnapshot, Quote
from workbench.feeds.connection import Connection
from workbench.feeds.recorder import RowSink
from workbench.feeds.rest import RestClient
from workbench.feeds.state import FeedState, SymbolState

INTERVAL = 0.05
RESUBSCRIBE_TIMEOUT = 3.0
"""Seconds to wait for the fresh book a resubscribe asked for before asking again."""
RECONNECT_TIMEOUT = 5.0
"""Same, when the resync reconnected instead (the reconnect itself may back off)."""

T = TypeVar("T")


class Worker:
    """The body of a feed's maintenance thread; ``fail`` is the feed's, called when the
    rows can no longer be stored."""

    def __init__(
        self,
        state: FeedState,
        *,
        rest: RestClient | None,
        connections: list[Connection],
        sink: RowSink,
        stop: threading.Event,
        fail: Callable[[str], None],
        snapshot_interval: float,
        depth: int,
        poll_interval: float | None,
        backfill: bool,
    ) -> None:
        self.state = state
        self.rest = rest
        self.connections = connections
        self.sink = sink
        self.stop = stop
        self.fail = fail
        self.snapshot_interval = snapshot_interval
        self.depth = depth
        self.poll_interval = poll_interval
        self.backfill = backfill
        self._polled_once = False

    def run(self) -> None:
        """The loop; all its state lives on the feed, so after a bug it is simply restarted."""
        state, clock = self.state, self.state.clock
        next_snapshot = clock.now() + self.snapshot_interval
        next_poll = clock.now()
        while not clock.wait(self.stop, INTERVAL):
            now = clock.now()
            actions: list[tuple[SymbolState, Action]] = []
            with state.lock:
                for st in state.symbols.values():
                    rest_book = self.rest is not None and state.venue.snapshot_path(st.name)
                    for action in st.sync.due(now, acked=bool(st.acked), rest_book=bool(rest_book)):
                        actions.append((st, action))
                if now >= next_snapshot:
                    state.write_snapshots(self.depth)
                    next_snapshot = now + self.snapshot_interval
                state.update_rate(now)
                state.rec.flush()
            fault = state.rec.sink_error or self.sink.fault
            if fault is not None:
                self.fail(fault)  # recording on would only pile up rows that cannot be stored
                return
            if self.poll_interval is not None and now >= next_poll:
                next_poll = now + self.poll_interval
                for st in state.symbols.values():
                    self._poll(st)
                continue
            for st, action in actions:
                if isinstance(action, FetchSnapshot):
                    snap = self._fetch_snapshot(st)
                    if snap is not None:
                        with state.lock:
                            if st.sync.wants_snapshot(action.generation):  # else: a new stream
                                st.sync.apply_snapshot(snap, None, clock.now())
                elif isinstance(action, Resubscribe):
                    self._resubscribe(st)
                else:
                    self._backfill(st, action.after)

    def _poll(self, st: SymbolState) -> None:
        """Polling mode: every round fetches the ticker and/or replaces the book from REST,
        then fetches new trades."""
        state = self.state
        venue = state.venue
        quote: Quote | None = None
        snap: BookSnapshot | None = None
        ticker_path = venue.ticker_path(st.name)
        if ticker_path is not None:
            quote = self._rest_get(ticker_path, st.name, venue.parse_ticker, "REST ticker")
        if venue.snapshot_path(st.name) is not None:
            snap = self._fetch_snapshot(st)
        failed = (ticker_path is not None and quote is None) or (
            venue.snapshot_path(st.name) is not None and snap is None
        )
        with state.lock:
            if failed:
                st.acked.discard(0)
                if state.live:
                    state.live.clear()
                    state.quality(None, "disconnect", {"reason": state.last_error})
                return
            if not state.live and self._polled_once:
                state.reconnects += 1
                state.quality(None, "reconnect", {})
            self._polled_once = True
            state.live.add(0)
            st.acked.add(0)  # polling: an answered poll is the acknowledgement
            st.acked_once = True
            state.messages += 1
            state.last_message_at = state.clock.now()
            if quote is not None:
                seen = (quote.ts, quote.bid_price, quote.bid_size, quote.ask_price, quote.ask_size)
                if seen != st.last_quote:  # an unchanged ticker is no news
                    st.last_quote = seen
                    state.record_quote(quote)
            if snap is not None:
                st.sync.apply_snapshot(snap, None, state.clock.now())
            after = st.sync.trades.watermark
        if self.backfill and after is not None:
            self._backfill(st, after)

    def _resubscribe(self, st: SymbolState) -> None:
        """No REST snapshot: ask the venue for a fresh in-band book on the live connections
        or, where it cannot resend one symbol's book, reconnect."""
        state = self.state
        now = state.clock.now()
        with state.lock:
            live = [c for c in self.connections if c.conn in state.live]
            requests = [(c, state.venues[c.conn].resubscribe_messages(st.name)) for c in live]
            if live and all(messages is not None for _, messages in requests):
                st.sync.resubscribing(until=now + RESUBSCRIBE_TIMEOUT)
                for connection, messages in requests:
                    connection.send(messages or [])
                return
            st.sync.resubscribing(until=now + RECONNECT_TIMEOUT)
        for connection in self.connections:
            connection.drop(f"reconnecting to resync {st.name}")

    def _fetch_snapshot(self, st: SymbolState) -> BookSnapshot | None:
        venue = self.state.venue
        path = venue.snapshot_path(st.name)
        if path is None:
            return None  # polling a venue without a REST book: trades only
        snap = self._rest_get(path, st.name, venue.parse_snapshot, "REST snapshot")
        if snap is None:
            with self.state.lock:
                st.sync.snapshot_failed(self.state.clock.now())
        return snap

    def _rest_get(
        self, path: str, symbol: str, parse: Callable[[bytes, str, int], T], what: str
    ) -> T | None:
        """GET and parse; a failure is noted (bad bodies quarantined) and gives None."""
        assert self.rest is not None
        state = self.state
        try:
            body = self.rest.get(path)
        except FeedError as exc:
            with state.lock:
                state.last_error = str(exc)
            return None
        recv_ts = state.clock.time_us()
        try:
            return parse(body, symbol, recv_ts)
        except ProtocolError as exc:
            with state.lock:
                state.last_error = f"{what}: {exc}"
                state.quarantine(recv_ts, state.last_error, body)
            return None

    def _backfill(self, st: SymbolState, after: int) -> None:
        """Page through the trades after id ``after`` over REST; each new one is recorded."""
        state, venue = self.state, self.state.venue
        first, added = after, 0
        while not self.stop.is_set():
            path = venue.trades_path(st.name, after)
            if path is None:
                break
            trades = self._rest_get(path, st.name, venue.parse_trades, "REST trades")
            if trades is None:
                with state.lock:
                    st.sync.backfill_failed(state.clock.now())
                return
            with state.lock:
                for t in trades:
                    if st.sync.add_trade(t):
                        state.record_trade(st, t)
                        added += 1
            newest = max((int(t.trade_id) for t in trades), default=after)
            if len(trades) < venue.trades_page_size or newest <= after:
                break  # the last page, or one that did not move past the cursor
            after = newest
        with state.lock:
            state.backfilled += added
            st.sync.backfill_done(state.clock.now(), first, added)
