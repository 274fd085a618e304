"""The Strategy API: typed parameters, finding strategies, and the built-in sma_cross."""

from __future__ import annotations

import math
from pathlib import Path
from typing import ClassVar

import pandas as pd
import pytest

from workbench.backtest import backtest
from workbench.errors import UsageError
from workbench.strategy import Param, SmaCross, Strategy, find_strategy, make_strategy


class Knobs(Strategy):
    """A strategy with one parameter of each type."""

    window = Param(20, low=2, high=500, doc="lookback in bars")
    threshold = Param(0.5, low=0.0)
    mode = Param("fast", choices=("fast", "slow"))
    hedge = Param(False)


def test_parameters_default_validate_and_parse_text() -> None:
    knobs = Knobs(window="30", threshold=1, hedge="yes")
    assert knobs.params == {"window": 30, "threshold": 1.0, "mode": "fast", "hedge": True}
    assert (knobs.window, knobs.threshold, knobs.hedge) == (30, 1.0, True)
    assert type(knobs.threshold) is float
    assert repr(knobs) == "Knobs(window=30, threshold=1.0, mode='fast', hedge=True)"
    with pytest.raises(AttributeError, match="fixed"):
        knobs.window = 3  # type: ignore[assignment, misc]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window": 2.5}, r"Knobs: parameter 'window' takes a int, got 2.5 \(float\)"),
        ({"window": True}, "takes a int"),
        ({"window": "ten"}, "takes a int, got 'ten'"),
        ({"window": 1}, r"must be in 2..500, got 1"),
        ({"threshold": float("nan")}, "must be finite"),
        ({"mode": "medium"}, "must be one of"),
        ({"hedge": "maybe"}, "takes true or false"),
        (
            {"widow": 3},
            r"Knobs has no parameter widow \(it takes: window, threshold, mode, hedge\)",
        ),
    ],
)
def test_a_bad_parameter_is_a_clear_usage_error(params: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        Knobs(**params)


def test_describe_lists_the_parameters_for_help_texts() -> None:
    assert Knobs.describe().splitlines() == [
        "Knobs: A strategy with one parameter of each type.",
        "  window: int = 20, 2..500 — lookback in bars",
        "  threshold: float = 0.5, 0..∞",
        "  mode: str = 'fast', one of fast/slow",
        "  hedge: bool = False",
    ]


def test_strategies_are_found_by_name_file_or_class(tmp_path: Path) -> None:
    assert find_strategy("sma_cross") is SmaCross
    assert find_strategy(Knobs) is Knobs
    source = tmp_path / "mine.py"
    source.write_text(
        "from workbench.strategy import Param, Strategy\n"
        "class Mine(Strategy):\n"
        "    lookback = Param(5, low=1)\n"
        "NotAStrategy = int\n"
    )
    mine = make_strategy(f"{source}:Mine", {"lookback": "7"})
    assert (mine.name, mine.params) == ("Mine", {"lookback": 7})
    instance = Knobs()
    assert make_strategy(instance) is instance


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("sma_crosss", "unknown strategy 'sma_crosss': built-in are sma_cross, vol_breakout"),
        ("nowhere.py:Mine", "no strategy file 'nowhere.py'"),
        ("{dir}/mine.py:Other", "defines no 'Other'"),
        ("{dir}/mine.py:NotAStrategy", "is not a subclass of workbench.strategy.Strategy"),
        ("{dir}/broken.py:X", "importing .*broken.py failed: NameError"),
    ],
)
def test_a_strategy_that_cannot_be_found_says_why(tmp_path: Path, spec: str, message: str) -> None:
    (tmp_path / "mine.py").write_text("NotAStrategy = int\n")
    (tmp_path / "broken.py").write_text("undefined_name\n")
    with pytest.raises(UsageError, match=message):
        find_strategy(spec.format(dir=tmp_path))


def test_a_strategy_for_another_api_version_is_refused() -> None:
    class Future(Strategy):
        api_version: ClassVar[int] = 2

    with pytest.raises(UsageError, match="written for Strategy API v2; this workbench has v1"):
        find_strategy(Future)
    with pytest.raises(UsageError, match="not an instance"):
        make_strategy(Knobs(), {"window": 3})


def test_sma_cross_windows_must_be_ordered() -> None:
    with pytest.raises(UsageError, match=r"fast \(30\) must be below slow \(30\)"):
        SmaCross(fast=30)


# closes:   0     1     2     3     4     5     6    7    8    9
CLOSES = [10.0, 10.0, 10.0, 11.0, 12.0, 11.0, 9.0, 8.0, 9.0, 11.0]
# sma2:     -   10    10   10.5  11.5  11.5   10   8.5  8.5   10
# sma3:     -    -    10  10.33   11  11.33 10.67 9.33 8.67 9.33
# Bar 3 crosses up (10 <= 10, 10.5 > 10.33), bar 6 down (11.5 >= 11.33, 10 < 10.67), bar 9
# up again; each filled at the next bar's open (= that bar's close here; bar 9 has none).


def crossing_bars() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=10, freq="1h"),
            "open": CLOSES,
            "high": [c + 0.5 for c in CLOSES],
            "low": [c - 0.5 for c in CLOSES],
            "close": CLOSES,
            "volume": 1.0,
        }
    )


def test_sma_cross_buys_the_cross_up_and_closes_on_the_cross_down() -> None:
    result = backtest("sma_cross", crossing_bars(), interval="1h", params={"fast": 2, "slow": 3})
    size = 10_000 / 12.0
    assert result.fills["price"].tolist() == [12.0, 8.0]
    assert result.fills["size"].tolist() == pytest.approx([size, size])
    assert result.equity["position"].tolist() == pytest.approx(
        [0, 0, 0, 0, size, size, size, 0, 0, 0]
    )
    assert result.trades["pnl"].tolist() == pytest.approx([size * (8.0 - 12.0)])
    assert result.orders["status"].tolist() == ["filled", "filled", "open"]


def test_sma_cross_with_short_goes_all_in_short_on_the_cross_down() -> None:
    params = {"fast": 2, "slow": 3, "short": "true"}
    result = backtest("sma_cross", crossing_bars(), interval="1h", params=params)
    equity_at_flip = 10_000 / 12.0 * 8.0
    assert result.equity["position"].iloc[7] == pytest.approx(-equity_at_flip / 8.0)
    assert result.trades["direction"].tolist() == ["long"]  # the short is still open


def test_the_readme_strategy_example_runs() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("import pandas as pd\nfrom workbench import BarFills")
    code = readme[start : readme.index("```", start)]
    close = [100 + 10 * math.sin(i / 15) + 0.05 * i for i in range(400)]
    bars = pd.DataFrame(
        {
            "ts": pd.date_range("2024-01-01", periods=400, freq="1min"),
            "open": [close[0], *close[:-1]],
            "high": [c + 0.2 for c in close],
            "low": [c - 0.2 for c in close],
            "close": close,
            "volume": 1.0,
        }
    )
    namespace: dict = {"bars": bars}
    exec(compile(code, "README.md", "exec"), namespace)
    result = namespace["result"]
    assert result.strategy == "Breakout" and result.params == {"lookback": 30}
    assert len(result.trades) >= 2 and (result.trades["pnl"] != 0).all()
