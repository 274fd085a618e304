"""Wire numbers and times → the floats and integer microseconds of :mod:`workbench.events`.

Venues send prices and sizes as decimal strings (or JSON numbers). ``float()`` of the wire
text is the one conversion: correctly rounded, no formatting round trip, so no drift and no
exponent notation creeps in. Range checks reject what a float accepts but a book must not:
NaN, infinities, non-positive prices, negative sizes. Every failure is a ``ProtocolError``, so
the feed quarantines the message instead of recording garbage.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from workbench.errors import ProtocolError
from workbench.events import Level

_INF = float("inf")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def levels(raw: Iterable[tuple[str | float, str | float]]) -> list[Level]:
    """Wire ``(price, size)`` pairs → floats; size 0 is a delete, anything else must be > 0."""
    out: list[Level] = []
    append = out.append
    try:
        for p, q in raw:
            price = float(p)
            size = float(q)
            if not (0.0 < price < _INF and 0.0 <= size < _INF):
                raise ProtocolError(f"level out of range: price {p!r}, size {q!r}")
            append((price, size))
    except ValueError as exc:
        raise ProtocolError(f"bad decimal in book levels: {exc}") from None
    return out


def positive(text: str | float, field: str) -> float:
    """A price or traded size: finite and > 0."""
    try:
        value = float(text)
    except ValueError:
        raise ProtocolError(f"bad decimal in {field}: {text!r}") from None
    if not 0.0 < value < _INF:
        raise ProtocolError(f"{field} out of range: {text!r}")
    return value


def iso_us(text: str) -> int:
    """RFC 3339 / ISO 8601 UTC time → µs since the epoch, keeping up to 9 fraction digits.

    ``datetime.fromisoformat`` stops at 6 digits; Coinbase sends 9 (``…:00.123456789Z``), so
    the fraction is cut to microseconds (truncated, never rounded into the next second)."""
    head, dot, rest = text.partition(".")
    zone = ""
    if dot:
        digits = rest.rstrip("Z")
        for sign in ("+", "-"):
            if sign in digits:
                digits, _, offset = digits.partition(sign)
                zone = sign + offset
        if rest.endswith("Z"):
            zone = "+00:00"
        if not digits.isdigit():
            raise ProtocolError(f"bad timestamp {text!r}")
        text = f"{head}.{digits[:6].ljust(6, '0')}{zone}"
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ProtocolError(f"bad timestamp {text!r}") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
