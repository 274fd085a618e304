"""Which trades have we already got, and which are missing? Pure bookkeeping per symbol.

Venues that number trades consecutively per symbol (the simulator, Binance, Coinbase) let a
recorder know exactly what it missed: everything between the *watermark* (the highest id up
to which nothing is missing) and the next id it saw. Backfill asks the venue for trades after
the watermark; duplicates (a redundant twin, a backfill overlapping the live stream) are
recognised here so they cost nothing downstream. Non-numeric ids fall back to a bounded set
of recently seen ids.
"""

from __future__ import annotations

from collections import deque


class TradeIdTracker:
    __slots__ = (
        "_newest_known",
        "_recent",
        "_recent_limit",
        "_recent_order",
        "_seen_above",
        "watermark",
    )

    def __init__(self, recent_limit: int = 100_000) -> None:
        self.watermark: int | None = None
        self._newest_known: int | None = None
        self._seen_above: set[int] = set()
        self._recent: set[str] = set()
        self._recent_order: deque[str] = deque()
        self._recent_limit = recent_limit

    def start_after(self, trade_id: int) -> None:
        """Everything up to ``trade_id`` is out of scope (e.g. before the recording began)."""
        if self.watermark is None or trade_id > self.watermark:
            self.watermark = trade_id
            self._seen_above = {i for i in self._seen_above if i > trade_id}
            self._advance()

    def exists_through(self, trade_id: int) -> None:
        """The venue says trades up to ``trade_id`` exist (a snapshot's or heartbeat's claim)."""
        if self._newest_known is None or trade_id > self._newest_known:
            self._newest_known = trade_id

    def add(self, trade_id: int) -> bool:
        """Record a numeric id; False if it was already seen (or is before the recording)."""
        mark = self.watermark
        if mark is None:
            self.watermark = trade_id
            return True
        if trade_id <= mark or trade_id in self._seen_above:
            return False
        if trade_id == mark + 1 and not self._seen_above:
            self.watermark = trade_id
            return True
        self._seen_above.add(trade_id)
        self._advance()
        return True

    def add_text(self, trade_id: str) -> bool:
        """Record an opaque id; False if seen among the last ``recent_limit`` ids."""
        if trade_id in self._recent:
            return False
        self._recent.add(trade_id)
        self._recent_order.append(trade_id)
        if len(self._recent_order) > self._recent_limit:
            self._recent.discard(self._recent_order.popleft())
        return True

    @property
    def missing(self) -> bool:
        """True when an id between the watermark and the newest id known has not arrived."""
        if self._seen_above:
            return True
        known = self._newest_known
        return known is not None and self.watermark is not None and known > self.watermark

    def _advance(self) -> None:
        assert self.watermark is not None
        seen = self._seen_above
        nxt = self.watermark + 1
        while nxt in seen:
            seen.discard(nxt)
            nxt += 1
        self.watermark = nxt - 1
