"""A recording played back as a feed: the same events to subscribers, the same rows into
another file, the same books — paced on the Clock, and startable from the notebook."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from IPython.core.interactiveshell import InteractiveShell

import workbench
from tests.e2e import wait_for
from tests.test_magics import magics, shell, usage_error, wb  # noqa: F401 (the shell fixture)
from tests.test_replay import session  # noqa: F401 (the recorded session fixture)
from workbench.clock import ManualClock
from workbench.errors import UsageError
from workbench.events import Applied
from workbench.feeds.replay_feed import ReplayFeed
from workbench.store import Store

SYMS = ("BTC-USD", "ETH-USD")


def payload(events: list[Applied]) -> list[tuple[str, object]]:
    """The events without their ordinals (a file of its own numbers them afresh)."""
    return [(e.kind, e.event) for e in events]


def test_a_replay_feed_plays_the_recording_into_another_file_and_its_subscribers(
    session: tuple,  # noqa: F811
    tmp_path: Path,
) -> None:
    path, log, truth = session
    copy = tmp_path / "copy.duckdb"
    seen: list[Applied] = []
    with Store.open(copy) as out:
        feed = ReplayFeed(path, out.writer)
        assert (feed.exchange, feed.symbols, feed.name) == (
            "sim",
            list(SYMS),
            "replay:session.duckdb",
        )
        feed.subscribe(seen.append)
        feed.start()
        assert feed.wait(60), feed.status()
        feed.stop()
        status = feed.status()
        for symbol, true_book in truth.items():
            with feed.locked():
                book = feed.book(symbol)
                assert book.valid
                assert book.bids() == [(float(p), float(q)) for p, q in true_book["bids"]]
                assert book.asks() == [(float(p), float(q)) for p, q in true_book["asks"]]
            total, tape = feed.recent_trades(symbol)
            assert total == sum(e.kind == "trade" and e.event.symbol == symbol for e in log)
            assert tape[-1] == next(
                e.event for e in reversed(log) if e.kind == "trade" and e.event.symbol == symbol
            )
    assert payload(seen) == payload(log)
    copied = list(workbench.replay(copy))
    assert payload(copied) == payload(log)
    assert [e.ingest_seq for e in seen] == [e.ingest_seq for e in copied]
    assert status.messages == len(log) and not status.running and feed.threads_alive() == []
    assert status.trades == sum(e.kind == "trade" for e in log)


def test_with_a_speed_events_keep_their_recorded_spacing_on_the_clock(
    session: tuple,  # noqa: F811
    tmp_path: Path,
) -> None:
    path, log, _ = session
    first = log[0].time_us
    speed = 10.0

    def due_by(now: float) -> int:
        """Events the feed must have applied once its clock reads ``now``: those before the
        first one not due yet (same arithmetic), since they go out in order."""
        late = ((e.time_us - first) / 1e6 / speed > now for e in log)
        return next((i for i, waits in enumerate(late) if waits), len(log))

    clock = ManualClock()
    with Store.open(tmp_path / "paced.duckdb") as out:
        feed = ReplayFeed(path, out.writer, speed=speed, clock=clock).start()
        try:
            assert clock.wait_for_waits(1)
            assert feed.status().messages == due_by(0.0) < len(log)
            for step in (0.05, 0.1, 0.1):
                waits = clock.waits
                clock.advance(step)
                assert clock.wait_for_waits(waits + 1)
                assert feed.status().messages == due_by(clock.now())
            assert not feed.finished.is_set()
            clock.advance(3600.0)
            assert feed.wait(60)
            assert feed.status().messages == len(log)
        finally:
            feed.stop()


def test_stop_ends_a_paced_replay_early_and_keeps_what_was_applied(
    session: tuple,  # noqa: F811
    tmp_path: Path,
) -> None:
    path, log, _ = session
    clock = ManualClock()
    with Store.open(tmp_path / "early.duckdb") as out:
        feed = ReplayFeed(path, out.writer, speed=1.0, clock=clock).start()
        assert clock.wait_for_waits(1)
        clock.advance(0.5)
        assert clock.wait_for_waits(2)
        applied = feed.status().messages
        feed.stop(timeout=10)
        assert feed.threads_alive() == [] and not feed.finished.is_set()
        out.flush()
        assert len(list(workbench.replay(out))) == applied < len(log)


def test_mistakes_are_usage_errors(session: tuple, tmp_path: Path) -> None:  # noqa: F811
    path, _, _ = session
    with Store.open(tmp_path / "target.duckdb") as out:
        with pytest.raises(UsageError, match="no recording at"):
            ReplayFeed(tmp_path / "nope.duckdb", out.writer)
        with pytest.raises(UsageError, match="speed must be a positive number"):
            ReplayFeed(path, out.writer, speed=0)
        with pytest.raises(UsageError, match=r"holds no sim \['DOGE-USD'\]"):
            ReplayFeed(path, out.writer, symbols=["DOGE-USD"])
        with pytest.raises(UsageError, match="holds no kraken data"):
            ReplayFeed(path, out.writer, exchange="kraken")
        feed = ReplayFeed(path, out.writer, symbols=[SYMS[1]])
        with pytest.raises(UsageError, match="does not replay 'BTC-USD'"):
            feed.book(SYMS[0])
    with (
        workbench.open(tmp_path / "own.duckdb") as bench,
        pytest.raises(UsageError, match="this workbench's own file"),
    ):
        bench.start_replay_feed(tmp_path / "own.duckdb")


def test_the_notebook_starts_a_replay_feed_the_widgets_can_read(
    shell: InteractiveShell,  # noqa: F811
    session: tuple,  # noqa: F811
    capsys: pytest.CaptureFixture[str],
) -> None:
    path, log, _ = session
    wb(shell, f"feed start replay:{path} {SYMS[0]} --speed 1000 --name again")
    printed = capsys.readouterr().out
    assert f"feed 'again' replaying {SYMS[0]} (sim) from {path} at 1000x" in printed
    widget = wb(shell, f"book {SYMS[0]} --feed again")
    assert widget is not None
    expected = sum(1 for e in log if getattr(e.event, "symbol", SYMS[0]) in (SYMS[0], None))
    feed = magics(shell).session.workbench.feed("again")
    assert wait_for(lambda: feed.status().messages == expected, 60), feed.status()
    wb(shell, "feed stop again")
    assert "stopped feed 'again'" in capsys.readouterr().out


def test_replay_flags_and_live_flags_do_not_mix(shell: InteractiveShell, session: tuple) -> None:  # noqa: F811
    path, _, _ = session
    assert "--speed is for replay:PATH feeds" in usage_error(
        shell, "feed start sim BTC-USD --speed 2"
    )
    assert "name the symbols to record" in usage_error(shell, "feed start sim")
    assert "--redundant: not for a replay feed" in usage_error(
        shell, f"feed start replay:{path} --redundant"
    )
    assert "no recording at" in usage_error(shell, "feed start replay:missing.duckdb")
    assert not any(t.name.startswith("wb-replay") for t in threading.enumerate())
