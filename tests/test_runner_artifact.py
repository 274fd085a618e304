"""The promotion artifact: written whole with what was validated, read back only if nothing in
it changed, and its strategy loaded from its own copy."""

from __future__ import annotations

import hashlib
import inspect
import json
import linecache
import re
import shutil
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from tests.helpers.bars import walk_bars
from workbench.backtest import BacktestResult, backtest
from workbench.backtest.command import json_number
from workbench.core.fills import BarFills
from workbench.errors import UsageError
from workbench.runner.artifact import (
    FILES,
    ArtifactError,
    data_fingerprint,
    load_artifact,
    params_toml,
    strategy_source,
    write_artifact,
)
from workbench.runner.promote import promote
from workbench.strategy import SmaCross
from workbench.validation.report import ValidationReport, validate

ROOT = Path(__file__).resolve().parent.parent


def trend_bars() -> pd.DataFrame:
    return walk_bars(8_000, 5, drift=0.0004, exchange="sim", symbol="BTC-USD")


@pytest.fixture(scope="module")
def report() -> ValidationReport:
    result = backtest(
        "sma_cross", trend_bars(), interval="1m", params={"fast": 5, "slow": 40}, mode="vectorized"
    )
    checked = validate(result)
    assert checked.passed, checked.failed
    return checked


@pytest.fixture(scope="module")
def promoted(report: ValidationReport, tmp_path_factory: pytest.TempPathFactory) -> Path:
    artifact = promote(report, "trend", dir=tmp_path_factory.mktemp("strategies"), db="x.duckdb")
    return artifact.path


def tampered(promoted: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "trend"
    shutil.copytree(promoted, copy)
    return copy


def unvalidated(result: BacktestResult, passed: bool = True) -> str:
    """A report.json that judges ``result`` without running the gate: for tests of the
    artifact itself."""
    return json.dumps(
        {
            "passed": passed,
            "failed": [] if passed else ["sharpe"],
            "gates": [],
            "strategy": result.strategy,
            "params": result.params,
            "symbol": result.symbol,
            "interval": result.interval,
            "metrics": {k: json_number(v) for k, v in result.metrics.items()},
        }
    )


def test_a_promoted_artifact_holds_every_file_and_their_hashes(
    promoted: Path, report: ValidationReport
) -> None:
    assert sorted(p.name for p in promoted.iterdir()) == sorted([*FILES, "artifact.json"])
    manifest = json.loads((promoted / "artifact.json").read_text())
    for name in FILES:
        assert manifest["files"][name] == hashlib.sha256((promoted / name).read_bytes()).hexdigest()
    builtin = Path(inspect.getfile(SmaCross))
    assert (promoted / "strategy.py").read_bytes() == builtin.read_bytes()
    assert (promoted / "report.json").read_text() == report.to_json()
    assert tomllib.loads((promoted / "params.toml").read_text()) == {
        "fast": 5, "slow": 40, "short": False
    }  # fmt: skip
    assert manifest | {"promoted_at": "", "data": {}, "files": {}, "lock": {}} == {
        "format": 1, "name": "trend", "strategy": "sma_cross", "class": "SmaCross",
        "entry": "strategy.py:SmaCross", "source": str(builtin), "exchange": "sim",
        "symbol": "BTC-USD", "interval": "1m", "mode": "vectorized", "cash": 10_000.0,
        "fills": {"taker_fee_bps": 0.0, "maker_fee_bps": 0.0, "slippage_bps": 0.0,
                  "fill_at": "next_open", "limit_touch": False, "tick": 0.0, "lot": 0.0,
                  "min_size": 0.0},
        "passed": True, "forced": False, "failed": [], "workbench_version": "0.1.0",
        "promoted_at": "", "data": {}, "files": {}, "lock": {},
    }  # fmt: skip
    lock = (ROOT / "requirements.lock").read_bytes()
    assert manifest["lock"]["sha256"] == hashlib.sha256(lock).hexdigest()
    assert manifest["data"]["db"] == str(Path("x.duckdb").resolve())
    assert manifest["promoted_at"].endswith("Z")
    assert not [p for p in promoted.parent.iterdir() if p.name.startswith(".")]


def test_the_strategy_is_made_from_the_artifacts_own_copy(promoted: Path) -> None:
    artifact = load_artifact(promoted)
    strategy = artifact.make_strategy()
    assert type(strategy) is not SmaCross and type(strategy).__name__ == "SmaCross"
    assert Path(inspect.getsourcefile(type(strategy)) or "") == promoted / "strategy.py"
    assert strategy.params == {"fast": 5, "slow": 40, "short": False}
    assert artifact.fills().fill_at == "next_open" and artifact.passed and not artifact.forced


@pytest.mark.parametrize("name", FILES)
def test_a_file_changed_since_promotion_is_refused_by_name(
    promoted: Path, tmp_path: Path, name: str
) -> None:
    copy = tampered(promoted, tmp_path)
    with (copy / name).open("a") as file:
        file.write("\n")
    with pytest.raises(ArtifactError, match=rf"^{name} changed since promotion: sha256 \w+ != "):
        load_artifact(copy)


def test_strategy_py_changed_after_loading_is_refused_when_the_strategy_is_made(
    promoted: Path, tmp_path: Path
) -> None:
    artifact = load_artifact(tampered(promoted, tmp_path))
    (artifact.path / "strategy.py").write_text("class SmaCross: pass\n")
    with pytest.raises(ArtifactError, match=r"strategy\.py changed since promotion"):
        artifact.make_strategy()


def _drop_files(manifest: dict[str, Any]) -> None:
    del manifest["files"]


def _format_2(manifest: dict[str, Any]) -> None:
    manifest["format"] = 2


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "strategy.py").unlink(), "strategy.py is missing from"),
        (lambda d: (d / "artifact.json").unlink(), "has no artifact.json: not a promoted"),
        (lambda d: (d / "artifact.json").write_text("{"), "artifact.json is corrupt"),
        (_drop_files, "artifact.json is corrupt: Object missing required field `files`"),
        (_format_2, "is format 2; this workbench reads format 1"),
        (lambda d: shutil.rmtree(d), "no artifact at .*: it does not exist"),
    ],
)
def test_a_missing_file_or_a_corrupt_manifest_is_refused(
    promoted: Path, tmp_path: Path, damage: Any, message: str
) -> None:
    copy = tampered(promoted, tmp_path)
    if damage in (_drop_files, _format_2):
        manifest = json.loads((copy / "artifact.json").read_text())
        damage(manifest)
        (copy / "artifact.json").write_text(json.dumps(manifest))
    else:
        damage(copy)
    with pytest.raises(ArtifactError, match=message):
        load_artifact(copy)


