"""Bar intervals: one canonical name each, 1 s to 1 d, and only lengths that tile a day."""

from __future__ import annotations

import pytest

from workbench.core.intervals import Interval, check_coarser, parse_interval
from workbench.errors import UsageError


@pytest.mark.parametrize(
    ("text", "seconds", "name"),
    [
        ("1s", 1, "1s"),
        ("1m", 60, "1m"),
        ("60s", 60, "1m"),
        ("90m", 5_400, "90m"),
        ("4h", 14_400, "4h"),
        ("24h", 86_400, "1d"),
        ("1d", 86_400, "1d"),
        (" 15m ", 900, "15m"),
    ],
)
def test_intervals_parse_to_seconds_and_one_canonical_name(
    text: str, seconds: int, name: str
) -> None:
    interval = parse_interval(text)
    assert interval == Interval(seconds)
    assert interval.micros == seconds * 1_000_000
    assert interval.name == name == str(interval)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("7x", "write a whole number and a unit"),
        ("m", "write a whole number and a unit"),
        ("1.5m", "write a whole number and a unit"),
        ("-1m", "write a whole number and a unit"),
        ("0s", "1s to 1d"),
        ("2d", "1s to 1d"),
        ("7m", "must divide a day"),
        ("5h", "must divide a day"),
    ],
)
def test_bad_intervals_are_usage_errors_that_say_what_is_wrong(text: str, reason: str) -> None:
    with pytest.raises(UsageError, match=reason):
        parse_interval(text)


def test_an_interval_passes_through_parse_unchanged() -> None:
    interval = parse_interval("5m")
    assert parse_interval(interval) is interval


def test_coarser_bars_need_a_whole_multiple_of_the_finer_interval() -> None:
    check_coarser(parse_interval("1m"), parse_interval("5m"))
    check_coarser(parse_interval("1h"), parse_interval("1d"))
    with pytest.raises(UsageError, match="not a whole multiple"):
        check_coarser(parse_interval("2m"), parse_interval("15m"))
    with pytest.raises(UsageError, match="not a whole multiple"):
        check_coarser(parse_interval("5m"), parse_interval("1m"))
