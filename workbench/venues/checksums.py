"""CRC32 book checksums as Kraken and OKX compute them: over their own text of the book.

A checksum proves something only if our text of the book is byte for byte the venue's, so
the number formatting is the whole difficulty:

- Kraken renders every price and quantity with the pair's fixed precision (``price_precision``
  / ``qty_precision`` from its instrument channel), drops the ``.`` and leading zeros. Its
  wire numbers are JSON numbers, so ``0.5660`` arrives as ``0.566``: ``str``/``repr`` of the
  value gives ``566``, the venue means ``5660``, and every checksum fails (Kraken's own
  MATIC/USD example: 3830085102 instead of 2439117997).
- OKX CRC32s its exact wire strings (``"3366.1"``, ``"7"``); the OKX protocol keeps them and
  uses :func:`plain` only for a level whose wire text it no longer has.

Nothing here uses exponent notation: ``5e-05`` would be a different string from ``0.00005``.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from decimal import Decimal

_SIGN_BIT = 1 << 31
_WRAP = 1 << 32


def fixed_digits(value: float, decimals: int) -> str:
    """Kraken's text of one number: ``decimals`` fixed places, ``.`` removed, zeros stripped.

    Fixed-point formatting of the double is exact for every wire number of at most 15
    significant digits (a double holds any 15-digit decimal), e.g. a quantity below 10^7 at 8
    decimals; it never produces an exponent."""
    return f"{value:.{decimals}f}".replace(".", "").lstrip("0")


def kraken_checksum(level_texts: Iterable[str]) -> int:
    """Unsigned CRC32 of the concatenated level texts: top-10 asks ascending, then top-10
    bids descending, each ``fixed_digits(price) + fixed_digits(qty)``."""
    return zlib.crc32("".join(level_texts).encode("ascii"))


def okx_checksum(bids: Sequence[str], asks: Sequence[str]) -> int:
    """Signed CRC32 of ``bid1:ask1:bid2:ask2:…`` over ``"px:sz"`` texts (top 25, best first);
    when one side runs out the other continues alone."""
    parts: list[str] = []
    append = parts.append
    n_bids = len(bids)
    n_asks = len(asks)
    for i in range(max(n_bids, n_asks)):
        if i < n_bids:
            append(bids[i])
        if i < n_asks:
            append(asks[i])
    return signed32(zlib.crc32(":".join(parts).encode("ascii")))


def signed32(value: int) -> int:
    """An unsigned 32-bit value read as two's-complement signed, as OKX publishes CRC32."""
    return value - _WRAP if value >= _SIGN_BIT else value


def plain(value: float) -> str:
    """The shortest decimal text that reads back as ``value``, without exponent or a
    trailing ``.0``: ``8477.0`` → ``"8477"``, ``5e-05`` → ``"0.00005"``."""
    text = repr(value)
    if "e" in text:
        text = format(Decimal(text), "f")
    return text.removesuffix(".0")