def test_an_existing_name_is_refused_and_replace_swaps_only_an_artifact(
    promoted: Path, report: ValidationReport, tmp_path: Path
) -> None:
    with pytest.raises(ArtifactError, match="trend exists: promote under another name"):
        promote(report, "trend", dir=promoted.parent)
    copy = tampered(promoted, tmp_path)
    (copy / "strategy.py").write_text("broken")  # replacing is how a damaged one is redone
    replaced = promote(report, "trend", dir=tmp_path, replace=True)
    assert replaced.manifest.promoted_at > load_artifact(promoted).manifest.promoted_at
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trend"]
    (tmp_path / "notes").mkdir()
    with pytest.raises(ArtifactError, match="notes exists and is not an artifact"):
        promote(report, "notes", dir=tmp_path, replace=True)
    with pytest.raises(ArtifactError, match=r"artifact name '\.\./up'"):
        promote(report, "../up", dir=tmp_path)


def test_the_data_fingerprint_is_the_same_for_the_same_bars_and_changes_with_them() -> None:
    bars = trend_bars()
    first = data_fingerprint(bars, "1m", db="a.duckdb")
    aware = bars.assign(ts=bars["ts"].dt.tz_localize("UTC"))
    assert data_fingerprint(bars.copy(), "1m", db="a.duckdb") == first
    assert data_fingerprint(aware, "1m", db="a.duckdb").sha256 == first.sha256
    changed = bars.copy()
    changed.loc[4_000, "close"] *= 1.0001
    assert data_fingerprint(changed, "1m").sha256 != first.sha256
    assert data_fingerprint(bars.iloc[1:], "1m").sha256 != first.sha256
    assert (first.bars, first.first, first.last) == (8_000, "2024-01-01T00:00:00",
                                                     "2024-01-06T13:19:00")  # fmt: skip
    assert (first.exchange, first.symbol, first.halted_bars) == ("sim", "BTC-USD", 0)


