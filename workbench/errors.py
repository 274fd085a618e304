"""Every error workbench raises on purpose derives from one root, grouped by what to do.

    WorkbenchError        root: ``except WorkbenchError`` catches everything below
    ├── UsageError        the caller asked for something malformed (bad flag, unknown venue)
    │   ├── DepthError    a book depth the venue does not offer (also a ValueError)
    │   └── ArtifactError a promoted artifact missing, corrupt or changed (runner/artifact.py)
    ├── ProtocolError     a message did not follow its venue protocol (it gets quarantined)
    ├── FeedError         a feed cannot reach or keep its source (network, HTTP status)
    ├── StoreError        the database cannot be opened, written or read
    │   ├── BadStoreError the file is not a store this version can use; it was left as it was
    │   ├── JournalLockedError  another runner holds the runner's journal (runner/journal.py)
    │   └── DuplicateOrderError an order id already journaled: sending it would send it twice
    ├── SimulatorError    the embedded exchange simulator was misconfigured
    ├── StrategyError     a strategy's own code raised; the run stopped cleanly
    └── PromotionRefused  validation failed and promotion was not forced; nothing written

``ProtocolError`` never escapes a feed thread: the feed quarantines the raw message with the
error's text as the reason and keeps going.
"""

from __future__ import annotations


class WorkbenchError(Exception):
    """Root of every error workbench raises on purpose."""


class UsageError(WorkbenchError):
    """The caller passed something invalid; the message says how to fix it."""


class DepthError(UsageError, ValueError):
    """A book depth the venue does not stream; the message lists the depths it does."""


class ProtocolError(WorkbenchError):
    """A message broke its venue protocol: wrong JSON, types or missing fields."""


class FeedError(WorkbenchError):
    """A feed could not reach or keep its data source."""


class StoreError(WorkbenchError):
    """The DuckDB store could not be opened, written or read."""


class BadStoreError(StoreError):
    """The file is not a workbench store this version can write (not DuckDB, truncated, a
    foreign database, tables of another shape). Refused at open, before anything in it was
    changed: the operator must name another file (or restore this one)."""


class SimulatorError(WorkbenchError):
    """The embedded exchange simulator was given an impossible configuration."""


class StrategyError(WorkbenchError):
    """A strategy's callback raised: the message names the strategy, the callback, the event
    and its time; the original exception is the ``__cause__``. The run stopped there."""
