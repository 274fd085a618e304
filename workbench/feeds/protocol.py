"""What the notebook, the widgets and :class:`~workbench.Workbench` need of a feed: a live
:class:`~workbench.feeds.feed.Feed` or a :class:`~workbench.feeds.replay_feed.ReplayFeed`."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Protocol

from workbench.core.book import OrderBook
from workbench.events import Trade
from workbench.feeds.status import FeedStatus
from workbench.feeds.subscription import Subscription, Target


class AnyFeed(Protocol):
    name: str
    exchange: str
    symbols: list[str]

    @property
    def running(self) -> bool: ...

    def start(self) -> AnyFeed: ...

    def stop(self, timeout: float = 1.0) -> None: ...

    def status(self) -> FeedStatus: ...

    def book(self, symbol: str) -> OrderBook: ...

    def recent_trades(self, symbol: str, after: int = 0) -> tuple[int, list[Trade]]: ...

    def locked(self) -> threading.Lock: ...

    def threads_alive(self) -> list[str]: ...

    def subscribe(
        self,
        target: Target,
        *,
        kinds: Sequence[str] | None = None,
        symbols: Sequence[str] | None = None,
        maxsize: int = ...,
        name: str | None = None,
    ) -> Subscription: ...
