"""``workbench validate``: a strategy or a sweep's best trial through the gate, as files and
an exit code a script can act on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers.bars import walk_bars
from workbench.cli import main
from workbench.store import Store

GRID = ("--grid", "fast=5:25:10", "--grid", "slow=40:80:40")


def db_with(path: Path, drift: float) -> Path:
    frame = walk_bars(8_000, 5, drift=drift, exchange="sim", symbol="BTC-USD", interval="1m")
    with Store.open(path) as store, store.cursor() as cursor:
        cursor.register("frame", frame)
        cursor.execute("INSERT INTO bars BY NAME SELECT * FROM frame")
    return path


def data(db: Path) -> list[str]:
    return ["--db", str(db), "--symbol", "BTC-USD", "--interval", "1m", "--mode", "vectorized"]


def test_a_passing_strategy_exits_0_and_writes_its_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = db_with(tmp_path / "trend.duckdb", drift=0.0004)
    out = tmp_path / "report"
    code = main(["validate", "sma_cross", *data(db), "--param", "fast=5", "--param", "slow=40",
                 "--fees", "1", "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    assert sorted(p.name for p in out.iterdir()) == ["report.html", "report.json"]
    document = json.loads((out / "report.json").read_text())
    assert document["passed"] and document["params"] == {"fast": 5, "slow": 40, "short": False}
    assert "sma_cross {'fast': 5, 'slow': 40, 'short': False} on BTC-USD 1m: PASSED" in printed
    assert printed.count("  pass  ") == len(document["gates"])


def test_a_sweep_directory_is_validated_by_its_best_trial_and_a_failure_exits_1(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = db_with(tmp_path / "noise.duckdb", drift=0.0)
    swept = tmp_path / "swept"
    assert main(["sweep", "sma_cross", *data(db), *GRID, "--n-jobs", "1", "--out", str(swept)]) == 0
    out = tmp_path / "report"
    capsys.readouterr()
    code = main(["validate", "--sweep", str(swept), "--threshold", "min_trades=5",
                 "--out", str(out)])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 1, printed
    document = json.loads((out / "report.json").read_text())
    table = json.loads((swept / "sweep.json").read_text())
    assert not document["passed"] and document["trials"] == table["trials"]
    assert document["thresholds"]["min_trades"] == 5
    assert "deflated sharpe" in [gate["name"] for gate in document["gates"]]
    assert "FAILED" in printed.splitlines()[0]


def test_thresholds_come_from_a_file_then_the_flags(tmp_path: Path) -> None:
    db = db_with(tmp_path / "trend.duckdb", drift=0.0004)
    config = tmp_path / "gate.toml"
    config.write_text("[validation]\nalpha = 0.01\nfolds = 3\nscheme = 'rolling'\n")
    out = tmp_path / "report"
    main(["validate", "sma_cross", *data(db), "--config", str(config),
          "--threshold", "folds=4", "--out", str(out)])  # fmt: skip
    used = json.loads((out / "report.json").read_text())["thresholds"]
    assert (used["alpha"], used["folds"], used["scheme"]) == (0.01, 4, "rolling")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--symbol", "BTC-USD", "--interval", "1m"], "give STRATEGY (or --sweep DIR)"),
        (["sma_cross", "--interval", "1m"], "give --symbol (or --sweep DIR)"),
        (["nope", "--symbol", "BTC-USD", "--interval", "1m"], "unknown strategy 'nope'"),
        (["sma_cross", "--symbol", "BTC-USD", "--interval", "1m", "--threshold", "alpa=1"],
         "no threshold 'alpa'; choose from min_trades"),
        (["sma_cross", "--symbol", "BTC-USD", "--interval", "1m", "--threshold", "alpha=2"],
         "thresholds from --threshold: Expected `float` < 1.0 - at `alpha`"),
        (["sma_cross", "--symbol", "BTC-USD", "--interval", "1m", "--start", "2030-01-01"],
         "no 1m bars or trades"),
        (["--sweep", "missing-dir"], "is not a readable workbench sweep directory"),
        (["sma_cross", "--sweep", "x"], "--sweep DIR names its strategy and data"),
    ],
)  # fmt: skip
def test_usage_mistakes_exit_2_and_write_nothing(
    tmp_path: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    db = db_with(tmp_path / "bars.duckdb", drift=0.0)
    code = main(["validate", *args, "--db", str(db), "--out", str(tmp_path / "out")])
    assert code == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bars.duckdb"]


def test_a_sweep_whose_database_changed_since_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = db_with(tmp_path / "bars.duckdb", drift=0.0004)
    swept = tmp_path / "swept"
    assert main(["sweep", "sma_cross", *data(db), *GRID, "--n-jobs", "1", "--out", str(swept)]) == 0
    with Store.open(db) as store:
        store.sql("UPDATE bars SET close = close * 1.01 WHERE ts > '2024-01-03'")
    code = main(["validate", "--sweep", str(swept), "--out", str(tmp_path / "out")])
    assert code == 2
    assert "the bars in its database have changed since" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
