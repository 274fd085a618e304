"""`workbench record` and `workbench sim` as an operator runs them: signals, exit codes, messages.

The CLI promises exit 0 after SIGINT/SIGTERM once everything is flushed, 1 for a runtime
failure, 2 for a usage mistake, and a one-line message instead of a traceback. The summary it
prints must agree with what the database holds once the process is gone.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e import ENV, query, run_record, sim_process, start_record, table_counts
from workbench.venues import VENUES

SUMMARY = re.compile(
    r"^sim:BTC-USD,ETH-USD: \d+ msgs, (\d+) trades, .*; books BTC-USD:ok, ETH-USD:ok$", re.M
)


def workbench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "workbench", *args],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=60,
    )


def rows_line(stdout: str) -> dict[str, int]:
    lines = [line for line in stdout.splitlines() if line.startswith("rows: ")]
    assert len(lines) == 1, stdout
    return table_counts(lines[0], "rows: ", ", ")


def summary_trades(stdout: str) -> int:
    match = SUMMARY.search(stdout)
    assert match is not None, stdout
    return int(match.group(1))


def assert_database_holds(db: Path, reported: dict[str, int]) -> None:
    for table, n in reported.items():
        assert query(db, f"SELECT count(*) FROM {table}") == [(n,)], table


def start_recorder(port: int, db: Path) -> subprocess.Popen[str]:
    """A `workbench record --progress` that has committed trades and book snapshots."""
    proc = start_record(port, db, "--progress")
    assert proc.stdout is not None and proc.stderr is not None
    for line in proc.stdout:
        if line.startswith("committed "):
            committed = table_counts(line, "committed ", " ")
            if committed.get("trades", 0) > 0 and committed.get("book_snapshots", 0) > 0:
                return proc
    proc.wait(timeout=10)
    raise AssertionError(f"recorder ended before committing data: {proc.stderr.read()}")


def stop_with(proc: subprocess.Popen[str], sig: signal.Signals) -> tuple[str, str]:
    """Signal a running recorder and collect its output; killed if it does not end."""
    try:
        proc.send_signal(sig)
        return proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_a_signal_ends_recording_with_exit_0_and_a_summary_the_database_confirms(
    tmp_path: Path, sig: signal.Signals
) -> None:
    db = tmp_path / "rec.duckdb"
    with sim_process("--seed", "3", "--rate", "200") as (_, port):
        proc = start_recorder(port, db)
        out, err = stop_with(proc, sig)
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    reported = rows_line(out)
    assert reported["trades"] > 0 and reported["book_snapshots"] > 0
    assert summary_trades(out) == reported["trades"]
    assert_database_holds(db, reported)


def test_duration_ends_the_run_by_itself_with_exit_0(tmp_path: Path) -> None:
    db = tmp_path / "timed.duckdb"
    with sim_process("--seed", "4", "--rate", "200") as (_, port):
        done = run_record(port, db, "--duration", "1.5")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    reported = rows_line(done.stdout)
    assert reported["book_snapshots"] > 0
    assert summary_trades(done.stdout) == reported["trades"]
    assert_database_holds(db, reported)
    writer = re.search(
        r"^writer: (\d+) commits, \d+ duplicate rows ignored, 0 rejected, ", done.stdout, re.M
    )
    assert writer is not None and int(writer[1]) >= 1, done.stdout


def test_sim_without_ws_url_records_from_an_embedded_simulator_in_the_same_process(
    tmp_path: Path,
) -> None:
    db = tmp_path / "embedded.duckdb"
    done = workbench(
        "record", "sim", "BTC-USD", "ETH-USD", "--db", str(db), "--duration", "2",
        "--seed", "3", "--gap", "0.01",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    first = done.stdout.splitlines()[0]
    assert re.fullmatch(
        rf"recording sim:BTC-USD,ETH-USD from an embedded simulator on "
        rf"ws://127\.0\.0\.1:\d+/ws into {re.escape(str(db))}",
        first,
    ), first
    reported = rows_line(done.stdout)
    assert reported["trades"] > 0 and reported["book_snapshots"] > 0
    assert summary_trades(done.stdout) == reported["trades"]
    assert_database_holds(db, reported)
    gaps = query(db, "SELECT count(*) FROM quality_events WHERE kind = 'gap'")
    assert gaps[0][0] > 0  # --gap reached the embedded simulator


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "BTC-USD"], f"unknown venue 'nope'; known venues: {', '.join(sorted(VENUES))}"),
        (["sim", "BTC-USD", "--depth", "0"], "--depth must be at least 1, got 0"),
        (
            ["kraken", "BTC/USD", "--depth", "30"],
            "kraken offers book depths 10, 25, 100, 500, 1000 (levels per side); got 30",
        ),
        (
            ["okx", "BTC-USDT", "--depth", "20"],
            "okx offers book depths 1, 5, 400 (levels per side); got 20",
        ),
        (
            ["sim", "NOPE-USD"],
            "the embedded simulator has no symbol NOPE-USD: it knows BTC-USD, ETH-USD "
            "(--sim-symbols BTC-USD,ETH-USD,NOPE-USD adds others)",
        ),
        (["sim", "BTC-USD", "--gap", "2"], "gap is a probability per message"),
        (
            ["sim", "BTC-USD", "--seed", "1", "--ws-url", "ws://127.0.0.1:1/ws"],
            "--seed: only for the embedded simulator (venue sim, no --ws-url)",
        ),
        (["sim", "BTC-USD", "--rest-url", "http://127.0.0.1:1"], "--rest-url needs --ws-url"),
    ],
    ids=[
        "unknown-venue",
        "depth-0",
        "kraken-depth-30",
        "okx-depth-20",
        "unknown-sim-symbol",
        "bad-fault",
        "seed-elsewhere",
        "rest",
    ],
)
def test_usage_mistakes_exit_2_with_one_line_and_leave_no_database(
    tmp_path: Path, args: list[str], message: str
) -> None:
    db = tmp_path / "never.duckdb"
    done = workbench("record", "--db", str(db), *args)
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"workbench record: error: {message}")
    assert not db.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["sim"], "the following arguments are required: SYMBOL"),
        (["sim", "BTC-USD", "--duration", "abc"], "argument --duration: invalid"),
        (["sim", "BTC-USD", "--duration", "0"], "argument --duration: must be > 0, got 0"),
        (["sim", "BTC-USD", "--depth"], "argument --depth: expected one argument"),
    ],
    ids=["missing-symbol", "non-numeric-duration", "zero-duration", "depth-without-value"],
)
def test_argument_errors_exit_2_with_usage_and_no_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    db = tmp_path / "never.duckdb"
    done = workbench("record", "--db", str(db), *args)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last.startswith(f"workbench record: error: {message}"), done.stderr
    assert not db.exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--gap", "2"], "gap is a probability per message and must be within 0..1, got 2.0"),
        (["--rate", "0"], "rate must be above 0"),
        (["--symbols", "BTC-USD,BTC-USD"], "symbols are listed twice: BTC-USD, BTC-USD"),
    ],
    ids=["gap-2", "rate-0", "duplicate-symbol"],
)
def test_sim_with_a_bad_flag_value_exits_2_with_one_line(flags: list[str], message: str) -> None:
    done = workbench("sim", "--port", "0", *flags)
    assert done.returncode == 2
    assert done.stdout == ""  # it never started listening
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"workbench sim: error: {message}")


def test_a_second_recorder_on_the_same_file_exits_1_naming_it(tmp_path: Path) -> None:
    db = tmp_path / "owned.duckdb"
    with sim_process("--seed", "6", "--rate", "200") as (_, port):
        first = start_recorder(port, db)
        try:
            second = run_record(port, db, "--duration", "5")
        finally:
            out, err = stop_with(first, signal.SIGTERM)
    assert second.returncode == 1
    (line,) = second.stderr.splitlines()
    assert line.startswith(f"workbench record: {db.resolve()} is open in another process")
    assert "recording" not in second.stdout
    # The refused second recorder did not disturb the owner.
    assert first.returncode == 0, err
    assert_database_holds(db, rows_line(out))


def test_a_signal_as_soon_as_recording_is_announced_still_ends_it_cleanly(tmp_path: Path) -> None:
    """The ``recording`` line is printed once SIGINT/SIGTERM are handled: a script that
    signals on it never hits the moment before, which would end in a traceback. Exit 0 if
    the venue acknowledged the subscription in time, else 3 (it never did: nothing recorded
    is not success) with the reason; a summary either way."""
    db = tmp_path / "early.duckdb"
    with sim_process("--seed", "5", "--rate", "200") as (_, port):
        proc = start_record(port, db)
        assert proc.stdout is not None
        try:
            first = proc.stdout.readline()
        finally:
            out, err = stop_with(proc, signal.SIGINT)
        assert first.startswith("recording "), first
    assert proc.returncode in (0, 3), err
    assert "Traceback" not in err, err
    if proc.returncode == 3:
        assert err.strip().splitlines()[-1].startswith("workbench record: never subscribed"), err
    assert_database_holds(db, rows_line(out))
