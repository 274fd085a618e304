"""Write trades into a store forever, printing the stored count after every commit.

Run by tests/test_store_crash.py, which SIGKILLs this process mid-stream and then checks that
every commit this script reported survived. Trade ids are consecutive integers submitted in
order, so the surviving rows must be exactly ids ``0 .. n-1``.

Usage: python crash_writer.py STORE_PATH
"""

from __future__ import annotations

import sys
import time

from workbench.store import Store

BATCH = 500


def main(path: str) -> None:
    store = Store.open(path)
    stored = 0

    def report(counts: dict[str, int]) -> None:
        nonlocal stored
        stored += counts.get("trades", 0)
        print(f"committed {stored}", flush=True)

    writer = store.start_writer(commit_interval=0.01, on_commit=report)
    next_id = 0
    while True:
        ids = range(next_id, next_id + BATCH)
        writer.submit(
            "trades",
            {
                "exchange": ["sim"] * BATCH,
                "symbol": ["BTC-USD"] * BATCH,
                "ts": [1_763_712_000_000_000 + i for i in ids],
                "recv_ts": [1_763_712_000_000_000 + i for i in ids],
                "price": [float(i) for i in ids],
                "size": [1.0] * BATCH,
                "side": ["buy"] * BATCH,
                "trade_id": [str(i) for i in ids],
            },
        )
        next_id += BATCH
        time.sleep(0.002)


if __name__ == "__main__":
    main(sys.argv[1])
