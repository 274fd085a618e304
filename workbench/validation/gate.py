"""``validate()``: the gates a strategy must pass before it may be promoted, every number shown.

A gate is a named test with its value, its threshold, whether it passed and the inputs that
produced it (:class:`Gate`). :func:`validate` takes a backtest result, or a sweep (whose best
trial by Sharpe is the candidate, deflated for the search that found it), and runs:

- **evidence**: enough round trips, enough return periods;
- **significance**: a HAC (Newey–West) t-test that the mean per-bar return is above zero;
- **sharpe**: the annualised Sharpe ratio's confidence interval (Mertens/Opdyke standard error,
  for skewed and fat-tailed returns) lies above a floor;
- for a sweep, **deflated sharpe** (the Deflated Sharpe Ratio against the best Sharpe its
  trials would reach by luck) and **holm** (the best trial's p-value corrected for all of them);
- **out of sample**: the parameters chosen (by a sweep of the grid, or the fixed ones of a
  single backtest) on a holdout's first part and on each walk-forward fold's in-sample part,
  scored on the bars after it: the out-of-sample Sharpe and its ratio to the in-sample one;
- **no look-ahead**: re-run on the bars truncated at several cuts, the strategy makes exactly
  the decisions it made before each cut; with the bars after a cut changed, none before it
  changes (:mod:`workbench.validation.lookahead`);
- **cost stress**: still profitable with fees and slippage multiplied.

Per-bar returns are the equity's from one bar's close to the next, flat bars included: what a
holder of the strategy would have earned, bar by bar.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from workbench.backtest.recipe import Recipe
from workbench.backtest.result import BacktestResult
from workbench.backtest.sweep import SweepResult
from workbench.core.fills import BarFills
from workbench.core.intervals import parse_interval
from workbench.core.metrics import periods_per_year
from workbench.errors import UsageError
from workbench.validation.config import Thresholds, load_thresholds
from workbench.validation.lookahead import check_lookahead
from workbench.validation.stats import (
    deflated_sharpe_of_returns,
    hac_mean_test,
    holm,
    probabilistic_sharpe_ratio,
    sharpe_estimate,
    sharpe_moments,
)
from workbench.validation.walkforward import (
    HoldoutResult,
    WalkForwardResult,
    holdout,
    walk_forward,
)

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Gate:
    """One test of the report: ``value`` against ``threshold`` (as text, e.g. ``">= 30"``),
    ``inputs`` what produced the value, ``detail`` the verdict in words."""

    name: str
    passed: bool
    value: float | None
    threshold: str
    inputs: dict[str, Any] = field(default_factory=dict)
    detail: str = ""


@dataclass(frozen=True)
class Candidate:
    """What is validated: a backtest of one parameter set, and the sweep it was chosen from."""

    result: BacktestResult
    recipe: Recipe
    returns: Floats
    periods_per_year: float
    sweep: SweepResult | None = None


def candidate_of(subject: BacktestResult | SweepResult) -> Candidate:
    """The backtest a report judges: ``subject`` itself, or a sweep's best trial by Sharpe
    (run again in full from the sweep's recipe)."""
    if isinstance(subject, SweepResult):
        if subject.recipe is None:
            raise UsageError("this sweep keeps no recipe to run its best trial again")
        best = subject.best("sharpe")
        params = {name: _plain(best[name]) for name in subject.grid}
        recipe = subject.recipe.but(params=params)
        result = recipe.backtest()
        sweep: SweepResult | None = subject
    elif isinstance(subject, BacktestResult):
        if subject.recipe is None:
            raise UsageError(
                "only a bar backtest can be validated: it is re-run on changed data and costs"
            )
        result, recipe, sweep = subject, subject.recipe, None
    else:
        raise UsageError(
            f"validate takes a BacktestResult or a SweepResult, got {type(subject).__name__}"
        )
    equity = result.equity["equity"].to_numpy(dtype=np.float64)
    every = parse_interval(recipe.interval)
    return Candidate(
        result=result,
        recipe=recipe,
        returns=equity[1:] / equity[:-1] - 1.0,
        periods_per_year=periods_per_year(every.seconds),
        sweep=sweep,
    )


def thresholds_of(config: Thresholds | str | Path | dict[str, Any] | None) -> Thresholds:
    """``config`` as thresholds: None for the defaults, a TOML file, or overrides by name."""
    if config is None:
        return Thresholds()
    if isinstance(config, Thresholds):
        return config
    if isinstance(config, (str, Path)):
        return load_thresholds(config)
    if isinstance(config, dict):
        return Thresholds().but(config)
    raise UsageError(f"config is Thresholds, a TOML file or a dict, got {type(config).__name__}")


def evidence_gates(candidate: Candidate, limits: Thresholds) -> list[Gate]:
    trips = len(candidate.result.trades)
    count = len(candidate.returns)
    return [
        Gate(
            "round trips",
            trips >= limits.min_trades,
            float(trips),
            f">= {limits.min_trades}",
            {"trades": trips},
            f"{trips} round trips ({limits.min_trades} needed)",
        ),
        Gate(
            "return periods",
            count >= limits.min_returns,
            float(count),
            f">= {limits.min_returns}",
            {"T": count, "interval": candidate.recipe.interval},
            f"{count} per-bar returns ({limits.min_returns} needed)",
        ),
    ]


def significance_gate(candidate: Candidate, limits: Thresholds) -> Gate:
    test = hac_mean_test(candidate.returns, lags=limits.hac_lags)
    return Gate(
        "significance",
        test.p_value < limits.alpha,
        test.p_value,
        f"< {limits.alpha:g}",
        {
            "T": test.observations,
            "lags": test.lags,
            "mean_return": test.mean,
            "t_stat": test.t_stat,
        },
        f"HAC t = {test.t_stat:.3f} with {test.lags} lags: one-sided p = {test.p_value:.4g}",
    )


def sharpe_gate(candidate: Candidate, limits: Thresholds) -> Gate:
    estimate = sharpe_estimate(
        candidate.returns, periods_per_year=candidate.periods_per_year, level=limits.sharpe_level
    )
    scale = math.sqrt(candidate.periods_per_year)
    low, high = estimate.ci_low * scale, estimate.ci_high * scale
    return Gate(
        "sharpe",
        low > limits.min_sharpe,
        estimate.annualized_sharpe,
        f"{limits.sharpe_level:.0%} interval above {limits.min_sharpe:g}",
        {
            "T": estimate.observations,
            "sharpe_per_period": estimate.sharpe,
            "skewness": estimate.skewness,
            "kurtosis": estimate.kurtosis,
            "standard_error_per_period": estimate.standard_error,
            "ci_low": low,
            "ci_high": high,
            "periods_per_year": candidate.periods_per_year,
        },
        f"annualised Sharpe {estimate.annualized_sharpe:.3f}, {limits.sharpe_level:.0%} "
        f"interval [{low:.3f}, {high:.3f}]",
    )


def sweep_gates(candidate: Candidate, limits: Thresholds) -> list[Gate]:
    """Deflated Sharpe and Holm: how much of the best trial's edge the search explains."""
    sweep = candidate.sweep
    assert sweep is not None
    ran = sweep.table[sweep.table["status"] == "ok"]["trial"].tolist()
    curves = [sweep.returns[trial].to_numpy(dtype=np.float64) for trial in ran]
    trials = len(curves)
    if trials < 2:
        raise UsageError(
            "a sweep of one trial chose nothing, so there is no search to deflate for: "
            "validate its backtest instead"
        )
    sharpes = np.array([_sharpe_or_nan(curve) for curve in curves])
    variance = float(np.nanvar(sharpes, ddof=1))
    sharpe, skewness, kurtosis, count = sharpe_moments(candidate.returns)
    psr = probabilistic_sharpe_ratio(sharpe, count, skewness, kurtosis)
    deflated = deflated_sharpe_of_returns(
        candidate.returns, trials=trials, sharpe_variance=variance
    )
    p_values = np.array([_p_or_one(curve, limits) for curve in curves])
    corrected = holm(p_values, alpha=limits.alpha)
    best = ran.index(int(sweep.best("sharpe")["trial"]))
    inputs = {
        "trials": trials,
        "trial_sharpe_variance_per_period": variance,
        "sharpe_per_period": sharpe,
        "skewness": skewness,
        "kurtosis": kurtosis,
        "T": count,
    }
    return [
        Gate(
            "probabilistic sharpe",
            psr >= limits.min_psr,
            psr,
            f">= {limits.min_psr:g}",
            inputs,
            f"P(true Sharpe > 0) = {psr:.4f}",
        ),
        Gate(
            "deflated sharpe",
            deflated.dsr >= limits.min_dsr,
            deflated.dsr,
            f">= {limits.min_dsr:g}",
            inputs | {"expected_max_sharpe_per_period": deflated.expected_max_sharpe},
            f"P(true Sharpe > {deflated.expected_max_sharpe:.4g} per bar, the best of "
            f"{trials} trials by luck) = {deflated.dsr:.4f}",
        ),
        Gate(
            "holm",
            bool(corrected.reject[best]),
            float(corrected.adjusted[best]),
            f"< {limits.alpha:g}",
            {"trials": trials, "raw_p": float(p_values[best])},
            f"the best trial's p = {p_values[best]:.4g}, {corrected.adjusted[best]:.4g} after "
            f"Holm's correction for {trials} trials",
        ),
    ]


def out_of_sample_gates(
    candidate: Candidate, limits: Thresholds, *, n_jobs: int
) -> tuple[list[Gate], HoldoutResult, WalkForwardResult]:
    """Holdout and walk-forward: Sharpe out of sample above a floor, and its ratio to the
    in-sample Sharpe (NaN, so failing, unless the in-sample one is positive)."""
    recipe = candidate.recipe
    grid: dict[str, object] = (
        dict(candidate.sweep.grid)
        if candidate.sweep is not None
        else {name: [value] for name, value in recipe.params.items()}
    )
    common: dict[str, Any] = {
        "interval": recipe.interval,
        "fills": recipe.fills,
        "cash": recipe.cash,
        "mode": recipe.mode,
        "n_jobs": n_jobs,
        "progress": False,
        "exclude": recipe.exclude,
    }
    split = holdout(recipe.strategy, grid, recipe.bars, fraction=limits.holdout, **common)
    folds = walk_forward(
        recipe.strategy, grid, recipe.bars, folds=limits.folds, scheme=limits.scheme, **common
    )
    fold = split.fold
    gates = [
        Gate(
            "holdout sharpe",
            fold.oos_sharpe > limits.min_oos_sharpe,
            fold.oos_sharpe,
            f"> {limits.min_oos_sharpe:g}",
            {"fraction": limits.holdout, "params": fold.params, "is_sharpe": fold.is_sharpe},
            f"Sharpe {fold.oos_sharpe:.3f} on the last {1 - limits.holdout:.0%} of the bars "
            f"with {_params_text(fold.params)} chosen on the rest",
        ),
        Gate(
            "holdout ratio",
            fold.ratio >= limits.min_oos_is_ratio,
            fold.ratio,
            f">= {limits.min_oos_is_ratio:g}",
            {"oos_sharpe": fold.oos_sharpe, "is_sharpe": fold.is_sharpe},
            _ratio_text(fold.oos_sharpe, fold.is_sharpe),
        ),
        Gate(
            "walk-forward sharpe",
            folds.sharpe > limits.min_oos_sharpe,
            folds.sharpe,
            f"> {limits.min_oos_sharpe:g}",
            {"folds": limits.folds, "scheme": limits.scheme, "T": len(folds.returns)},
            f"Sharpe {folds.sharpe:.3f} of the {limits.folds} out-of-sample segments stitched "
            f"({limits.scheme})",
        ),
        Gate(
            "walk-forward ratio",
            folds.mean_ratio >= limits.min_oos_is_ratio,
            folds.mean_ratio,
            f">= {limits.min_oos_is_ratio:g}",
            {"ratios": [fold.ratio for fold in folds.folds]},
            f"mean out-of-sample / in-sample Sharpe over the folds = {folds.mean_ratio:.3f}",
        ),
    ]
    return gates, split, folds


def lookahead_gates(candidate: Candidate, limits: Thresholds) -> list[Gate]:
    recipe = candidate.recipe
    checks = check_lookahead(
        recipe.make(),
        recipe.bars,
        interval=recipe.interval,
        fills=recipe.fills,
        mode=recipe.mode,
        cuts=limits.lookahead_cuts,
        seed=limits.seed,
        cash=recipe.cash,
        exclude=recipe.exclude,
    )
    gates = []
    for check in checks:
        first = check.first
        gates.append(
            Gate(
                f"look-ahead ({check.test})",
                check.passed,
                float(len(check.differences)),
                "0 changed decisions",
                {
                    "cuts": list(check.cuts),
                    "cut_times": [time.isoformat() for time in check.cut_times],
                    "decisions_compared": check.compared,
                    "seed": check.seed,
                    "first_difference": None if first is None else first.description,
                },
                check.description,
            )
        )
    return gates


def cost_stress_gate(candidate: Candidate, limits: Thresholds) -> Gate:
    fills = candidate.recipe.fills
    stressed = _scaled_costs(fills, limits.cost_multiplier)
    result = candidate.recipe.but(fills=stressed).backtest()
    total = result.metrics["total_return"]
    return Gate(
        "cost stress",
        total > 0,
        total,
        "> 0",
        {
            "multiplier": limits.cost_multiplier,
            "maker_fee_bps": stressed.maker_fee_bps,
            "taker_fee_bps": stressed.taker_fee_bps,
            "slippage_bps": stressed.slippage_bps,
            "total_return_at_cost": candidate.result.metrics["total_return"],
        },
        f"total return {total:.2%} with fees and slippage x{limits.cost_multiplier:g} "
        f"(at cost: {candidate.result.metrics['total_return']:.2%})",
    )


def guarded(name: str, threshold: str, run: Callable[[], Gate | list[Gate]]) -> list[Gate]:
    """``run``'s gates, or one failed gate saying why its statistic does not exist (returns
    that are constant because the strategy never traded, too few of them, …)."""
    try:
        made = run()
    except UsageError as exc:
        return [Gate(name, False, None, threshold, {}, f"not computable: {exc}")]
    return made if isinstance(made, list) else [made]


def _scaled_costs(fills: BarFills, factor: float) -> BarFills:
    return dataclasses.replace(
        fills,
        maker_fee_bps=fills.maker_fee_bps * factor,
        taker_fee_bps=fills.taker_fee_bps * factor,
        slippage_bps=fills.slippage_bps * factor,
    )


def _sharpe_or_nan(curve: Floats) -> float:
    try:
        return sharpe_moments(curve)[0]
    except UsageError:  # a trial that never traded has no Sharpe ratio
        return math.nan


def _p_or_one(curve: Floats, limits: Thresholds) -> float:
    try:
        return hac_mean_test(curve, lags=limits.hac_lags).p_value
    except UsageError:  # nothing to test: counts as no evidence at all
        return 1.0


def _ratio_text(oos: float, in_sample: float) -> str:
    said = f"out-of-sample / in-sample Sharpe = {oos:.3f} / {in_sample:.3f}"
    return said if in_sample > 0 else f"{said}: no ratio, the in-sample Sharpe is not positive"


def _params_text(params: dict[str, Any]) -> str:
    return ", ".join(f"{name}={value!r}" for name, value in params.items()) or "no parameters"


def _plain(value: Any) -> Any:
    """A table cell as the Python value a strategy parameter takes."""
    return value.item() if isinstance(value, np.generic) else value
