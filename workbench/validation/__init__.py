"""Validation statistics: HAC mean tests, Sharpe standard errors, PSR, DSR and Holm."""

from __future__ import annotations

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

__all__ = [
    "MIN_RETURNS",
    "DeflatedSharpe",
    "HolmCorrection",
    "MeanTest",
    "SharpeEstimate",
    "default_hac_lags",
    "deflated_sharpe_of_returns",
    "deflated_sharpe_ratio",
    "expected_max_sharpe",
    "hac_mean_test",
    "holm",
    "probabilistic_sharpe_ratio",
    "sharpe_estimate",
    "sharpe_moments",
    "sharpe_standard_error",
]
