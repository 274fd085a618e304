"""CRC32 book checksums: the venues' published vectors, and the formatting that breaks them."""

from __future__ import annotations

import zlib

import pytest

from workbench.venues.checksums import (
    fixed_digits,
    kraken_checksum,
    okx_checksum,
    plain,
    signed32,
)

# Kraken's documented MATIC/USD book (docs.kraken.com, WebSocket v2 `book` channel example):
# price precision 4, qty precision 8, JSON numbers as sent (0.566 means 0.5660).
MATIC_BIDS = [
    (0.5666, 4831.75496356),
    (0.5665, 6658.22734739),
    (0.5664, 18724.91513344),
    (0.5663, 11563.92544914),
    (0.5662, 14006.65365711),
    (0.5661, 17454.85679807),
    (0.566, 18097.1547),
    (0.5659, 33644.89175666),
    (0.5658, 148.3464),
    (0.5657, 606.70854372),
]
MATIC_ASKS = [
    (0.5668, 4410.79769741),
    (0.5669, 4655.40412487),
    (0.567, 49844.89424998),
    (0.5671, 24306.41678),
    (0.5672, 29783.25223475),
    (0.5673, 57234.71239278),
    (0.5674, 45065.04744),
    (0.5675, 5912.76380354),
    (0.5676, 42514.92434778),
    (0.5677, 36304.0847022),
]


def kraken_levels(bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> list[str]:
    return [fixed_digits(p, 4) + fixed_digits(q, 8) for p, q in [*asks, *bids]]


def naive_kraken(bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> int:
    """What a client gets formatting the numbers as they print, without the precision."""
    text = "".join(
        str(p).replace(".", "").lstrip("0") + str(q).replace(".", "").lstrip("0")
        for p, q in [*asks, *bids]
    )
    return zlib.crc32(text.encode())


def test_kraken_matic_snapshot_vector() -> None:
    assert kraken_checksum(kraken_levels(MATIC_BIDS, MATIC_ASKS)) == 2439117997


def test_kraken_matic_update_vector() -> None:
    bids = [(p, 1098.3947558 if p == 0.5657 else q) for p, q in MATIC_BIDS]
    assert kraken_checksum(kraken_levels(bids, MATIC_ASKS)) == 2114181697


def test_kraken_formatting_without_the_precision_is_the_documented_wrong_answer() -> None:
    ours = kraken_checksum(kraken_levels(MATIC_BIDS, MATIC_ASKS))
    assert naive_kraken(MATIC_BIDS, MATIC_ASKS) == 3830085102
    assert ours != 3830085102


def test_kraken_checksum_is_crc32_of_asks_then_bids_hand_built() -> None:
    # BTC/USD, precision 1 / 8: ask 45285.2 × 0.001, bid 45283.5 × 0.1
    levels = [fixed_digits(45285.2, 1) + fixed_digits(0.001, 8)]
    levels.append(fixed_digits(45283.5, 1) + fixed_digits(0.1, 8))
    assert levels == ["452852100000", "45283510000000"]
    assert kraken_checksum(levels) == zlib.crc32(b"45285210000045283510000000")


@pytest.mark.parametrize(
    ("value", "decimals", "text"),
    [
        (0.566, 4, "5660"),
        (1098.3947558, 8, "109839475580"),
        (0.00000304, 8, "304"),
        (5e-05, 8, "5000"),  # never "5e-05"
        (30000.0, 1, "300000"),
        (0.0001, 4, "1"),
        (9999999.99999999, 8, "999999999999999"),  # 15 significant digits: still exact
    ],
)
def test_fixed_digits(value: float, decimals: int, text: str) -> None:
    assert fixed_digits(value, decimals) == text


def test_okx_vectors() -> None:
    assert okx_checksum(["3366.1:7", "3366:6"], ["3366.8:9", "3368:8"]) == -1881014294
    assert okx_checksum(["3366.1:7"], ["3366.8:9", "3368:8", "3372:8"]) == 831078360


def test_okx_is_the_signed_crc32_of_the_interleaved_string() -> None:
    text = b"3366.1:7:3366.8:9:3366:6:3368:8"
    assert zlib.crc32(text) == 2413953002  # > 2**31: OKX reads it as negative
    assert okx_checksum(["3366.1:7", "3366:6"], ["3366.8:9", "3368:8"]) == 2413953002 - 2**32
    assert okx_checksum(["1:2"], []) == signed32(zlib.crc32(b"1:2"))
    assert okx_checksum([], []) == 0


def test_signed32() -> None:
    assert signed32(0) == 0
    assert signed32(2**31 - 1) == 2**31 - 1
    assert signed32(2**31) == -(2**31)
    assert signed32(2**32 - 1) == -1


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (8477.0, "8477"),
        (3366.1, "3366.1"),
        (5e-05, "0.00005"),
        (1e-08, "0.00000001"),
        (1e16, "10000000000000000"),
        (0.12060306, "0.12060306"),
    ],
)
def test_plain_has_no_exponent_and_no_trailing_point_zero(value: float, text: str) -> None:
    assert plain(value) == text
