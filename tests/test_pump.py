"""The UI pump: ticks at its rate on a named daemon thread, skips instead of bursting,
survives render errors, and stops (joined) when asked — also from inside a render."""

from __future__ import annotations

import math
import threading
import time

import pytest

from tests.e2e import wait_for
from workbench.errors import UsageError
from workbench.notebook.pump import UIPump


def pump_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"wb-pump-{name}"]


def test_it_ticks_at_roughly_its_rate_on_a_named_daemon_thread_until_stopped() -> None:
    ticks: list[str] = []
    pump = UIPump(lambda: ticks.append(threading.current_thread().name), rate=20, name="rate")
    pump.start()
    (thread,) = pump_threads("rate")
    assert thread.name == "wb-pump-rate" and thread.daemon and pump.alive
    time.sleep(1.0)
    pump.stop()
    assert not pump.alive and pump_threads("rate") == []
    count = len(ticks)
    # ~20 expected; generous bounds: this pins "it ticks repeatedly, and not flat out"
    assert 5 <= count <= 30, count
    assert set(ticks) == {"wb-pump-rate"}
    time.sleep(0.2)
    assert len(ticks) == count  # nothing after stop()
    assert pump.stats.ticks == count and pump.stats.errors == 0


def test_a_slow_render_skips_the_ticks_it_overran_instead_of_firing_them_late() -> None:
    ends: list[float] = []

    def render() -> None:
        if len(ends) < 3:
            time.sleep(0.3)  # each overruns the 0.1 s period by two ticks or more
        ends.append(time.monotonic())

    pump = UIPump(render, rate=10, name="slow").start()
    try:
        assert wait_for(lambda: len(ends) >= 8, 10)
    finally:
        pump.stop()
    # A pump that caught up would fire the six-plus overrun ticks back to back right after
    # the slow renders; this one stays on its grid: at most ~2 ticks in the next 0.25 s.
    burst = [t for t in ends[3:] if t - ends[2] < 0.25]
    assert len(burst) <= 3, [round(t - ends[2], 3) for t in ends[3:]]
    assert pump.stats.skipped >= 6
    assert pump.stats.render_max_ms >= 300  # the slow renders were measured (sleep bound)


def test_a_render_error_is_counted_reported_and_the_pump_keeps_ticking() -> None:
    calls = 0
    reported: list[Exception] = []

    def render() -> None:
        nonlocal calls
        calls += 1
        if calls % 2:
            raise ValueError(f"bad frame {calls}")

    pump = UIPump(render, rate=50, name="errors", on_error=reported.append).start()
    try:
        assert wait_for(lambda: pump.stats.ticks >= 8, 10)
        assert pump.alive
    finally:
        pump.stop()
    stats = pump.stats
    assert stats.errors == len(reported) == (stats.ticks + 1) // 2
    assert all(isinstance(e, ValueError) for e in reported)
    assert stats.last_error is not None and stats.last_error.startswith("ValueError: bad frame")


def test_a_failing_error_handler_does_not_kill_the_pump() -> None:
    def render() -> None:
        raise RuntimeError("render")

    def on_error(exc: Exception) -> None:
        raise RuntimeError("handler")

    pump = UIPump(render, rate=50, name="handler", on_error=on_error).start()
    try:
        assert wait_for(lambda: pump.stats.errors >= 5, 10)
        assert pump.alive
    finally:
        pump.stop()
    assert pump.stats.last_error == "RuntimeError: render"


def test_stop_called_from_inside_render_ends_the_loop_after_that_tick() -> None:
    pump: UIPump

    def render() -> None:
        if pump.stats.ticks == 2:  # the third render
            pump.stop()  # must not try to join its own thread

    pump = UIPump(render, rate=50, name="self-stop").start()
    assert wait_for(lambda: not pump.alive, 10)
    assert pump.stats.ticks == 3


def test_stats_before_the_first_tick_are_zero_and_nan() -> None:
    pump = UIPump(lambda: None, name="idle")
    stats = pump.stats
    assert (stats.ticks, stats.skipped, stats.errors, stats.last_error) == (0, 0, 0, None)
    assert math.isnan(stats.render_p50_ms) and math.isnan(stats.render_max_ms)
    pump.stop()  # never started: nothing to join
    assert not pump.alive


@pytest.mark.parametrize("rate", [0, -1, float("nan"), float("inf")])
def test_a_rate_that_is_not_a_positive_number_is_a_usage_error(rate: float) -> None:
    with pytest.raises(UsageError, match="positive number of Hz"):
        UIPump(lambda: None, rate=rate, name="bad")


def test_a_pump_starts_once() -> None:
    pump = UIPump(lambda: None, rate=50, name="once").start()
    try:
        with pytest.raises(UsageError, match="already started"):
            pump.start()
    finally:
        pump.stop()
