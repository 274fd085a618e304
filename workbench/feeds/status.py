"""Feed health as plain data: what ``workbench record`` prints and the notebook shows."""

from __future__ import annotations

import msgspec


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
    book_valid: dict[str, bool]
    last_error: str | None
    failed: str | None = None
    """Why the feed gave up (it stopped itself: its rows could not be stored, a thread it
    needs died); None while it runs or after a normal stop."""

    def summary(self) -> str:
        valid = ", ".join(f"{s}:{'ok' if v else 'INVALID'}" for s, v in self.book_valid.items())
        books = f"; books {valid}" if valid else ""
        failed = f"; FAILED: {self.failed}" if self.failed else ""
        return (
            f"{self.name}: {self.messages} msgs, {self.trades} trades, {self.quotes} quotes, "
            f"{self.reconnects} reconnects, {self.gaps} gaps, {self.resyncs} resyncs, "
            f"{self.duplicates} duplicates, {self.crossed} crossed, {self.checksums} checksum "
            f"mismatches, {self.mismatches} twin mismatches, "
            f"{self.stale} stale, "
            f"{self.backfilled} backfilled, {self.quarantined} quarantined{books}{failed}"
        )
