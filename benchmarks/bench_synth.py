"""Synth: a seeded synthetic history of two symbols written into a new store, end to end.

``synthesize()`` from the first chunk generated to the file renamed into place: the numpy
model, the trades and book_deltas inserts (about two book rows a trade), the 1m bars and the
final checkpoint. Also measured: the model alone (no I/O), and how much of the write is
DuckDB maintaining the trades table's UNIQUE (exchange, symbol, trade_id) index — the same
trades inserted, in one transaction, into the schema's table and into one without the
constraint (which the schema does not allow; a diagnostic only).

Baseline, same run, smaller N: the tutorial way — a Python loop per trade (a Poisson clock, a
log-normal random walk, side and size from ``random``, the price at the touch of a top-10
book snapshotted before every 10th trade) into lists of rows inserted with ``executemany``
into the same store tables, in one transaction (the generous variant).
Target: ≥ 1,000,000 trades/s written end to end.
"""

from __future__ import annotations

import argparse
import math
import random
import tempfile
import time
from pathlib import Path

import duckdb
from common import line, report

from workbench.sim.synth import SymbolModel, merge
from workbench.sim.synth_command import synthesize
from workbench.store import TABLES, Store

DAYS = 15.0
TRADES_PER_DAY = 100_000
SYMBOLS = ["BTC-USD", "ETH-USD"]
BASELINE_TRADES = 2_000
START_US = 1_704_067_200_000_000


def model_rate(days: float) -> float:
    """Trades/s of the model and the merge alone, no I/O."""
    start = time.perf_counter()
    models = [SymbolModel(0, s, START_US, round(days * 86_400), TRADES_PER_DAY) for s in SYMBOLS]
    trades, first = 0, 1
    for chunks in zip(*(m.chunks() for m in models), strict=True):
        rows, _ = merge(chunks, first)
        first += sum(len(c.event_recv) for c in chunks)
        trades += len(rows.ts)
    return trades / (time.perf_counter() - start)


def unique_index_cost(db: Path, scratch: Path) -> tuple[float, float]:
    """Seconds to insert ``db``'s trades with and without the UNIQUE constraint."""
    table = TABLES["trades"]
    with Store.open(db, read_only=True) as store, store.cursor() as cursor:
        trades = cursor.sql("SELECT * FROM trades ORDER BY rowid").to_arrow_table()
    body = ", ".join(f"{c.name} {c.type}" for c in table.columns)
    times = []
    with duckdb.connect(scratch) as con:
        con.register("staged", trades)
        for name, ddl in (("trades", table.ddl), ("plain", f"CREATE TABLE plain ({body})")):
            con.execute(ddl)
            start = time.perf_counter()
            con.begin()
            con.execute(f"INSERT INTO {name} SELECT * FROM staged")
            con.commit()
            times.append(time.perf_counter() - start)
    return times[0], times[1]


def baseline(path: Path, n: int) -> float:
    """Trades/s of the per-trade loop with executemany (see the module docstring)."""
    rng = random.Random(0)
    tick, fair, sigma = 0.5, 60_000.0, 1e-4  # BTC-USD: 30,000 in 0.50 ticks
    start = time.perf_counter()
    trades: list[tuple[object, ...]] = []
    levels: list[tuple[object, ...]] = []
    ts, x, seq = START_US, 0.0, 0
    bid = ask = 0
    for i in range(n):
        if i % 10 == 0:
            seq += 1
            bid = math.floor(fair * math.exp(x) - 0.5)
            ask = bid + 1
            levels.append(("reset", None, None, None, ts, seq))
            for side, best, step in (("bid", bid, -1), ("ask", ask, 1)):
                for depth in range(10):
                    size = round(20_000 * rng.lognormvariate(0, 0.7) / 30_000, 3) or 0.001
                    levels.append(("snapshot", side, (best + step * depth) * tick, size, ts, seq))
        dt = rng.expovariate(100_000 / 86_400)
        ts += int(dt * 1e6)
        x += sigma * math.sqrt(dt) * rng.gauss(0, 1)
        buy = rng.random() < 0.5
        size = round(250 * rng.lognormvariate(0, 1.4) / 30_000, 3) or 0.001
        seq += 1
        price = (ask if buy else bid) * tick
        trades.append((ts, price, size, "buy" if buy else "sell", str(i + 1), seq))
    with Store.open(path) as store, store.cursor() as cursor:
        cursor.begin()
        cursor.executemany(
            "INSERT INTO trades (exchange, symbol, ts, recv_ts, price, size, side, trade_id, "
            "seq, ingest_seq) VALUES ('synth', 'BTC-USD', make_timestamp($1), "
            "make_timestamp($1 + 500), $2, $3, $4, $5, $6, $6)",
            trades,
        )
        cursor.executemany(
            "INSERT INTO book_deltas (exchange, symbol, ts, recv_ts, seq, kind, side, price, "
            "size, ingest_seq) VALUES ('synth', 'BTC-USD', make_timestamp($5), "
            "make_timestamp($5 + 500), $6, $1, $2, $3, $4, $6)",
            levels,
        )
        cursor.commit()
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=DAYS)
    parser.add_argument("--baseline-trades", type=int, default=BASELINE_TRADES)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "synth.duckdb"
        result = synthesize(db, SYMBOLS, args.days, trades_per_day=TRADES_PER_DAY)
        trades = result.rows["trades"]
        rate = trades / result.elapsed
        with_index, without = unique_index_cost(db, Path(tmp) / "scratch.duckdb")
        base = baseline(Path(tmp) / "baseline.duckdb", args.baseline_trades)
    model = model_rate(args.days)
    print(result.summary(), flush=True)
    line("synth end to end", rate, "trades/s", baseline=base, target=">= 1,000,000")
    line("model alone (no I/O)", model, "trades/s")
    print(
        f"trades insert alone: {with_index:.2f} s with the UNIQUE index, {without:.2f} s "
        f"without (the index: {with_index - without:.2f} s of the {result.elapsed:.2f} s run)",
        flush=True,
    )
    report(
        "synth",
        {
            "trades": trades,
            "book_deltas": result.rows["book_deltas"],
            "seconds": result.elapsed,
            "trades_per_sec": rate,
            "model_trades_per_sec": model,
            "trades_insert_with_unique_s": with_index,
            "trades_insert_without_unique_s": without,
            "baseline_trades_per_sec": base,
            "baseline_trades": args.baseline_trades,
            "ratio": rate / base,
        },
    )


if __name__ == "__main__":
    main()
