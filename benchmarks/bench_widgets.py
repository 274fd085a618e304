"""Live widgets in a real kernel: update cost, 10 Hz under a 10k msgs/s feed, cell latency.

Everything widget-side runs inside a real ipykernel started with jupyter_client, so every
trait change goes through the kernel's comm (serialization, signing, ZMQ iopub) and a
client thread drains iopub like a frontend would. Kernel-side code: ``widget_kernel.py``.

(a) Kernel-side cost of one ``OrderBookWidget.update()`` and one ``PriceWidget.update()``
    with a 20-level book and a 2,000-point window, the book changing and ~45 trades arriving
    every tick (a real Feed replaying simulator messages in-process), each call after a
    short idle gap as between real 10 Hz frames. Baseline, same ticks: the naive widgets
    (pandas rebuild of everything, rolling SMAs over the window, one message per trait).
    Target ≤ 2 ms per widget update; the sum of both is shown too.
(b) The simulator as a subprocess at 4 symbols x 3,000 msgs/s, a Workbench feed in the
    kernel, both widgets pumping at 10 Hz for 60 s: ticks, skipped ticks, render p50/p99,
    pump lag in the first vs the last 10 s, and the feed's msgs/s — against the same feed
    with no widgets (the ~30 s before they start). Targets: ~600 ticks, no growing lag,
    feed ≥ 10,000 msgs/s.
(c) Round trip of a trivial cell (``pass`` → execute_reply), 300 times 0.08 s apart while (b)
    streams, against the same in the same kernel before the feed started (baseline); the
    same with the feed but no widgets is shown too, to split the added latency between the
    feed and the widgets. Target: added p95 ≤ 20 ms.

Prints a table and writes benchmarks/results/widgets.json. About two minutes.
Usage: python benchmarks/bench_widgets.py
"""

from __future__ import annotations

import ast
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from common import line, report, start_sim, stop_sim
from jupyter_client.manager import KernelManager

HERE = Path(__file__).resolve().parent
SYMBOLS = ("BTC-USD", "ETH-USD", "SOL-USD", "XRP-USD")
SIM_RATE = 3000  # per symbol: 12,000 msgs/s in all
TICKS = 300
TRADES_PER_TICK = 45  # one symbol's trades per 100 ms at 3,000 msgs/s (~15% are trades)
DEPTH = 20
WINDOW = 2000
PUMP_RATE = 10.0
STREAM_SECONDS = 60
PASSES = 300
PASS_GAP = 0.08


class Kernel:
    """A real ipykernel, plus a thread draining iopub the way a frontend would."""

    def __init__(self) -> None:
        self.manager = KernelManager(kernel_name="python3")
        self.manager.start_kernel(cwd=str(HERE))
        self.client = self.manager.blocking_client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.iopub_messages = 0
        self.iopub_bytes = 0
        self._stop = threading.Event()
        self._drain = threading.Thread(target=self._drain_iopub, daemon=True)
        self._drain.start()

    def _drain_iopub(self) -> None:
        while not self._stop.is_set():
            try:
                msg = self.client.get_iopub_msg(timeout=0.2)
            except Exception:
                continue  # queue.Empty on timeout
            self.iopub_messages += 1
            self.iopub_bytes += sum(len(b) for b in msg.get("buffers", ()))

    def run(self, code: str, result: str | None = None, timeout: float = 300) -> Any:
        """Execute ``code``; with ``result``, evaluate that expression (a JSON string) after."""
        expressions = {"r": result} if result else {}
        msg_id = self.client.execute(code, user_expressions=expressions)
        reply = self._reply(msg_id, timeout)
        content = reply["content"]
        if content["status"] != "ok":
            raise RuntimeError("\n".join(content.get("traceback", [])) or content["evalue"])
        if result is None:
            return None
        value = content["user_expressions"]["r"]
        if value["status"] != "ok":
            raise RuntimeError("\n".join(value.get("traceback", [])) or value["evalue"])
        return json.loads(ast.literal_eval(value["data"]["text/plain"]))

    def ping(self) -> float:
        """Seconds from sending a trivial cell to its execute_reply."""
        start = time.perf_counter()
        self._reply(self.client.execute("pass"), 30)
        return time.perf_counter() - start

    def _reply(self, msg_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            msg: dict[str, Any] = self.client.get_shell_msg(
                timeout=max(0.1, deadline - time.monotonic())
            )
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg

    def close(self) -> None:
        self._stop.set()
        self._drain.join(2)
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)


