"""Wire numbers and times → the floats and integer microseconds of :mod:`workbench.events`.

Venues send prices and sizes as decimal strings (or JSON numbers). The wire text is converted
once, correctly rounded (``float()``, or msgspec's lax decoding, which gives the same value):
no formatting round trip, so no drift and no exponent notation creeps in. Range checks reject
what a float accepts but a book must not: NaN, infinities, non-positive prices, negative sizes.
Every failure is a ``ProtocolError``, so the feed quarantines the message instead of recording
garbage.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated

import msgspec

from workbench.errors import ProtocolError
from workbench.events import Level

_INF = float("inf")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

MAX_FLOAT = sys.float_info.max
"""msgspec bounds must be finite: ``le=MAX_FLOAT`` excludes exactly the infinities."""
Price = Annotated[float, msgspec.Meta(gt=0.0, le=MAX_FLOAT)]
Size = Annotated[float, msgspec.Meta(ge=0.0, le=MAX_FLOAT)]
"""A level's size: 0 deletes the level."""
TradeSize = Annotated[float, msgspec.Meta(gt=0.0, le=MAX_FLOAT)]
Levels = list[tuple[Price, Size]]
"""Wire ``[["9317.09","2.67910000"], ...]`` for a decoder with ``strict=False``: exactly these
decimal strings (or JSON numbers) become correctly rounded floats in C, the value ``float()``
gives (no whitespace, ``+``, ``_`` or non-ASCII digits), and the bounds reject NaN, infinities,
non-positive prices and negative sizes. Lax mode never turns a number into a ``str``."""

_levels_decoder = msgspec.json.Decoder(Levels, strict=False)


def levels(raw: msgspec.Raw | bytes) -> list[Level]:
    """One side's wire levels, kept as ``msgspec.Raw`` by a strict decoder → float levels in
    one C pass (a Python loop of ``float()`` and range checks costs several times more)."""
    try:
        return _levels_decoder.decode(raw)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"book levels: {exc}") from None


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
