"""The runner's metrics, scraped over real HTTP from a real MetricsServer on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from workbench.errors import UsageError
from workbench.runner.metrics import LATENCY_BUCKETS, MetricsServer, RunnerMetrics

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def healthy() -> dict[str, Any]:
    return {"ok": True}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def metrics(clock: FakeClock) -> RunnerMetrics:
    return RunnerMetrics("vol_breakout", "BTC-USD", clock=clock)


@pytest.fixture
def server(metrics: RunnerMetrics) -> Iterator[MetricsServer]:
    with MetricsServer(metrics, 0, healthy) as srv:
        yield srv


def get(url: str) -> tuple[int, str, str]:
    """Status, Content-Type and body of a GET, error statuses included."""
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status, reply.headers["Content-Type"], reply.read().decode()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.headers["Content-Type"], exc.read().decode()


def scrape(server: MetricsServer) -> Samples:
    status, _, text = get(server.url + "/metrics")
    assert status == 200
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_scrape_shows_every_update_the_runner_made(
    server: MetricsServer, metrics: RunnerMetrics
) -> None:
    metrics.up(True)
    metrics.restart()
    metrics.feed_message(lag_s=0.002)
    metrics.feed_message(lag_s=0.004)
    metrics.feed_health(valid=False, gaps=3)
    metrics.decision(30e-6)
    metrics.order("submitted")
    metrics.order("submitted")
    metrics.order("filled")
    metrics.fill()
    metrics.reject("max_position")
    metrics.account(equity=10_250.5, pnl=250.5, position=0.25)
    metrics.risk_state("paused")

    got = scrape(server)

    assert got[("workbench_runner_info", (("strategy", "vol_breakout"), ("symbol", "BTC-USD")))]
    assert got[("workbench_runner_up", ())] == 1
    assert got[("workbench_runner_restarts_total", ())] == 1
    assert got[("workbench_feed_messages_total", ())] == 2
    assert got[("workbench_feed_lag_seconds", ())] == 0.004
    assert got[("workbench_feed_gaps_total", ())] == 3
    assert got[("workbench_book_valid", ())] == 0
    assert got[("workbench_decisions_total", ())] == 1
    assert got[("workbench_orders_total", (("status", "submitted"),))] == 2
    assert got[("workbench_orders_total", (("status", "filled"),))] == 1
    assert got[("workbench_fills_total", ())] == 1
    assert got[("workbench_risk_rejects_total", (("reason", "max_position"),))] == 1
    assert got[("workbench_equity_quote", ())] == 10_250.5
    assert got[("workbench_pnl_quote", ())] == 250.5
    assert got[("workbench_position_base", (("symbol", "BTC-USD"),))] == 0.25
    assert got[("workbench_risk_state", ())] == 1


def test_cpu_and_memory_come_from_the_process_collector(server: MetricsServer) -> None:
    got = scrape(server)
    assert got[("process_resident_memory_bytes", ())] > 0
    assert ("process_cpu_seconds_total", ()) in got


def test_decision_latency_buckets_span_10us_to_10ms(
    server: MetricsServer, metrics: RunnerMetrics
) -> None:
    metrics.decision(30e-6)
    metrics.decision(2e-3)
    metrics.decision(0.5)

    got = scrape(server)

    def bucket(le: str) -> float:
        return got[("workbench_decision_latency_seconds_bucket", (("le", le),))]

    assert LATENCY_BUCKETS[0] == 10e-6 and LATENCY_BUCKETS[-1] == 10e-3
    assert bucket("1e-05") == 0
    assert bucket("5e-05") == 1
    assert bucket("0.0025") == 2
    assert bucket("0.01") == 2
    assert bucket("+Inf") == 3
    assert got[("workbench_decision_latency_seconds_count", ())] == 3


def test_message_rate_is_averaged_over_the_sliding_window(
    metrics: RunnerMetrics, clock: FakeClock
) -> None:
    for _ in range(20):  # 20 events in the first 2 s: 10/s since start
        clock.now += 0.1
        metrics.feed_message()
    assert metrics.refresh() == pytest.approx(10.0)
    clock.now += 8.0  # nothing for 8 s: 20 events in the last 10 s
    assert metrics.refresh() == pytest.approx(2.0)
    clock.now += 5.0  # the burst left the window
    assert metrics.refresh() == 0.0


def test_message_age_grows_until_the_next_event(
    server: MetricsServer, metrics: RunnerMetrics, clock: FakeClock
) -> None:
    clock.now += 3.0
    metrics.refresh()
    assert scrape(server)[("workbench_feed_last_message_age_seconds", ())] == 3.0  # since start
    metrics.feed_message()
    clock.now += 1.5
    metrics.refresh()
    got = scrape(server)
    assert got[("workbench_feed_last_message_age_seconds", ())] == 1.5
    assert got[("workbench_feed_messages_per_second", ())] == pytest.approx(1 / 4.5)


def test_gap_counter_follows_the_feeds_cumulative_count_across_a_feed_restart(
    server: MetricsServer, metrics: RunnerMetrics
) -> None:
    metrics.feed_health(valid=True, gaps=2)
    metrics.feed_health(valid=True, gaps=2)
    metrics.feed_health(valid=True, gaps=5)
    metrics.feed_health(valid=True, gaps=1)  # a new feed, counting from zero
    got = scrape(server)
    assert got[("workbench_feed_gaps_total", ())] == 6
    assert got[("workbench_book_valid", ())] == 1


def test_risk_states_map_to_codes_by_severity(
    server: MetricsServer, metrics: RunnerMetrics
) -> None:
    for state, code in (("active", 0), ("killed", 2)):
        metrics.risk_state(state)  # type: ignore[arg-type]
        assert scrape(server)[("workbench_risk_state", ())] == code
    with pytest.raises(UsageError, match="unknown risk state 'halted'"):
        metrics.risk_state("halted")  # type: ignore[arg-type]


def test_two_runners_in_one_process_have_separate_registries() -> None:
    a = RunnerMetrics("a", "BTC-USD")
    b = RunnerMetrics("b", "ETH-USD")
    a.fill()
    assert a.registry.get_sample_value("workbench_fills_total") == 1
    assert b.registry.get_sample_value("workbench_fills_total") == 0


def test_health_is_200_when_ok_and_503_otherwise(metrics: RunnerMetrics) -> None:
    report: dict[str, Any] = {"ok": True, "feed": "live"}
    with MetricsServer(metrics, 0, lambda: report) as server:
        status, content_type, body = get(server.url + "/health")
        assert (status, content_type, json.loads(body)) == (200, "application/json", report)
        report["ok"] = False
        status, _, body = get(server.url + "/health")
        assert (status, json.loads(body)) == (503, report)
        report["ok"] = "yes"  # only True itself is healthy
        assert get(server.url + "/health")[0] == 503


def test_a_health_check_that_raises_is_a_503_naming_the_error(metrics: RunnerMetrics) -> None:
    def broken() -> dict[str, Any]:
        raise RuntimeError("engine gone")

    with MetricsServer(metrics, 0, broken) as server:
        status, _, body = get(server.url + "/health")
    assert status == 503
    assert json.loads(body) == {
        "ok": False,
        "error": "health check failed: RuntimeError: engine gone",
    }


def test_other_paths_are_404(server: MetricsServer) -> None:
    assert get(server.url + "/")[0] == 404
    assert get(server.url + "/metricsx")[0] == 404


def test_port_zero_picks_a_free_port_on_loopback(server: MetricsServer) -> None:
    assert server.port > 0
    assert server.url == f"http://127.0.0.1:{server.port}"


def test_a_port_in_use_is_a_usage_error_naming_the_port(metrics: RunnerMetrics) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = MetricsServer(metrics, port, healthy)
        with pytest.raises(UsageError, match=rf"127\.0\.0\.1:{port}: the port is in use.*or 0"):
            server.start()


@pytest.mark.parametrize("port", [-1, 65536, 1.5, True])
def test_an_impossible_port_is_a_usage_error(metrics: RunnerMetrics, port: Any) -> None:
    with pytest.raises(UsageError, match="metrics port must be"):
        MetricsServer(metrics, port, healthy)


def test_stop_releases_the_port(metrics: RunnerMetrics) -> None:
    with MetricsServer(metrics, 0, healthy) as first:
        port = first.port
        assert get(first.url + "/metrics")[0] == 200
    assert first.lingering == []
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5)
    with MetricsServer(metrics, port, healthy) as second:  # a restarted runner gets it back
        assert get(second.url + "/health")[0] == 200


def test_port_before_start_and_a_second_start_are_usage_errors(metrics: RunnerMetrics) -> None:
    server = MetricsServer(metrics, 0, healthy)
    with pytest.raises(UsageError, match="not started"):
        _ = server.port
    with server, pytest.raises(UsageError, match="already started"):
        server.start()