def pings(kernel: Kernel, count: int, gap: float) -> list[float]:
    out = []
    for _ in range(count):
        out.append(kernel.ping())
        time.sleep(gap)
    return out


def mean_lag_ms(samples: list[dict[str, Any]], widget: str, first: float, last: float) -> float:
    """Mean pump lag (ms) per tick between the samples taken at ``first`` and ``last`` s."""
    inside = [s for s in samples if first - 0.5 <= s["t"] <= last + 0.5]
    a, b = inside[0][widget], inside[-1][widget]
    return (b["lag_s"] - a["lag_s"]) / max(b["ticks"] - a["ticks"], 1) * 1e3


def measure(tmp: Path) -> dict[str, Any]:
    """Every phase, in one kernel (see the module docstring); raw results."""
    kernel = Kernel()
    sim = None
    try:
        kernel.run(f"import json, sys\nsys.path.insert(0, {str(HERE)!r})\nimport widget_kernel")
        cost = kernel.run(
            f"cost = widget_kernel.update_cost({TICKS}, {TRADES_PER_TICK}, {DEPTH}, {WINDOW})",
            "json.dumps(cost)",
        )
        idle = pings(kernel, PASSES, PASS_GAP)  # no feed, no widgets
        sim, port = start_sim(
            "--seed", "5", "--symbols", ",".join(SYMBOLS), "--rate", str(SIM_RATE)
        )  # fmt: skip
        address = f"127.0.0.1:{port}"
        kernel.run(
            "stream = widget_kernel.Stream("
            f"{str(tmp / 'bench.duckdb')!r}, 'ws://{address}/ws', 'http://{address}', "
            f"{list(SYMBOLS)!r})\nimport time; time.sleep(3)"
        )
        before = kernel.run("c = stream.counter()", "json.dumps(c)")
        feed_only = pings(kernel, PASSES, PASS_GAP)  # the feed alone, for the breakdown
        after = kernel.run("c = stream.counter()", "json.dumps(c)")
        io0 = (kernel.iopub_messages, kernel.iopub_bytes)
        kernel.run(f"stream.start_widgets({PUMP_RATE}, {DEPTH}, {WINDOW})")
        started = time.monotonic()
        time.sleep(10)
        streaming = pings(kernel, PASSES, PASS_GAP)
        time.sleep(max(0.0, STREAM_SECONDS + 1.5 - (time.monotonic() - started)))
        stream = kernel.run("streamed = stream.finish()", "json.dumps(streamed)")
        io1 = (kernel.iopub_messages, kernel.iopub_bytes)
    finally:
        kernel.close()
        if sim is not None:
            stop_sim(sim)
    return {
        "cost": cost,
        "stream": stream,
        "bare_rate": (after["messages"] - before["messages"]) / (after["t"] - before["t"]),
        "iopub": (io1[0] - io0[0], io1[1] - io0[1]),
        "cells": {"idle": idle, "feed_only": feed_only, "streaming": streaming},
    }


def show_update_cost(cost: dict[str, Any], figures: dict[str, Any]) -> None:
    print(
        f"(a) update cost, real comm: {DEPTH} levels, {cost['points']:,} points, "
        f"{TRADES_PER_TICK} trades + book changes per tick, {TICKS} ticks"
    )
    for part, label in (("book", "OrderBookWidget"), ("price", "PriceWidget"), ("both", "both")):
        ours, naive = cost["ours"][part], cost["naive"][part]
        line(
            f"  {label} p50",
            ours["p50_ms"],
            "ms",
            baseline=naive["p50_ms"],
            higher_is_better=False,
            target="<= 2 ms per widget" if part != "both" else "",
        )
        print(
            f"  {' ' * len(label)} mean {ours['mean_ms']:.3f} ms, p99 {ours['p99_ms']:.3f} ms "
            f"(naive mean {naive['mean_ms']:.3f} ms, p99 {naive['p99_ms']:.3f} ms)"
        )
        for stat in ("p50", "mean", "p99"):
            figures[f"update_{part}_{stat}_ms"] = ours[f"{stat}_ms"]
            figures[f"update_{part}_naive_{stat}_ms"] = naive[f"{stat}_ms"]
        figures[f"update_{part}_ratio"] = naive["p50_ms"] / ours["p50_ms"]


