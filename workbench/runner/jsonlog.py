"""Logs as one JSON object a line, for the headless runner (and anything that ships its logs).

Each record becomes::

    {"ts": "2026-05-09T07:35:25.123456Z", "level": "WARNING", "logger": "workbench.runner",
     "thread": "MainThread", "message": "...", <extra fields>..., "exc": "Traceback ..."}

``ts`` is the record's creation time, ISO-8601 in UTC with microseconds. Fields passed with
``extra=`` appear at the top level (one that would shadow a key above gets a trailing ``_``);
``exc`` (the formatted traceback) and ``stack`` appear only when the record carries them.

Secrets never reach the log through fields: the value of every field, at any depth of nested
mappings, whose key contains ``key``, ``secret``, ``token`` or ``password`` (any case) is
written as ``"***"``. Free text in the message itself cannot be masked: never format a secret
into it. Values JSON cannot hold (objects, datetimes, NaN) are written as their ``str``.
"""

from __future__ import annotations

import json
import logging
import math
import re
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import IO, Any

MASK = "***"
SECRET_KEY = re.compile(r"key|secret|token|password", re.IGNORECASE)
"""A field whose key matches this (anywhere in the key) has its value masked."""

_RECORD_ATTRS = frozenset(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {
    "message",
    "asctime",
    "taskName",  # Python 3.12+
}
"""Attributes every LogRecord has: whatever else a record carries came from ``extra=``."""
_OWN_KEYS = ("ts", "level", "logger", "thread", "message", "exc", "stack")


def iso_utc(seconds: float) -> str:
    """A Unix time as ISO-8601 in UTC with microseconds: ``2026-05-09T07:35:25.123456Z``."""
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def jsonable(value: object) -> object:
    """``value`` made safe for :func:`json.dumps` and for a log: secrets masked (see the
    module docstring), mapping keys as strings, sequences and sets as lists, non-finite
    floats and anything else JSON has no type for as ``str``."""
    if isinstance(value, Mapping):
        return _fields(value)
    if isinstance(value, list | tuple | set | frozenset):
        return [jsonable(v) for v in value]
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if value is None or isinstance(value, str | int):
        return value
    return str(value)


def _fields(mapping: Mapping[Any, object]) -> dict[str, object]:
    return {str(k): MASK if SECRET_KEY.search(str(k)) else jsonable(v) for k, v in mapping.items()}


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line (schema in the module docstring)."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "thread": record.threadName,
            "message": record.getMessage(),
        }
        extras = {k: v for k, v in record.__dict__.items() if k not in _RECORD_ATTRS}
        for key, value in _fields(extras).items():
            out[f"{key}_" if key in _OWN_KEYS else key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            out["exc"] = record.exc_text
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return json.dumps(out, ensure_ascii=False, default=str)


class _JsonHandler(logging.StreamHandler[IO[str]]):
    """The handler :func:`setup_json_logging` installs; remembers the root level it replaced."""

    def __init__(self, stream: IO[str], previous_level: int) -> None:
        super().__init__(stream)
        self.previous_level = previous_level


def setup_json_logging(stream: IO[str] | None = None, level: int = logging.INFO) -> logging.Handler:
    """Log every record at ``level`` and above to ``stream`` (default stderr) as JSON lines.

    Installs one handler on the root logger and sets the root level; other handlers already
    there are left alone (the runner calls this before anything else configures logging).
    :func:`remove_json_logging` undoes both."""
    root = logging.getLogger()
    handler = _JsonHandler(sys.stderr if stream is None else stream, root.level)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    return handler


def remove_json_logging(handler: logging.Handler) -> None:
    """Take ``handler`` (from :func:`setup_json_logging`) off the root logger, flush it and
    restore the root level it replaced. The stream itself is not closed."""
    root = logging.getLogger()
    root.removeHandler(handler)
    handler.flush()
    if isinstance(handler, _JsonHandler):
        root.setLevel(handler.previous_level)
