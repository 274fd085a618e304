"""The validation gate: calibrated on random strategies, deflating a lucky search, passing a
real edge, and clear about inputs it cannot judge."""

from __future__ import annotations

import base64
import json
import math
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest

from tests.helpers.bars import walk_bars
from workbench.backtest import backtest, sweep
from workbench.core.fills import BarFills
from workbench.errors import UsageError
from workbench.strategy import Strategy
from workbench.strategy.params import Param
from workbench.validation.report import validate

ALPHA = 0.05


class RandomEntries(Strategy):
    """Long, flat or short at random: on about ``switch`` of the bars it draws a new target
    from {-1, 0, 1}. Its draws for bar t come from row t of one seeded stream, so they do
    not depend on how many bars follow (it reads no prices, so it cannot look ahead)."""

    name = "random_entries"
    seed = Param(0, low=0, doc="the random stream")
    switch = Param(0.03, low=0.0, high=1.0, doc="chance of a new target on a bar")

    def signals(self, bars: pd.DataFrame) -> npt.NDArray[np.float64]:
        draws = np.random.default_rng(self.seed).random((len(bars), 2))
        targets = np.floor(draws[:, 1] * 3) - 1.0
        return np.where(draws[:, 0] < self.switch, targets, np.nan)


def test_random_strategies_pass_no_more_often_than_alpha() -> None:
    """200 random strategies on 200 random walks: the significance gate alone passes about
    alpha of the time (it is calibrated, not merely strict), the whole gate at most that."""
    seeds = range(200)
    significant = passed = 0
    for seed in seeds:
        result = backtest(
            RandomEntries(seed=seed),
            walk_bars(1_500, seed),
            interval="1m",
            mode="vectorized",
        )
        report = validate(result, {"min_trades": 10, "alpha": ALPHA})
        significant += report.gate("significance").passed
        passed += report.passed
    spread = 3 * math.sqrt(ALPHA * (1 - ALPHA) / len(seeds))  # three standard errors
    assert ALPHA - spread <= significant / len(seeds) <= ALPHA + spread
    assert passed / len(seeds) <= ALPHA + spread


def test_the_best_of_a_hundred_random_strategies_looks_good_and_is_deflated() -> None:
    bars = walk_bars(3_000, 99)
    swept = sweep(
        RandomEntries,
        {"seed": "0:99:1"},
        bars,
        interval="1m",
        mode="vectorized",
        n_jobs=1,
        progress=False,
    )
    best = swept.best("sharpe")
    assert swept.trials == 100
    report = validate(swept, {"min_trades": 10})
    assert report.params["seed"] == best["seed"] and report.gate("sharpe").value > 3
    # Alone, it looks like an edge: significant, its Sharpe interval above 0, PSR > 0.95.
    assert all(report.gate(name).passed for name in ("significance", "sharpe"))
    assert report.gate("probabilistic sharpe").passed
    deflated = report.gate("deflated sharpe")
    assert not deflated.passed and deflated.value < 0.95
    assert deflated.inputs["trials"] == 100
    assert not report.gate("holm").passed
    assert not report.passed


def test_sma_cross_on_a_trending_series_passes_every_gate(tmp_path: Path) -> None:
    bars = walk_bars(20_000, 7, drift=0.0004)
    swept = sweep(
        "sma_cross",
        {"fast": "5:30:5", "slow": "40:100:20"},
        bars,
        interval="1m",
        fills=BarFills(taker_fee_bps=1.0),
        mode="vectorized",
        n_jobs=1,
        progress=False,
    )
    report = validate(swept)
    assert report.passed, report.failed
    written = report.write(tmp_path / "report")
    document = json.loads((written / "report.json").read_text())
    assert document["passed"] is True and document["trials"] == swept.trials
    names = [gate["name"] for gate in document["gates"]]
    assert names == [gate.name for gate in report.gates]
    assert len(document["walk_forward_folds"]) == 5
    page = (written / "report.html").read_text()
    assert "passed every gate" in page
    charts = [base64.b64decode(src).decode() for src in re.findall(r"base64,([^\"]+)", page)]
    assert len(charts) == 2  # equity and drawdown, the returns' distribution
    segments = re.findall(r'class="segment-label"[^>]*>([^<]+)<', charts[0])
    assert segments == [f"fold {k}" for k in range(5)] + ["holdout"]


def test_what_cannot_be_judged_fails_with_the_reason_never_a_silent_pass() -> None:
    bars = walk_bars(600, 1)
    flat = validate(backtest(RandomEntries(switch=0.0), bars, interval="1m", mode="vectorized"))
    assert not flat.passed
    assert "returns are constant" in flat.gate("significance").detail
    assert flat.gate("round trips").detail == "0 round trips (30 needed)"
    short = validate(backtest(RandomEntries(), walk_bars(40, 2), interval="1m", mode="vectorized"))
    assert short.gate("return periods").detail == "39 per-bar returns (500 needed)"
    assert not short.passed
    one = sweep(
        RandomEntries,
        {"seed": [3]},
        bars,
        interval="1m",
        mode="vectorized",
        n_jobs=1,
        progress=False,
    )
    deflated = validate(one).gate("deflated sharpe")
    assert not deflated.passed and "a sweep of one trial chose nothing" in deflated.detail


def test_a_subject_or_config_it_cannot_use_is_a_usage_error() -> None:
    result = backtest("sma_cross", walk_bars(300, 3), interval="1m")
    with pytest.raises(UsageError, match="validate takes a BacktestResult or a SweepResult"):
        validate(result.trades)  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="at `alpha`"):
        validate(result, {"alpha": 2.0})
    result.recipe = None  # as a trade/book backtest's
    with pytest.raises(UsageError, match="only a bar backtest can be validated"):
        validate(result)


class NextClose(Strategy):
    """Long when the next bar closes higher: the look-ahead the gate exists to catch."""

    name = "next_close"

    def signals(self, bars: pd.DataFrame) -> npt.NDArray[np.float64]:
        rises = bars["close"].shift(-1) > bars["close"]
        return np.where(rises, 1.0, 0.0)


@pytest.mark.parametrize("seed", range(8))
def test_a_strategy_reading_the_next_close_fails_the_look_ahead_gates_every_time(
    seed: int,
) -> None:
    result = backtest(NextClose(), walk_bars(2_000, seed), interval="1m", mode="vectorized")
    report = validate(result)
    assert report.gate("sharpe").passed  # a perfect foresight looks superb…
    for name in ("look-ahead (prefix)", "look-ahead (perturbation)"):
        gate = report.gate(name)
        assert not gate.passed and gate.value and gate.value > 0
        assert "the full run decided" in gate.detail
    # No parameters: its out-of-sample parts run it as it is (a grid of one point).
    assert report.gate("holdout sharpe").inputs["params"] == {}
    assert not report.passed
