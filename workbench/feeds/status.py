"""Feed health as plain data: what ``workbench record`` prints and the notebook shows."""

from __future__ import annotations

import msgspec

from workbench.feeds.subscription import SubscriberStatus


class FeedStatus(msgspec.Struct, frozen=True):
    name: str
    exchange: str
    symbols: list[str]
    running: bool
    connections: int
    """Open WebSocket connections right now (2 when redundant and healthy)."""
    messages: int
    msgs_per_sec: float
    """Over the last completed second."""
    last_message_age: float | None
    """Seconds since the newest message, None before the first."""
    lag_ms: float | None
    """recv_ts − ts of the newest event with an exchange time, in milliseconds."""
    trades: int
    quotes: int
    reconnects: int
    gaps: int
    resyncs: int
    duplicates: int
    crossed: int
    checksums: int
    """Book checksum mismatches (Kraken, OKX): each one invalidated the book and resynced it."""
    mismatches: int
    """Deltas whose redundant twin disagreed (one path delivered corrupt data)."""
    stale: int
    backfilled: int
    quarantined: int
    thread_errors: int
    """Exceptions that escaped a feed thread's work (each logged with its traceback and
    written as a ``thread_error`` quality event). The thread was restarted, unless it had
    failed 10 times in a row: then the feed failed with the error (``failed``)."""
    last_thread_error: str | None
    """The newest of them: thread, exception type and message."""
    lingering_threads: list[str]
    """Threads still alive when :meth:`Feed.stop` stopped waiting for them (a warning was
    logged naming them); empty while running and after a clean stop."""
    book_valid: dict[str, bool]
    last_error: str | None
    failed: str | None = None
    """Why the feed gave up (it stopped itself: its rows could not be stored, a thread it
    needs died); None while it runs or after a normal stop."""
    connection_error: str | None = None
    """What ended the latest connection attempt or session, naming the URL and the HTTP
    status or errno ("HTTP 404 on upgrade at ws://…", "connect failed: connection refused
    (errno 111) at ws://…", "handshake timed out after 5s at ws://…"); None once a later
    session's subscription was acknowledged."""
    subscribed: dict[str, bool] = {}
    """Per symbol: the venue acknowledged its subscription on a connection that is up now
    (polling: the latest poll was answered). A connection that is merely open proves nothing."""
    subscribed_once: list[str] = []
    """The symbols whose subscription was acknowledged at least once since the feed started."""
    rejected: dict[str, str] = {}
    """Per symbol the venue refused: its reply, until an acknowledgement replaces it."""
    held_back: float = 0.0
    """Seconds the connection threads waited for the store's writer to catch up
    (backpressure: meanwhile the venue's data waited in the socket, not in memory)."""
    subscribers: list[SubscriberStatus] = []
    """Each subscriber of the applied event stream (:meth:`Feed.subscribe`) still open."""

    def unsubscribed(self) -> list[str]:
        """The symbols never acknowledged: recorded nothing, or nothing that can be trusted."""
        return [s for s in self.symbols if s not in self.subscribed_once]

    def summary(self) -> str:
        valid = ", ".join(f"{s}:{'ok' if v else 'INVALID'}" for s, v in self.book_valid.items())
        books = f"; books {valid}" if valid else ""
        failed = f"; FAILED: {self.failed}" if self.failed else ""
        if self.thread_errors:
            failed += f"; {self.thread_errors} thread errors (last: {self.last_thread_error})"
        if self.lingering_threads:
            failed += f"; threads alive after stop: {', '.join(self.lingering_threads)}"
        for sub in self.subscribers:
            if sub.dropped or sub.errors:
                failed += (
                    f"; subscriber {sub.name}: {sub.dropped} events dropped, {sub.errors} errors"
                )
                if sub.last_error:
                    failed += f" (last: {sub.last_error})"
        if self.held_back >= 0.1:
            failed += f"; held back {self.held_back:.1f} s waiting for the store writer"
        never = self.unsubscribed()
        if never:
            why = {s: f" (rejected: {self.rejected[s]})" for s in never if s in self.rejected}
            listed = ", ".join(f"{s}{why.get(s, '')}" for s in never)
            failed += f"; never subscribed: {listed}"
            if self.connection_error:
                failed += f"; connection: {self.connection_error}"
        return (
            f"{self.name}: {self.messages} msgs, {self.trades} trades, {self.quotes} quotes, "
            f"{self.reconnects} reconnects, {self.gaps} gaps, {self.resyncs} resyncs, "
            f"{self.duplicates} duplicates, {self.crossed} crossed, {self.checksums} checksum "
            f"mismatches, {self.mismatches} twin mismatches, "
            f"{self.stale} stale, "
            f"{self.backfilled} trades backfilled, {self.quarantined} quarantined{books}{failed}"
        )
