"""The contract every venue protocol implements: wire text in, normalized events out.

A venue class never touches a socket (sans-I/O, like the ``websockets`` protocol core): it
says what to send (subscribe and heartbeat messages, REST paths) and turns what arrives into
:mod:`workbench.events`. The feed runtime in :mod:`workbench.feeds` does the I/O, so every
rule here is testable with a list of recorded messages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from workbench.events import BookSnapshot, MarketEvent, Trade


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

    def __init__(self, symbols: list[str]) -> None:
        self.symbols = list(symbols)

    @abstractmethod
    def subscribe_messages(self) -> list[str]:
        """Text frames to send right after connecting."""

    def heartbeat_message(self) -> str | None:
        """An application-level keep-alive, if the venue wants one."""
        return None

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
