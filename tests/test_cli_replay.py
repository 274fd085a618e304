"""`workbench replay DB`: a summary a user can check against the recording, and a playback into
another file that replays identically — stopped early by a signal, it keeps what was played."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

import workbench
from tests.e2e import ENV
from tests.test_cli_record import workbench as run_workbench
from tests.test_replay import session  # noqa: F401 (the recorded session fixture)
from workbench.cli import main
from workbench.events import Applied

SYMS = ("BTC-USD", "ETH-USD")


def payload(events: list[Applied]) -> list[tuple[str, object]]:
    return [(e.kind, e.event) for e in events]


def test_the_summary_counts_what_the_recording_holds(
    session: tuple,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, log, truth = session
    assert main(["replay", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{path}: {len(log):,} events, ")
    for symbol in SYMS:
        kinds = Counter(e.kind for e in log if getattr(e.event, "symbol", None) == symbol)
        counts = ", ".join(f"{k} {n:,}" for k, n in sorted(kinds.items()))
        best = f"{float(truth[symbol]['bids'][0][0])} / {float(truth[symbol]['asks'][0][0])}"
        line = next(line for line in out.splitlines() if line.startswith(f"  sim {symbol}: "))
        assert line.startswith(f"  sim {symbol}: {counts} (")
        assert line.endswith(f"book at the end {best}")
    incidents = Counter(e.event.kind for e in log if e.kind == "quality")
    assert "  quality: " + ", ".join(f"{k} {n}" for k, n in sorted(incidents.items())) in out

    assert main(["replay", str(path), "--symbols", SYMS[0], "--kinds", "trade"]) == 0
    trades = sum(e.kind == "trade" and e.event.symbol == SYMS[0] for e in log)
    assert capsys.readouterr().out.startswith(f"{path}: {trades:,} events, ")
    assert main(["replay", str(path), "--exchange", "kraken"]) == 0
    assert capsys.readouterr().out == f"{path}: no events match\n"


def test_into_plays_the_recording_into_a_file_that_replays_the_same(
    session: tuple,  # noqa: F811
    tmp_path: Path,
) -> None:
    path, log, _ = session
    out = tmp_path / "copy.duckdb"
    done = run_workbench("replay", str(path), "--into", str(out))
    assert done.returncode == 0, done.stderr
    assert f"sim BTC-USD, ETH-USD: {len(log):,} events (" in done.stdout
    assert payload(list(workbench.replay(out))) == payload(log)


def test_a_signal_stops_a_paced_playback_and_keeps_what_was_played(
    session: tuple,  # noqa: F811
    tmp_path: Path,
) -> None:
    path, log, _ = session
    out = tmp_path / "slow.duckdb"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "workbench",
            "replay",
            str(path),
            "--into",
            str(out),
            "--speed",
            "0.05",
            "--progress",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().startswith(f"replaying {path} into {out} at 0.05x")
        assert proc.stdout.readline().startswith("committed ")  # something was played
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    match = re.search(r": ([\d,]+) events \(.*\(stopped early\)$", stdout.strip())
    assert match is not None, stdout
    played = int(match.group(1).replace(",", ""))
    assert 0 < played < len(log)
    assert payload(list(workbench.replay(out))) == payload(log[:played])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["missing.duckdb"], "no recording at missing.duckdb"),
        (["{db}", "--speed", "2"], "--speed is for playing into a file"),
        (["{db}", "--progress"], "--progress is for playing into a file"),
        (["{db}", "--into", "{db}"], "--into must be another file"),
        (["{db}", "--into", "x.duckdb", "--kinds", "trade"], "--kinds chooses what the summary"),
        (["{db}", "--kinds", "trades"], "unknown event kinds"),
        (["{db}", "--into", "y.duckdb", "--exchange", "kraken"], "holds no kraken data"),
    ],
)
def test_mistakes_exit_2_with_one_line(
    session: tuple,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    args: list[str],
    message: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    path = session[0]
    assert main(["replay", *(a.format(db=path) for a in args)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("workbench replay: error: ") and message in err
    assert err.count("\n") == 1
