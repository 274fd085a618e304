"""The validation gate (``validate``) and what it is made of: thresholds, the statistics
(HAC mean tests, Sharpe standard errors, PSR, DSR, Holm), the out-of-sample splits and the
look-ahead tests."""

from __future__ import annotations

from workbench.validation.config import Thresholds, load_thresholds
from workbench.validation.gate import Gate
from workbench.validation.lookahead import (
    Decision,
    Difference,
    LookaheadCheck,
    LookaheadChecks,
    check_lookahead,
    check_perturbation,
    check_prefix,
)
from workbench.validation.report import ValidationReport, validate
from workbench.validation.stats import (
    MIN_RETURNS,
    DeflatedSharpe,
    HolmCorrection,
    MeanTest,
    SharpeEstimate,
    default_hac_lags,
    deflated_sharpe_of_returns,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    hac_mean_test,
    holm,
    probabilistic_sharpe_ratio,
    sharpe_estimate,
    sharpe_moments,
    sharpe_standard_error,
)
from workbench.validation.walkforward import (
    Fold,
    HoldoutResult,
    WalkForwardResult,
    fold_ranges,
    holdout,
    walk_forward,
)

__all__ = [
    "MIN_RETURNS",
    "Decision",
    "DeflatedSharpe",
    "Difference",
    "Fold",
    "Gate",
    "HoldoutResult",
    "HolmCorrection",
    "LookaheadCheck",
    "LookaheadChecks",
    "MeanTest",
    "SharpeEstimate",
    "Thresholds",
    "ValidationReport",
    "WalkForwardResult",
    "check_lookahead",
    "check_perturbation",
    "check_prefix",
    "default_hac_lags",
    "deflated_sharpe_of_returns",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "fold_ranges",
    "hac_mean_test",
    "holdout",
    "holm",
    "load_thresholds",
    "probabilistic_sharpe_ratio",
    "sharpe_estimate",
    "sharpe_moments",
    "sharpe_standard_error",
    "validate",
    "walk_forward",
]
