"""A higher first-generation threshold for Python's cyclic GC while subscribers are attached.

Events waiting in a subscriber's queue for its delivery thread (which gets the GIL once per
switch interval while the feed thread is busy) outlive the default 700-allocation young
generation: each level list and tuple is traced again and again, promoted, and finally makes
full collections run over the whole heap. Measured (bench_e2e, one subscriber taking every
event): 1,413 young, 128 middle and 12 full collections per 600,000 messages against 4/1/0
without a subscriber, 1.1 s of collection, the subscriber run at 61–70% of the plain rate; with
a young threshold of 10,000 it is at 78–94% (six runs, same-run ratios; the machine is noisy).

The threshold is process-wide, so it is held only while at least one subscription is open
(reference-counted across feeds), raised only if lower than :data:`GEN0_THRESHOLD`, and the
previous value is put back when the last subscription closes — unless someone changed it
meanwhile, whose choice then stands. Set ``GEN0_THRESHOLD = None`` to leave the GC alone.
"""

from __future__ import annotations

import gc
import logging
import threading

log = logging.getLogger(__name__)

GEN0_THRESHOLD: int | None = 10_000
"""The young-generation threshold held while subscribers are attached (None: never change it)."""

_lock = threading.Lock()
_holders = 0
_saved: tuple[int, int, int] | None = None
"""The thresholds before the first holder raised them; None when nothing was changed."""
_ours: tuple[int, int, int] | None = None


def hold() -> None:
    """One more open subscription: raise the young threshold if it is the first."""
    global _holders, _saved, _ours
    with _lock:
        _holders += 1
        if _holders > 1 or GEN0_THRESHOLD is None:
            return
        before = gc.get_threshold()
        if before[0] >= GEN0_THRESHOLD or before[0] == 0:  # 0: automatic collection is off
            return
        _saved, _ours = before, (GEN0_THRESHOLD, before[1], before[2])
        gc.set_threshold(*_ours)
        log.info("subscribers attached: young GC threshold %d -> %d", before[0], GEN0_THRESHOLD)


def release() -> None:
    """One subscription fewer: the last one puts the previous thresholds back."""
    global _holders, _saved, _ours
    with _lock:
        _holders -= 1
        if _holders > 0 or _saved is None:
            return
        if gc.get_threshold() == _ours:
            gc.set_threshold(*_saved)
            log.info("no subscriber left: young GC threshold back to %d", _saved[0])
        _saved = _ours = None
