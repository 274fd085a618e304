"""JSON logs: one object a line, extras kept, secrets masked, anything made serializable."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from workbench.runner.jsonlog import iso_utc, remove_json_logging, setup_json_logging

Lines = Callable[[], list[dict[str, Any]]]
log = logging.getLogger("workbench.test.jsonlog")


@pytest.fixture
def lines() -> Iterator[Lines]:
    """JSON logging into a buffer for the test; the parsed lines on call."""
    stream = io.StringIO()
    handler = setup_json_logging(stream)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        remove_json_logging(handler)


def test_each_record_is_one_json_line_with_the_core_fields(lines: Lines) -> None:
    log.info("fill %s at %.1f", "BTC-USD", 65000.0)
    log.warning("two\nlines stay one")
    first, second = lines()
    assert first["level"] == "INFO"
    assert first["logger"] == "workbench.test.jsonlog"
    assert first["message"] == "fill BTC-USD at 65000.0"
    assert first["thread"] == "MainThread"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", first["ts"])
    assert (second["level"], second["message"]) == ("WARNING", "two\nlines stay one")
    assert "exc" not in first


def test_ts_is_utc_with_microseconds() -> None:
    at = datetime(2026, 5, 9, 7, 35, 25, 123456, tzinfo=UTC)
    assert iso_utc(at.timestamp()) == "2026-05-09T07:35:25.123456Z"


def test_extra_fields_appear_at_the_top_level(lines: Lines) -> None:
    log.info("order", extra={"order_id": "wb-1", "qty": 0.5, "tags": ("a", "b"), "level": 3})
    (line,) = lines()
    assert line["order_id"] == "wb-1"
    assert line["qty"] == 0.5
    assert line["tags"] == ["a", "b"]
    assert (line["level"], line["level_"]) == ("INFO", 3)  # a clash keeps both


def test_the_exception_text_is_under_exc(lines: Lines) -> None:
    try:
        raise ValueError("bad tick")
    except ValueError:
        log.exception("engine failed")
    (line,) = lines()
    assert line["level"] == "ERROR"
    assert line["exc"].startswith("Traceback (most recent call last):")
    assert line["exc"].endswith("ValueError: bad tick")


@pytest.mark.parametrize("key", ["api_key", "KEY", "client_secret", "authToken", "Password"])
def test_secret_fields_are_masked(lines: Lines, key: str) -> None:
    log.info("connecting", extra={key: "hunter2"})
    (line,) = lines()
    assert line[key] == "***"
    assert "hunter2" not in json.dumps(line)


def test_secrets_nested_in_a_field_are_masked_too(lines: Lines) -> None:
    log.info("config", extra={"venue": {"name": "kraken", "auth": {"api_secret": "s", "n": 1}}})
    (line,) = lines()
    assert line["venue"] == {"name": "kraken", "auth": {"api_secret": "***", "n": 1}}


def test_values_json_cannot_hold_become_strings(lines: Lines) -> None:
    class Opaque:
        def __str__(self) -> str:
            return "opaque!"

    at = datetime(2026, 5, 9, tzinfo=UTC)
    log.info("odd", extra={"obj": Opaque(), "at": at, "nan": float("nan"), "ids": {7}})
    (line,) = lines()
    assert line["obj"] == "opaque!"
    assert line["at"] == str(at)
    assert line["nan"] == "nan"
    assert line["ids"] == [7]


def test_remove_takes_the_handler_off_and_restores_the_level() -> None:
    root = logging.getLogger()
    before = root.level
    stream = io.StringIO()
    handler = setup_json_logging(stream, level=logging.DEBUG)
    assert handler in root.handlers and root.level == logging.DEBUG
    remove_json_logging(handler)
    log.warning("after removal")
    assert handler not in root.handlers
    assert root.level == before
    assert stream.getvalue() == ""
