"""``workbench promote``: the gate decides, the artifact records it, and a refusal or a
mistake writes nothing."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from pathlib import Path

import pytest

from tests.helpers.bars import walk_bars
from workbench.cli import main
from workbench.runner.artifact import FILES, load_artifact
from workbench.store import Store

TREND = ("--param", "fast=5", "--param", "slow=40", "--fees", "1")


def db_with(path: Path, drift: float) -> Path:
    frame = walk_bars(8_000, 5, drift=drift, exchange="sim", symbol="BTC-USD", interval="1m")
    with Store.open(path) as store, store.cursor() as cursor:
        cursor.register("frame", frame)
        cursor.execute("INSERT INTO bars BY NAME SELECT * FROM frame")
    return path


@pytest.fixture(scope="module")
def dbs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("dbs")
    return {
        "trend": db_with(root / "trend.duckdb", 0.0004),
        "noise": db_with(root / "noise.duckdb", 0.0),
    }


def data(db: Path) -> list[str]:
    return ["sma_cross", "--db", str(db), "--exchange", "sim", "--symbol", "BTC-USD",
            "--interval", "1m", "--mode", "vectorized"]  # fmt: skip


@pytest.fixture(scope="module")
def promoted(dbs: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """One passing promotion for the module: the artifact and what it printed."""
    root = tmp_path_factory.mktemp("promoted")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):  # capsys is per test
        code = main(["promote", *data(dbs["trend"]), *TREND, "--name", "trend",
                     "--dir", str(root / "strategies")])  # fmt: skip
    assert code == 0, out.getvalue()
    return root / "strategies" / "trend", out.getvalue()


def test_a_passing_strategy_is_promoted_with_every_file_hashed(
    promoted: tuple[Path, str], dbs: dict[str, Path]
) -> None:
    path, printed = promoted
    assert sorted(p.name for p in path.iterdir()) == sorted([*FILES, "artifact.json"])
    manifest = json.loads((path / "artifact.json").read_text())
    for name in FILES:
        digest = hashlib.sha256((path / name).read_bytes()).hexdigest()
        assert manifest["files"][name] == digest
        assert f"{name:<12} sha256 {digest[:12]}" in printed
    assert (manifest["passed"], manifest["forced"], manifest["failed"]) == (True, False, [])
    assert manifest["fills"]["taker_fee_bps"] == 1.0 and manifest["mode"] == "vectorized"
    assert manifest["data"]["db"] == str(dbs["trend"].resolve())
    assert manifest["data"]["bars"] == 8_000
    assert printed.startswith(
        "promoted sma_cross {'fast': 5, 'slow': 40, 'short': False} on sim BTC-USD 1m → "
    )
    assert "validation: passed every gate" in printed
    assert load_artifact(path).make_strategy().params == {"fast": 5, "slow": 40, "short": False}


def test_a_failing_validation_exits_1_and_writes_nothing(
    dbs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["promote", *data(dbs["noise"]), "--name", "noise", "--dir", str(tmp_path / "s")])
    printed = capsys.readouterr()
    assert code == 1
    assert "  FAIL  " in printed.out
    assert "failed validation" in printed.err and "--force" in printed.err
    assert list(tmp_path.iterdir()) == []


def test_force_promotes_a_failure_and_records_the_failed_gates(
    dbs: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["promote", *data(dbs["noise"]), "--name", "noise", "--dir", str(tmp_path),
                 "--force"])  # fmt: skip
    printed = capsys.readouterr().out
    assert code == 0, printed
    manifest = json.loads((tmp_path / "noise" / "artifact.json").read_text())
    report = json.loads((tmp_path / "noise" / "report.json").read_text())
    assert manifest["forced"] and not manifest["passed"]
    assert manifest["failed"] == report["failed"] != []
    assert "promoted anyway (forced, recorded)" in printed


def test_an_existing_artifact_is_refused_unless_replaced(
    promoted: tuple[Path, str], dbs: dict[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    path, _ = promoted
    before = (path / "artifact.json").read_bytes()
    args = ["promote", *data(dbs["trend"]), *TREND, "--name", "trend", "--dir", str(path.parent)]
    assert main(args) == 2
    assert "trend exists: promote under another name" in capsys.readouterr().err
    assert (path / "artifact.json").read_bytes() == before
    assert main([*args, "--replace"]) == 0
    assert (path / "artifact.json").read_bytes() != before
    assert load_artifact(path).passed
    assert sorted(p.name for p in path.parent.iterdir()) == ["trend"]


def test_a_report_from_workbench_validate_is_taken_as_it_is(
    dbs: dict[str, Path], tmp_path: Path
) -> None:
    checked = tmp_path / "validation"
    assert main(["validate", *data(dbs["trend"]), *TREND, "--out", str(checked)]) == 0
    code = main(["promote", *data(dbs["trend"]), *TREND, "--name", "trend", "--dir",
                 str(tmp_path / "s"), "--report", str(checked)])  # fmt: skip
    assert code == 0
    written = tmp_path / "s" / "trend" / "report.json"
    assert written.read_bytes() == (checked / "report.json").read_bytes()


@pytest.mark.parametrize(
    ("changed", "message"),
    [
        (["--param", "fast=6", "--param", "slow=40", "--fees", "1"], "the report is on params"),
        (["--param", "fast=5", "--param", "slow=40", "--fees", "3"],
         "the report's backtest is not this one"),
        ([*TREND, "--start", "2024-01-02"], "the report's backtest is not this one"),
    ],
)  # fmt: skip
def test_a_report_on_another_backtest_is_refused(
    dbs: dict[str, Path],
    tmp_path: Path,
    changed: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    checked = tmp_path / "validation"
    assert main(["validate", *data(dbs["trend"]), *TREND, "--out", str(checked)]) == 0
    capsys.readouterr()
    code = main(["promote", *data(dbs["trend"]), *changed, "--name", "x", "--dir",
                 str(tmp_path / "s"), "--report", str(checked / "report.json")])  # fmt: skip
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope", "--symbol", "BTC-USD", "--interval", "1m"], "unknown strategy 'nope'"),
        (["sma_cross", "--db", "missing.duckdb", "--symbol", "BTC-USD", "--interval", "1m"],
         "missing.duckdb does not exist"),
        (["sma_cross", "--symbol", "BTC-USD", "--interval", "1m", "--name", "../up"],
         "artifact name '../up'"),
        (["sma_cross", "--symbol", "BTC-USD", "--interval", "1m", "--report", "corrupt.json"],
         "--report corrupt.json: not a validation report: not JSON"),
        (["sma_cross", "--symbol", "BTC-USD", "--interval", "1m", "--report", "nowhere"],
         "--report nowhere: [Errno 2]"),
        (["sma_cross", "--symbol", "BTC-USD", "--interval", "1m", "--report", "corrupt.json",
          "--threshold", "alpha=0.01"], "--report brings its verdict"),
        (["sma_cross", "--symbol", "BTC-USD", "--interval", "1m", "--param", "fast=50"],
         "fast (50) must be below slow (30)"),
    ],
)  # fmt: skip
def test_usage_mistakes_exit_2_and_write_nothing(
    dbs: dict[str, Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    args: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "corrupt.json").write_text("{")
    defaults = {"--db": str(dbs["trend"]), "--name": "x"}
    extra = [item for flag, value in defaults.items() if flag not in args for item in (flag, value)]
    code = main(["promote", *args, *extra])
    assert code == 2
    assert message in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["corrupt.json"]
    assert not (tmp_path.parent / "up").exists()