def test_params_toml_reads_back_the_same_values_and_types() -> None:
    params = {"n": 3, "x": 1e-05, "big": 5e22, "whole": 2.0, "on": True,
              "label": 'a "b" \\ c\n\t\x7f é 🙂', "ünï": "k"}  # fmt: skip
    loaded = tomllib.loads(params_toml(params))
    assert loaded == params
    assert {k: type(v) for k, v in loaded.items()} == {k: type(v) for k, v in params.items()}


CELL = '''
import numpy as np
from workbench import Param, Strategy

LEVEL = 0.0


class AboveMean(Strategy):
    """Long while the close is above its mean."""

    window = Param(20, low=2)

    def warmup(self) -> int:
        return self.window

    def on_start(self, ctx):
        self.mean = ctx.indicator("sma", self.window)

    def on_bar(self, ctx, bar):
        above = bool(np.greater(bar.close, self.mean[-1] + LEVEL))
        ctx.target(1.0 if above else 0.0)
'''


def run_cell(source: str, number: int) -> dict[str, Any]:
    """``source`` run as ipykernel runs a cell: its text in linecache, module ``__main__``."""
    filename = f"/tmp/ipykernel_0/cell_{number}.py"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source, filename, "exec"), namespace)
    return namespace


def test_a_class_from_a_notebook_cell_is_promoted_with_the_imports_it_needs(
    tmp_path: Path,
) -> None:
    cls = run_cell(CELL, 1)["AboveMean"]
    result = backtest(cls, trend_bars().iloc[:1_000], interval="1m", params={"window": 30})
    artifact = write_artifact(tmp_path / "cell", result, unvalidated(result))
    source = (artifact.path / "strategy.py").read_text()
    assert "import numpy as np\nfrom workbench.strategy.base import Strategy\n" in source
    assert "from workbench.strategy.params import Param\nLEVEL = 0.0\n" in source
    assert source.endswith("ctx.target(1.0 if above else 0.0)\n")
    assert artifact.manifest.source == "notebook cell /tmp/ipykernel_0/cell_1.py"
    assert artifact.make_strategy().params == {"window": 30}


def test_a_notebook_class_that_uses_a_notebook_function_must_be_saved_to_a_file() -> None:
    cell = CELL.replace("LEVEL = 0.0", "def level():\n    return 0.0").replace("LEVEL", "level()")
    cls = run_cell(cell, 2)["AboveMean"]
    expected = "uses 'level', a function defined in the notebook: save it to a file and promote "
    with pytest.raises(UsageError, match=re.escape(expected + "path/to/file.py:AboveMean")):
        strategy_source(cls)


STRATEGY_FILE = """
from workbench import Param, Strategy


class Dip(Strategy):
    level = Param(0.999)

    def on_bar(self, ctx, bar):
        ctx.target(1.0 if bar.close < bar.open * self.level else 0.0)
"""


def test_a_strategy_file_edited_since_its_backtest_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "dip.py"
    path.write_text(STRATEGY_FILE)
    result = backtest(f"{path}:Dip", trend_bars().iloc[:1_000], interval="1m")
    path.write_text(STRATEGY_FILE.replace("bar.close <", "bar.close >"))
    with pytest.raises(ArtifactError, match="does not reproduce the validated backtest"):
        write_artifact(tmp_path / "out" / "dip", result, unvalidated(result))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dip.py"]


def test_a_report_on_another_backtest_is_refused(tmp_path: Path) -> None:
    bars = trend_bars().iloc[:1_000]
    result = backtest("sma_cross", bars, interval="1m")
    other = backtest("sma_cross", bars, interval="1m", params={"fast": 5})
    with pytest.raises(UsageError, match="the report is on params"):
        write_artifact(tmp_path / "x", result, unvalidated(other))
    costly = backtest("sma_cross", bars, interval="1m", fills=BarFills(taker_fee_bps=5))
    with pytest.raises(UsageError, match="the report's backtest is not this one"):
        write_artifact(tmp_path / "x", result, unvalidated(costly))
    assert list(tmp_path.iterdir()) == []
