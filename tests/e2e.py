"""Helpers for end-to-end tests that run `workbench sim` and `workbench record` as processes."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def sim_process(*args: str) -> Iterator[tuple[subprocess.Popen[str], int]]:
    """Run `workbench sim` on a free port; yields (process, port) once it listens."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "workbench", "sim", "--port", str(port), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening" in line, line + (proc.stderr.read() if proc.stderr else "")
        yield proc, port
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def record_cmd(port: int, db: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "workbench",
        "record",
        "sim",
        "BTC-USD",
        "ETH-USD",
        "--db",
        str(db),
        "--ws-url",
        f"ws://127.0.0.1:{port}/ws",
        "--rest-url",
        f"http://127.0.0.1:{port}",
        *args,
    ]


def run_record(
    port: int, db: Path, *args: str, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `workbench record sim ...` to completion, capturing its output."""
    return subprocess.run(
        record_cmd(port, db, *args), capture_output=True, text=True, timeout=timeout, env=ENV
    )


def start_record(port: int, db: Path, *args: str) -> subprocess.Popen[str]:
    """Start `workbench record sim ...` in the background, stdout and stderr piped."""
    return subprocess.Popen(
        record_cmd(port, db, *args),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def table_counts(text: str, prefix: str, sep: str) -> dict[str, int]:
    """Table counts from a ``committed trades=12 ...`` or ``rows: trades=12, ...`` line."""
    body = text.removeprefix(prefix).strip()
    return {k: int(v) for k, v in (item.split("=") for item in body.split(sep) if item)}


def read_ledger(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def query(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def wait_for(predicate: Any, timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
