"""The UI pump: ticks at its rate on a named daemon thread, skips instead of bursting,
survives render errors, and stops (joined) when asked — also from inside a render."""

from __future__ import annotations

import math
import threading

import pytest

from tests.e2e import wait_for
from workbench.clock import ManualClock
from workbench.errors import UsageError
from workbench.notebook.pump import UIPump


def pump_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == f"wb-pump-{name}"]


def schedule_clock() -> ManualClock:
    """Time that moves only when the pump waits (by what it asks for) or a render spends it
    (``advance``): the schedule is exact, whatever the machine's load."""
    return ManualClock(advance_on_wait=True)


def run_until(pump: UIPump, starts: list[float], n: int) -> None:
    """Start ``pump`` and wait for the render that stops it after ``n`` ticks."""
    pump.start()
    assert wait_for(lambda: not pump.alive, 10), starts
    assert len(starts) == n


def test_it_ticks_on_a_named_daemon_thread_until_stopped() -> None:
    ticks: list[str] = []
    pump = UIPump(lambda: ticks.append(threading.current_thread().name), rate=50, name="rate")
    pump.start()
    (thread,) = pump_threads("rate")
    assert thread.name == "wb-pump-rate" and thread.daemon and pump.alive
    assert wait_for(lambda: len(ticks) >= 3, 10)
    pump.stop(timeout=10)
    assert not pump.alive and pump_threads("rate") == []
    count = len(ticks)
    assert set(ticks) == {"wb-pump-rate"}
    assert pump.stats.ticks == count and pump.stats.errors == 0


def test_ticks_start_on_the_grid_of_its_rate() -> None:
    clock = schedule_clock()
    starts: list[float] = []
    pump: UIPump

    def render() -> None:
        starts.append(clock.now())
        if len(starts) == 8:
            pump.stop()

    pump = UIPump(render, rate=4, name="grid", clock=clock)
    run_until(pump, starts, 8)
    assert starts == [k / 4 for k in range(8)]
    stats = pump.stats
    assert (stats.ticks, stats.skipped, stats.lag_seconds, stats.render_max_ms) == (8, 0, 0, 0)


def test_a_slow_render_skips_the_ticks_it_overran_instead_of_firing_them_late() -> None:
    clock = schedule_clock()
    starts: list[float] = []
    pump: UIPump

    def render() -> None:
        starts.append(clock.now())
        if len(starts) <= 3:
            clock.advance(0.75)  # three periods of 0.25 s: the next two ticks are overrun
        if len(starts) == 8:
            pump.stop()

    pump = UIPump(render, rate=4, name="slow", clock=clock)
    run_until(pump, starts, 8)
    # A pump that caught up would fire the overrun ticks back to back after each slow render
    # (0.75, 0.75, ...); this one waits for the next tick of its grid.
    assert starts == [0.0, 1.0, 2.0, 3.0, 3.25, 3.5, 3.75, 4.0]
    stats = pump.stats
    assert stats.skipped == 9 and stats.lag_seconds == 0
    assert stats.render_max_ms == 750 and stats.render_seconds == 2.25


def test_stop_cuts_the_wait_for_the_next_tick_short() -> None:
    ticks: list[int] = []
    pump = UIPump(lambda: ticks.append(1), rate=0.01, name="patient").start()
    assert wait_for(lambda: ticks, 10)
    pump.stop(timeout=30)  # the next tick is 100 s away: only the stop event ends the wait
    assert not pump.alive and len(ticks) == 1


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