def show_stream(raw: dict[str, Any], figures: dict[str, Any]) -> None:
    samples = raw["stream"]["samples"]
    span = samples[-1]["t"] - samples[0]["t"]
    feed_rate = (samples[-1]["messages"] - samples[0]["messages"]) / span
    print(f"(b) {PUMP_RATE:.0f} Hz for {samples[-1]['t']:.0f} s while the feed records:")
    line("  feed msgs/s with widgets", feed_rate, "msgs/s", baseline=raw["bare_rate"])
    figures["feed_msgs_per_sec"] = feed_rate
    figures["feed_msgs_per_sec_no_widgets"] = raw["bare_rate"]
    for widget in ("OrderBookWidget", "PriceWidget"):
        last = samples[-1][widget]
        final = raw["stream"]["final"][widget]
        lags = [mean_lag_ms(samples, widget, t, t + 10) for t in range(0, int(span) - 8, 10)]
        print(
            f"  {widget}: {last['ticks']} ticks (expect ~{PUMP_RATE * samples[-1]['t']:.0f}), "
            f"{last['skipped']} skipped, {last['errors']} errors; render p50 "
            f"{final['render_p50_ms']:.2f} ms, p99 {final['render_p99_ms']:.2f} ms; "
            f"mean lag per 10 s: {', '.join(f'{x:.1f}' for x in lags)} ms"
        )
        key = widget.removesuffix("Widget").lower()
        figures[f"{key}_ticks"] = last["ticks"]
        figures[f"{key}_expected_ticks"] = PUMP_RATE * samples[-1]["t"]
        figures[f"{key}_skipped"] = last["skipped"]
        figures[f"{key}_errors"] = last["errors"]
        figures[f"{key}_render_p50_ms"] = final["render_p50_ms"]
        figures[f"{key}_render_p99_ms"] = final["render_p99_ms"]
        figures[f"{key}_lag_per_10s_ms"] = lags
    messages, buffers = raw["iopub"]
    print(
        f"  iopub while streaming: {messages / span:,.0f} msgs/s, "
        f"{buffers / span / 1e3:,.0f} kB/s of array buffers; "
        f"pump threads left after close: {len(raw['stream']['pumps_left'])}"
    )
    figures["pumps_left"] = len(raw["stream"]["pumps_left"])


def show_cell_latency(cells: dict[str, list[float]], figures: dict[str, Any]) -> None:
    print(f"(c) trivial cell round trip, {PASSES} each, {PASS_GAP} s apart:")
    labels = {"idle": "idle kernel", "feed_only": "feed, no widgets", "streaming": "streaming"}
    for name, seconds in cells.items():
        ms = np.asarray(seconds) * 1e3
        figures[f"cell_{name}_p50_ms"] = float(np.percentile(ms, 50))
        figures[f"cell_{name}_p95_ms"] = float(np.percentile(ms, 95))
        print(
            f"  {labels[name]:<17} p50 {figures[f'cell_{name}_p50_ms']:6.2f} ms  "
            f"p95 {figures[f'cell_{name}_p95_ms']:6.2f} ms"
        )
    added = figures["cell_streaming_p95_ms"] - figures["cell_idle_p95_ms"]
    line("  added p95 (streaming vs idle)", added, "ms", target="<= 20 ms")
    figures["cell_added_p95_ms"] = added


def show_targets(figures: dict[str, Any]) -> None:
    def verdict(ok: bool) -> str:
        return "met" if ok else "MISSED"

    ticks_ok = all(
        figures[f"{k}_ticks"] >= 0.95 * figures[f"{k}_expected_ticks"]
        and max(figures[f"{k}_lag_per_10s_ms"]) < 1000 / PUMP_RATE
        for k in ("orderbook", "price")
    )
    book, price, both = (figures[f"update_{k}_p50_ms"] for k in ("book", "price", "both"))
    print(
        f"targets: (a) update p50 {book:.2f} / {price:.2f} ms <= 2 ms per widget "
        f"{verdict(max(book, price) <= 2)} (both widgets together {both:.2f} ms); "
        f"(b) >= 95% of ticks, lag < 1 period, feed {figures['feed_msgs_per_sec']:,.0f} "
        f">= 10,000 msgs/s {verdict(ticks_ok and figures['feed_msgs_per_sec'] >= 10_000)}; "
        f"(c) added p95 {figures['cell_added_p95_ms']:.1f} ms <= 20 ms "
        f"{verdict(figures['cell_added_p95_ms'] <= 20)}"
    )


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        raw = measure(Path(tmp))
    figures: dict[str, Any] = {}
    show_update_cost(raw["cost"], figures)
    show_stream(raw, figures)
    show_cell_latency(raw["cells"], figures)
    show_targets(figures)
    report("widgets", figures)


if __name__ == "__main__":
    main()
