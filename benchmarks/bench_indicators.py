"""Streaming indicators: cost per tick of StreamingSMA against deque + numpy.mean per tick.

Baseline: the tutorial live SMA, ``window.append(x); numpy.mean(window)`` on a bounded deque,
measured in the same run. Targets: ≤ 0.2 µs per tick and ≥ 25x faster, windows 20 and 50.
StreamingEMA and StreamingVol are timed too, for reference (no target).

Prints one line per measurement and writes benchmarks/results/indicators.json.
Usage: python benchmarks/bench_indicators.py
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

import numpy as np
from common import line, report

from workbench.core.indicators import StreamingEMA, StreamingSMA, StreamingVol

TICKS = 1_000_000
BASELINE_TICKS = 100_000
WINDOWS = (20, 50)


def prices() -> list[float]:
    rng = np.random.default_rng(3)
    return (30_000 * np.exp(np.cumsum(rng.normal(0, 1e-4, TICKS)))).tolist()


def per_tick(update: Callable[[float], float], ticks: list[float]) -> float:
    """µs per ``update(x)`` call, the loop included (as a strategy's tick handler runs it)."""
    start = time.perf_counter()
    for x in ticks:
        update(x)
    return (time.perf_counter() - start) / len(ticks) * 1e6


def baseline(window: int, ticks: list[float]) -> float:
    values: deque[float] = deque(maxlen=window)
    start = time.perf_counter()
    for x in ticks:
        values.append(x)
        np.mean(values)
    return (time.perf_counter() - start) / len(ticks) * 1e6


def main() -> None:
    ticks = prices()
    figures: dict[str, float] = {"ticks": TICKS}
    for window in WINDOWS:
        ours = min(per_tick(StreamingSMA(window).update, ticks) for _ in range(5))
        base = min(baseline(window, ticks[:BASELINE_TICKS]) for _ in range(3))
        line(
            f"streaming SMA({window}) per tick",
            ours,
            "µs",
            baseline=base,
            target="<= 0.2 µs, >= 25x",
            higher_is_better=False,
        )
        figures[f"sma{window}_us"] = ours
        figures[f"sma{window}_baseline_us"] = base
        figures[f"sma{window}_ratio"] = base / ours
    for name, make in (("EMA", StreamingEMA), ("Vol", StreamingVol)):
        cost = min(per_tick(make(20).update, ticks) for _ in range(3))
        line(f"streaming {name}(20) per tick", cost, "µs")
        figures[f"{name.lower()}20_us"] = cost
    report("indicators", figures)


if __name__ == "__main__":
    main()
