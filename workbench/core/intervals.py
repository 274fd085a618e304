"""Bar intervals: ``"1s"`` to ``"1d"`` parsed once, validated once, compared as microseconds.

Buckets are aligned to the Unix epoch (a bar starts at ``ts - ts % interval``), which is only
the grid a trader expects — hourly bars at :00, 5-minute bars at :00, :05, … — when the
interval divides a day. So an interval must be a whole number of seconds from 1 s to 1 d
that divides 86 400 s: ``"7m"`` is refused because its buckets would start at a different
minute every day, and coarser bars built from finer ones would not line up.

Every interval has one canonical name, the largest unit that expresses it exactly (``"60s"``
is ``"1m"``, ``"24h"`` is ``"1d"``), so the ``bars`` table never holds the same bars under
two names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from workbench.errors import UsageError

DAY_SECONDS = 86_400
_UNITS = {"d": DAY_SECONDS, "h": 3_600, "m": 60, "s": 1}
_PATTERN = re.compile(r"\s*([0-9]+)\s*([smhd])\s*")


@dataclass(frozen=True, order=True)
class Interval:
    """A bar length in whole seconds; construct it with :func:`parse_interval`."""

    seconds: int

    @property
    def micros(self) -> int:
        """The length in microseconds, the unit timestamps are bucketed in."""
        return self.seconds * 1_000_000

    @property
    def name(self) -> str:
        """Canonical spelling: the largest unit that expresses the length exactly."""
        unit, size = next((u, s) for u, s in _UNITS.items() if self.seconds % s == 0)
        return f"{self.seconds // size}{unit}"

    def __str__(self) -> str:
        return self.name


def parse_interval(text: str | Interval) -> Interval:
    """``"5m"`` → ``Interval(300)``; UsageError naming the rule a bad spelling breaks."""
    if isinstance(text, Interval):
        return text
    match = _PATTERN.fullmatch(text)
    if match is None:
        raise UsageError(
            f"bad interval {text!r}: write a whole number and a unit s, m, h or d, e.g. 1m, 4h"
        )
    seconds = int(match[1]) * _UNITS[match[2]]
    if not 1 <= seconds <= DAY_SECONDS:
        raise UsageError(f"bad interval {text!r}: bars are 1s to 1d long")
    if DAY_SECONDS % seconds:
        raise UsageError(
            f"bad interval {text!r}: it must divide a day so bars start at the same times "
            "every day (e.g. 1m, 5m, 15m, 1h, 4h)"
        )
    return Interval(seconds)


def check_coarser(finer: Interval, coarser: Interval) -> None:
    """UsageError unless every ``finer`` bar lies inside exactly one ``coarser`` bar."""
    if coarser.seconds % finer.seconds:
        raise UsageError(
            f"cannot build {coarser} bars from {finer} bars: {coarser} is not a whole "
            f"multiple of {finer}"
        )
