"""The newest trades of one symbol, kept in memory for live views (widgets read them, not
DuckDB), read by cursor so a reader gets each trade once."""

from __future__ import annotations

from collections import deque
from itertools import islice

from workbench.events import Trade

TAPE_LENGTH = 10_000
"""Trades kept per symbol."""


class TradeTape:
    __slots__ = ("_trades", "total")

    def __init__(self, length: int = TAPE_LENGTH) -> None:
        self._trades: deque[Trade] = deque(maxlen=length)
        self.total = 0
        """Trades ever appended: the cursor a reader passes back."""

    def append(self, trade: Trade) -> None:
        self._trades.append(trade)
        self.total += 1

    def since(self, after: int) -> tuple[int, list[Trade]]:
        """The trades after cursor ``after`` (at most the newest ``length``), oldest first,
        and the cursor to pass next time. The owner's lock must be held."""
        new = min(self.total - after, len(self._trades))
        # walk back from the newest end: the tape is long, a reader's backlog short
        trades = list(islice(reversed(self._trades), new))[::-1] if new > 0 else []
        return self.total, trades
