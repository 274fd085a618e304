"""Sweeps: grids, one row per point in grid order, the same table on every backend and
worker count, every trial's returns, and `workbench sweep` writing the same bytes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.helpers.bars import walk_bars
from workbench.backtest import backtest, sweep
from workbench.backtest.grid import expand, values
from workbench.cli import main
from workbench.core.fills import BarFills
from workbench.errors import UsageError
from workbench.store import Store


def walk(n: int, seed: int = 1) -> pd.DataFrame:
    return walk_bars(
        n, seed, sigma=0.003, wick=0.001, exchange="sim", symbol="BTC-USD", interval="1m"
    )


GRID = {"fast": "2:6:2", "slow": [4, 8]}
FILLS = BarFills(taker_fee_bps=2)


def test_grids_expand_in_order_with_both_ends_and_exact_decimal_steps() -> None:
    assert values("fast", "5:50:5") == [str(v) for v in range(5, 55, 5)]
    assert values("x", "0.1:0.3:0.1") == ["0.1", "0.2", "0.3"]
    assert values("short", "true,false") == ["true", "false"]
    assert expand({"a": [1, 2], "b": "x,y"}) == [
        {"a": 1, "b": "x"},
        {"a": 1, "b": "y"},
        {"a": 2, "b": "x"},
        {"a": 2, "b": "y"},
    ]


@pytest.mark.parametrize(
    ("grid", "message"),
    [
        ({"fast": "5:1:1"}, "is not START:STOP:STEP"),
        ({"fast": "1:5:0"}, "is not START:STOP:STEP"),
        ({"fast": "1:x:1"}, "is not START:STOP:STEP"),
        ({"fast": [2, 2]}, "repeats a value"),
        ({"fast": "1:1000000:1"}, "has 1,000,000 values"),
        ({"speed": [1]}, "sma_cross has no parameter speed"),
    ],
)
def test_bad_grids_are_usage_errors(grid: dict[str, object], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        sweep("sma_cross", grid, walk(50), interval="1m", n_jobs=1, progress=False)


def test_one_row_per_point_in_grid_order_each_equal_to_its_own_backtest() -> None:
    bars = walk(2_000)
    result = sweep("sma_cross", GRID, bars, interval="1m", fills=FILLS, n_jobs=1, progress=False)
    table = result.table
    assert table[["trial", "fast", "slow"]].values.tolist() == [
        [0, 2, 4], [1, 2, 8], [2, 4, 4], [3, 4, 8], [4, 6, 4], [5, 6, 8],
    ]  # fmt: skip
    assert table["status"].tolist() == ["ok", "ok", "invalid", "ok", "invalid", "ok"]
    assert table.loc[2, "reason"] == "sma_cross: fast (4) must be below slow (4)"
    assert np.isnan(table.loc[2, "sharpe"])
    assert result.trials == 4
    for trial in (0, 5):
        alone = backtest(
            "sma_cross",
            bars,
            interval="1m",
            fills=FILLS,
            params=table.loc[trial, ["fast", "slow"]].to_dict(),
        )
        assert table.loc[trial, "sharpe"] == alone.metrics["sharpe"]
        assert table.loc[trial, "trades"] == alone.metrics["trades"]
        equity = alone.equity["equity"].to_numpy()
        assert np.array_equal(result.returns[trial].to_numpy(), equity[1:] / equity[:-1] - 1)
    assert list(result.returns.columns) == [0, 1, 3, 5]  # the trials that ran
    assert len(result.returns) == len(bars) - 1
    assert result.best()["trial"] == table.loc[table["status"] == "ok", "sharpe"].idxmax()


def test_the_table_is_the_same_with_1_or_4_workers_on_loky_and_dask_and_vectorized() -> None:
    bars = walk(3_000)
    kwargs = {"interval": "1m", "fills": FILLS, "progress": False}
    one = sweep("sma_cross", GRID, bars, n_jobs=1, **kwargs)
    for other in (
        sweep("sma_cross", GRID, bars, n_jobs=4, **kwargs),
        sweep("sma_cross", GRID, bars, n_jobs=2, backend="dask", **kwargs),
        sweep("sma_cross", GRID, bars, n_jobs=2, mode="vectorized", **kwargs),
    ):
        pd.testing.assert_frame_equal(one.table, other.table, check_exact=True)
        pd.testing.assert_frame_equal(one.returns, other.returns, check_exact=True)


def test_a_strategy_from_a_file_runs_in_the_workers(tmp_path: Path) -> None:
    source = tmp_path / "mine.py"
    source.write_text(
        "from workbench.strategy import Param, Strategy\n"
        "class Hold(Strategy):\n"
        "    size = Param(1.0, low=0.0)\n"
        "    def on_bar(self, ctx, bar):\n"
        "        if not ctx.position:\n"
        "            ctx.buy(self.size)\n"
    )
    result = sweep(
        f"{source}:Hold", {"size": [1.0, 2.0]}, walk(100), interval="1m", n_jobs=2, progress=False
    )
    assert result.table["status"].tolist() == ["ok", "ok"]
    assert result.table["exposure"].tolist() == [0.99, 0.99]  # bought at bar 1's open


def test_a_wiped_out_trial_is_a_row_not_a_failed_sweep() -> None:
    closes = [100, 101, 102, 103, 104, 103, 101, 99, 97, 95, 300, 300, 300]
    bars = walk(len(closes))
    bars["close"] = np.array(closes, dtype=float)
    bars["open"] = bars["close"].shift(fill_value=100.0)
    bars["high"], bars["low"] = (
        bars[["open", "close"]].max(axis=1),
        bars[["open", "close"]].min(axis=1),
    )
    # all in short from bar 7 at 101; the jump to 300 at bar 10 takes more than the equity
    result = sweep(
        "sma_cross",
        {"fast": [2], "slow": [3], "short": "false,true"},
        bars,
        interval="1m",
        n_jobs=1,
        progress=False,
    )
    assert result.table["status"].tolist() == ["ok", "wiped out"]
    assert result.table.loc[1, "reason"].startswith("equity fell to -")
    assert np.isnan(result.table.loc[1, "sharpe"]) and result.returns[1].isna().all()
    assert result.trials == 2 and result.best("total_return")["trial"] == 0


def db_with_bars(path: Path) -> Path:
    frame = walk(1_500)
    with Store.open(path) as store, store.cursor() as cursor:
        cursor.register("frame", frame)
        cursor.execute("INSERT INTO bars BY NAME SELECT * FROM frame")
    return path


def sweep_cli(db: Path, out: Path, *extra: str) -> int:
    return main(
        ["sweep", "sma_cross", "--db", str(db), "--symbol", "BTC-USD", "--interval", "1m",
         "--grid", "fast=2:6:2", "--grid", "slow=4,8", "--fees", "2", *extra, "--out", str(out)]
    )  # fmt: skip


def test_sweep_cli_writes_the_same_bytes_whatever_the_workers(tmp_path: Path) -> None:
    db = db_with_bars(tmp_path / "bars.duckdb")
    assert sweep_cli(db, tmp_path / "a", "--n-jobs", "1") == 0
    assert sweep_cli(db, tmp_path / "b", "--n-jobs", "4") == 0
    assert sweep_cli(db, tmp_path / "c", "--n-jobs", "2", "--mode", "vectorized") == 0
    for name in ("results.csv", "returns.parquet", "sweep.json"):
        first = (tmp_path / "a" / name).read_bytes()
        assert first == (tmp_path / "b" / name).read_bytes(), name
        if name != "sweep.json":  # which names the mode
            assert first == (tmp_path / "c" / name).read_bytes(), name
    summary = json.loads((tmp_path / "a" / "sweep.json").read_text())
    assert summary["points"] == 6 and summary["trials"] == 4
    assert summary["grid"] == {"fast": ["2", "4", "6"], "slow": ["4", "8"]}
    returns = pd.read_parquet(tmp_path / "a" / "returns.parquet")
    assert list(returns.columns) == ["ts", "0", "1", "3", "5"] and len(returns) == 1_499


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--grid", "short=9:1:1"), "is not START:STOP:STEP"),
        (("--grid", "fast=1"), "--grid fast is given twice"),
        (("--param", "slow=8"), "slow is both swept (--grid) and fixed (--param)"),
        (("--grid", "short=maybe"), "no point of the grid is valid for sma_cross"),
        (("--start", "2030-01-01"), "no 1m bars or trades"),
        (("--backend", "loky", "--scheduler", "tcp://127.0.0.1:1"), "a scheduler address is for"),
    ],
)
def test_sweep_mistakes_exit_2_and_write_nothing(
    tmp_path: Path, extra: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = db_with_bars(tmp_path / "bars.duckdb")
    assert sweep_cli(db, tmp_path / "out", *extra, "--n-jobs", "1") == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bars.duckdb"]


def test_the_readme_sweep_example_runs() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("import workbench\nswept = workbench.sweep(")
    code = readme[start : readme.index("```", start)]
    namespace: dict = {"bars": walk(1_000)}
    exec(compile(code, "README.md", "exec"), namespace)
    swept = namespace["swept"]
    assert swept.trials == len(swept.table) == 30
    assert swept.returns.shape == (999, 30)


def test_an_empty_grid_is_one_trial_of_the_defaults() -> None:
    bars = walk(1_000)
    swept = sweep("sma_cross", {}, bars, interval="1m", fills=FILLS, n_jobs=1, progress=False)
    alone = backtest("sma_cross", bars, interval="1m", fills=FILLS)
    assert swept.trials == 1 and swept.table.loc[0, "sharpe"] == alone.metrics["sharpe"]
