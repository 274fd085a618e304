"""Order book: cost per delta including a best-price read, and a top-20 snapshot.

Baseline: the tutorial book that keeps a dict per side and sorts it after every update.
Targets: ≤ 1 µs per delta, ≤ 10 µs per top-20.
"""

from __future__ import annotations

import random
import time

from common import line, report

from workbench.core.book import OrderBook

N = 300_000
LEVELS = 200


def make_ops(seed: int = 1) -> list[tuple[bool, float, float]]:
    rng = random.Random(seed)
    ops = []
    for _ in range(N):
        is_bid = rng.random() < 0.5
        offset = int(rng.expovariate(0.08))  # most activity near the touch
        price = (10_000 - offset) * 0.5 if is_bid else (10_001 + offset) * 0.5
        size = 0.0 if rng.random() < 0.3 else rng.randint(1, 40) / 8
        ops.append((is_bid, price, size))
    return ops


def seed_book() -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    bids = [((10_000 - i) * 0.5, 1.0) for i in range(LEVELS)]
    asks = [((10_001 + i) * 0.5, 1.0) for i in range(LEVELS)]
    return bids, asks


class SortingBook:
    """The naive baseline: sort the side after every update to find the best price."""

    def __init__(self, bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> None:
        self.bids = dict(bids)
        self.asks = dict(asks)
        self.sorted_bids = sorted(self.bids, reverse=True)
        self.sorted_asks = sorted(self.asks)

    def update(self, is_bid: bool, price: float, size: float) -> None:
        side = self.bids if is_bid else self.asks
        if size:
            side[price] = size
        else:
            side.pop(price, None)
        if is_bid:
            self.sorted_bids = sorted(self.bids, reverse=True)
        else:
            self.sorted_asks = sorted(self.asks)

    def best_bid(self) -> float:
        return self.sorted_bids[0]

    def top(self, n: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """The tutorial snapshot: sort the levels when asked."""
        return (sorted(self.bids.items(), reverse=True)[:n], sorted(self.asks.items())[:n])


def per_delta_ours(ops: list[tuple[bool, float, float]]) -> float:
    book = OrderBook()
    book.apply_snapshot(*seed_book())
    set_bid, set_ask = book.set_bid, book.set_ask
    start = time.perf_counter()
    for is_bid, price, size in ops:
        if is_bid:
            set_bid(price, size)
        else:
            set_ask(price, size)
        book.best_bid_price  # noqa: B018 - the read is part of the measured cost
    return (time.perf_counter() - start) / len(ops) * 1e6


def per_delta_baseline(ops: list[tuple[bool, float, float]]) -> float:
    book = SortingBook(*seed_book())
    ops = ops[: len(ops) // 10]
    start = time.perf_counter()
    for is_bid, price, size in ops:
        book.update(is_bid, price, size)
        book.best_bid()
    return (time.perf_counter() - start) / len(ops) * 1e6


def top20(book: OrderBook | SortingBook, rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        book.top(20)
    return (time.perf_counter() - start) / rounds * 1e6


def main() -> None:
    ops = make_ops()
    ours = min(per_delta_ours(ops) for _ in range(3))
    base = min(per_delta_baseline(ops) for _ in range(3))
    book = OrderBook()
    book.apply_snapshot(*seed_book())
    ours_top = min(top20(book, 100_000) for _ in range(3))
    base_top = min(top20(SortingBook(*seed_book()), 100_000) for _ in range(3))
    line(
        "book delta + best read",
        ours,
        "µs",
        baseline=base,
        target="<= 1 µs",
        higher_is_better=False,
    )
    line(
        "book top-20 snapshot",
        ours_top,
        "µs",
        baseline=base_top,
        target="<= 10 µs",
        higher_is_better=False,
    )
    report(
        "book",
        {
            "delta_us": ours,
            "delta_baseline_us": base,
            "top20_us": ours_top,
            "top20_baseline_us": base_top,
            "levels_per_side": LEVELS,
        },
    )


if __name__ == "__main__":
    main()
