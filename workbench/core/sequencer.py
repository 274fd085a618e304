"""Puts one symbol's sequenced messages back in order, from one or several connections.

Each message has a ``seq`` and names the ``prev`` seq it follows: ``seq - 1`` for venues that
number messages 1, 2, 3… (``contiguous``), the venue's own link for ``chained`` venues
(Binance ``U - 1``, OKX ``prevSeqId``). This class decides, with no I/O and no clock of its
own, what happens to each arriving message:

* ``prev == last``: ready, together with any buffered successors (this also accepts an OKX
  seqId reset after maintenance, whose ``seq`` is lower but whose link matches);
* ``seq <= last``: already applied (a duplicate, or the twin from a redundant connection);
* ``prev < last < seq``: straddles what was applied — Binance's first event after a snapshot;
  sizes are absolute, so applying it is right;
* ``prev > last``: buffered. The missing ones are declared lost (a *gap*) only when no open
  connection can still deliver them — every connection has moved past them — or when they
  have been missing longer than ``gap_timeout`` seconds. With one connection that is at once.

Under the ``monotonic`` rule (Bitstamp's microtimestamps) ``seq`` only orders messages: there
is no gap to detect, only what a snapshot already contains (``seq <= snapshot``) to drop.

After a gap the book is out of sync until the caller applies a snapshot and calls
:meth:`snapshot_applied`; messages keep being buffered meanwhile and those newer than the
snapshot are released in order. Per-connection bookkeeping reports faults that a redundant
twin hid (a connection that skipped or repeated a seq), so they still reach the quality log.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, Literal, TypeVar

T = TypeVar("T")
Rule = Literal["contiguous", "chained", "monotonic"]


@dataclass(frozen=True, slots=True)
class Note:
    """Something the quality log must hear about; ``detail`` is JSON-ready."""

    kind: str
    detail: dict[str, Any]


@dataclass(slots=True)
class _ConnState:
    passed: int | None = None  # highest seq this connection has shown (message or heartbeat)


@dataclass
class SymbolSequencer(Generic[T]):
    gap_timeout: float = 0.5
    max_buffer: int = 200_000
    rule: Rule = "contiguous"
    last: int | None = None
    synced: bool = False
    needs_resync: bool = False
    invalid_since: int | None = None  # first seq the book may be wrong after
    notes: list[Note] = field(default_factory=list)
    _pending: dict[int, tuple[int, T | None]] = field(default_factory=dict)
    """Buffered messages by the seq they follow (by their own seq under ``monotonic``)."""
    _conns: dict[int, _ConnState] = field(default_factory=dict)
    _waiting_since: float | None = None

    # -- connections -------------------------------------------------------------------
    def connection_up(self, conn: int) -> None:
        self._conns[conn] = _ConnState()

    def connection_down(self, conn: int, now: float) -> None:
        self._conns.pop(conn, None)
        self._check_gap(now)

    # -- input -------------------------------------------------------------------------
    def on_message(
        self, conn: int, seq: int, item: T | None, now: float, prev: int | None = None
    ) -> list[T | None]:
        """Returns the items now ready to apply, in order. ``prev`` defaults to ``seq - 1``."""
        if prev is None:
            prev = seq - 1
        monotonic = self.rule == "monotonic"
        state = self._conns.get(conn)
        if state is None:
            state = self._conns[conn] = _ConnState()
        passed = state.passed
        if passed is not None and prev != passed:
            if seq <= passed:
                self.notes.append(Note("duplicate", {"conn": conn, "seq": seq, "after": passed}))
                return []
            if prev > passed and not monotonic:
                self.notes.append(
                    Note("conn_gap", {"conn": conn, "from_seq": passed + 1, "to_seq": prev})
                )
        state.passed = seq
        last = self.last
        if not self.synced or last is None:
            self._buffer(prev, seq, item)
            return []
        if prev == last or (seq > last and (monotonic or prev < last)):
            self.last = seq
            if not self._pending:
                return [item]
            return [item, *self._drain()]
        if seq <= last:
            return []
        self._buffer(prev, seq, item)
        ready = self._drain()
        self._check_gap(now)
        return ready

    def on_heartbeat(self, conn: int, seq: int, now: float) -> None:
        """A heartbeat saying the venue is at ``seq``: this connection has passed it."""
        state = self._conns.get(conn)
        if state is None:
            return
        if state.passed is not None and seq > state.passed:
            self.notes.append(
                Note("conn_gap", {"conn": conn, "from_seq": state.passed + 1, "to_seq": seq})
            )
            state.passed = seq
        if self.synced and self.last is not None and seq > self.last:
            if self._waiting_since is None:
                self._waiting_since = now
            self._check_gap(now)

    def snapshot_applied(self, conn: int | None, seq: int, now: float) -> list[T | None]:
        """The caller replaced the book with a snapshot at ``seq``; returns buffered successors.

        ``conn`` is the connection that delivered the snapshot in-band (its stream continues
        at ``seq + 1``), or None for a snapshot fetched out of band (REST).
        """
        if conn is not None:
            state = self._conns.setdefault(conn, _ConnState())
            state.passed = seq
        window = self.invalid_since
        self.last = seq
        self.synced = True
        self.needs_resync = False
        self.invalid_since = None
        self._waiting_since = None
        pending = self._pending
        contained = [k for k, (s, _) in pending.items() if s <= seq]
        if self.rule == "monotonic" and pending and not contained:
            # Older than everything buffered: what came between them is unknown.
            self._declare_gap(seq + 1)
            return []
        for key in contained:
            del pending[key]
        if window is not None:
            self.notes.append(Note("resync", {"from_seq": window, "snapshot_seq": seq}))
        ready: list[T | None] = []
        straddling = sorted(k for k in pending if k < seq) if self.rule == "chained" else []
        if straddling:  # Binance: the first event after the snapshot overlaps it
            self.last, item = pending.pop(straddling[0])
            ready.append(item)
        ready.extend(self._drain())
        self._check_gap(now)  # a snapshot older than the buffered messages leaves a hole
        return ready

    def hold(self, seq: int, item: T | None, prev: int | None = None) -> None:
        """Take back a released message the caller could not apply (its book failed a check
        midway through a batch): the next snapshot decides whether it is still needed."""
        self._buffer(seq - 1 if prev is None else prev, seq, item)

    def position(self, conn: int) -> int | None:
        """The highest seq ``conn`` has shown since it connected (None: nothing yet)."""
        state = self._conns.get(conn)
        return None if state is None else state.passed

    def note_position(self, conn: int, seq: int) -> None:
        """An in-band snapshot that was not applied still tells where its connection stands."""
        self._conns.setdefault(conn, _ConnState()).passed = seq

    def invalidate(self, reason: str, seq: int | None) -> None:
        """The book failed a check (crossed, checksum): out of sync until the next snapshot."""
        if self.synced:
            self.synced = False
            self.needs_resync = True
            self.invalid_since = seq if seq is not None else (self.last or 0)
            self.notes.append(Note("invalid", {"reason": reason, "seq": seq}))

    def reset(self) -> None:
        """Forget everything (e.g. all connections lost): wait for a fresh snapshot."""
        if self.synced:
            self.invalid_since = (self.last or 0) + 1
        self.synced = False
        self._pending.clear()
        self._waiting_since = None

    def tick(self, now: float) -> None:
        """Called periodically so a gap is declared even if nothing else arrives."""
        self._check_gap(now)

    @property
    def buffered(self) -> int:
        return len(self._pending)

    # -- internals ---------------------------------------------------------------------
    def _buffer(self, prev: int, seq: int, item: T | None) -> None:
        if seq == prev:
            return  # an empty keep-alive update (OKX): nothing to apply, and it would collide
        if len(self._pending) >= self.max_buffer:
            self.notes.append(Note("buffer_overflow", {"dropped": len(self._pending)}))
            self._pending.clear()
            if self.synced:
                self._declare_gap(seq)
        self._pending[seq if self.rule == "monotonic" else prev] = (seq, item)

    def _drain(self) -> list[T | None]:
        ready: list[T | None] = []
        last = self.last
        if last is None:
            return ready
        pending = self._pending
        if self.rule == "monotonic":
            for key in sorted(pending):
                if key > last:
                    last, item = pending[key]
                    ready.append(item)
            pending.clear()
        else:
            while last in pending:
                last, item = pending.pop(last)
                ready.append(item)
        self.last = last
        self._waiting_since = None if not pending else self._waiting_since
        return ready

    def _check_gap(self, now: float) -> None:
        if not self.synced or self.last is None or self.rule == "monotonic":
            return
        missing = self.last + 1
        ahead = bool(self._pending) or any(
            s.passed is not None and s.passed >= missing for s in self._conns.values()
        )
        if not ahead:
            self._waiting_since = None
            return
        if self._waiting_since is None:
            self._waiting_since = now
        everyone_passed = all(
            s.passed is not None and s.passed >= missing for s in self._conns.values()
        )
        if everyone_passed or now - self._waiting_since >= self.gap_timeout:
            self._declare_gap(missing)

    def _declare_gap(self, missing: int) -> None:
        upto = min(self._pending) if self._pending else None  # the lowest buffered link
        self.notes.append(Note("gap", {"from_seq": missing, "to_seq": upto}))
        self.synced = False
        self.needs_resync = True
        self.invalid_since = missing
        self._waiting_since = None
