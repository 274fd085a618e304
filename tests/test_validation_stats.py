"""Validation statistics: the Deflated Sharpe Ratio paper's worked example, the HAC t-test
against statsmodels and Newey–West by hand, the Sharpe standard error against its formula on
a hand-built series, PSR sanity, Holm by hand, and every refused input."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from scipy import stats
from statsmodels.regression.linear_model import OLS  # type: ignore[import-untyped, unused-ignore]

from workbench.core.metrics import performance
from workbench.errors import UsageError
from workbench.validation.stats import (
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

# Ten hand-written per-period returns: uneven, skewed, with one big loss.
HAND = [0.012, -0.004, 0.007, 0.015, -0.021, 0.003, 0.009, -0.002, 0.011, 0.006]


def ar1(n: int, phi: float, mean: float, seed: int) -> npt.NDArray[np.float64]:
    """A seeded AR(1) series around ``mean``: serially correlated, as bar returns can be."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, 0.01, n)
    x = np.empty(n)
    x[0] = shocks[0]
    for t in range(1, n):
        x[t] = phi * x[t - 1] + shocks[t]
    return mean + x


# --- The Deflated Sharpe Ratio: Bailey & López de Prado (2014), "A Numerical Example" -----
# An annualized SR of 2.5 picked as the best of N = 100 trials whose annualized Sharpe ratios
# have variance 1/2, over T = 1250 daily returns (250 a year) of skewness -3 and kurtosis 10.
# The paper reports SR0 = 0.1132 (daily) and DSR = 0.9004, and DSR = 0.9505 with N = 46. Our
# own calculation: SR = 2.5 / sqrt(250) = 0.158114, V = 0.5 / 250 = 0.002, SR0 = 0.113172
# (1.7894 annualized), z = 1.28382, DSR = Φ(z) = 0.900397; N = 46: SR0 = 0.100362,
# DSR = 0.950502. Asserted to the paper's 4 decimals (half a unit of the last digit).
PAPER = {"sharpe": 2.5 / math.sqrt(250), "observations": 1250, "skewness": -3.0, "kurtosis": 10.0}
PAPER_VARIANCE = 0.5 / 250


def test_deflated_sharpe_reproduces_the_papers_numerical_example() -> None:
    result = deflated_sharpe_ratio(**PAPER, trials=100, sharpe_variance=PAPER_VARIANCE)
    assert result.expected_max_sharpe == pytest.approx(0.1132, abs=5e-5)
    assert result.expected_max_sharpe * math.sqrt(250) == pytest.approx(1.79, abs=5e-3)
    assert result.dsr == pytest.approx(0.9004, abs=5e-5)
    assert result.dsr < 0.95  # the paper's point: not significant at 5% after 100 trials
    assert (result.trials, result.observations) == (100.0, 1250)


def test_deflated_sharpe_passes_with_46_trials_in_the_papers_example() -> None:
    result = deflated_sharpe_ratio(**PAPER, trials=46, sharpe_variance=PAPER_VARIANCE)
    assert result.dsr == pytest.approx(0.9505, abs=5e-5)


def test_expected_max_sharpe_is_the_false_strategy_formula_and_scales_with_the_sd() -> None:
    gamma = 0.5772156649015329
    n = 100
    by_hand = (1 - gamma) * stats.norm.ppf(1 - 1 / n) + gamma * stats.norm.ppf(1 - 1 / (n * math.e))
    assert expected_max_sharpe(n, 1.0) == pytest.approx(by_hand, rel=1e-12)
    assert expected_max_sharpe(n, 4.0) == pytest.approx(2 * by_hand, rel=1e-12)
    assert expected_max_sharpe(n, 0.0) == 0.0
    assert expected_max_sharpe(10, 1.0) < expected_max_sharpe(100, 1.0)


def test_deflated_sharpe_of_returns_measures_the_moments_of_the_returns() -> None:
    r = ar1(500, 0.0, 0.001, seed=3)
    sharpe, skewness, kurtosis, count = sharpe_moments(r)
    from_returns = deflated_sharpe_of_returns(r, trials=20, sharpe_variance=0.001)
    from_moments = deflated_sharpe_ratio(
        sharpe, count, skewness, kurtosis, trials=20, sharpe_variance=0.001
    )
    assert from_returns == from_moments
    assert from_returns.dsr < probabilistic_sharpe_ratio(sharpe, count, skewness, kurtosis)


# --- HAC t-test ----------------------------------------------------------------------------


def test_default_hac_lags_is_newey_wests_rule_of_thumb() -> None:
    assert default_hac_lags(100) == 4
    assert default_hac_lags(1250) == 7  # 4 * 12.5 ** (2/9) = 7.01
    assert default_hac_lags(10) == 2  # 4 * 0.1 ** (2/9) = 2.40
    assert default_hac_lags(1) == 1  # 4 * 0.01 ** (2/9) = 1.43


def test_hac_t_equals_statsmodels_on_an_ar1_series() -> None:
    r = ar1(400, 0.5, 0.0015, seed=11)
    fit = OLS(r, np.ones(len(r))).fit(cov_type="HAC", cov_kwds={"maxlags": 7})
    result = hac_mean_test(r, lags=7)
    assert result.t_stat == pytest.approx(float(fit.tvalues[0]), rel=1e-12)
    assert result.mean == pytest.approx(float(np.mean(r)), rel=1e-12)
    assert result.t_stat > 0
    # One-sided: half the two-sided normal p-value statsmodels reports, as t > 0.
    assert result.p_value == pytest.approx(float(fit.pvalues[0]) / 2, rel=1e-9)
    assert (result.lags, result.observations) == (7, 400)


def test_hac_t_is_newey_west_by_hand_and_default_lags_are_the_rule_of_thumb() -> None:
    r = ar1(300, 0.4, -0.0005, seed=5)
    n, lags = len(r), default_hac_lags(300)
    u = r - r.mean()
    s = u @ u / n + 2 * sum((1 - j / (lags + 1)) * (u[j:] @ u[:-j]) / n for j in range(1, lags + 1))
    t = r.mean() / math.sqrt(s / n)
    result = hac_mean_test(r)
    assert result.lags == lags == 5
    assert result.t_stat == pytest.approx(t, rel=1e-10)
    assert result.t_stat < 0
    assert result.p_value == pytest.approx(1 - stats.norm.cdf(t), rel=1e-10)
    assert result.p_value > 0.5  # a negative mean is no evidence of a positive one


def test_hac_correction_widens_the_naive_standard_error_for_positive_autocorrelation() -> None:
    r = ar1(1000, 0.6, 0.001, seed=2)
    naive = hac_mean_test(r, lags=0)
    hac = hac_mean_test(r, lags=10)
    assert naive.t_stat == pytest.approx(np.mean(r) / (np.std(r) / math.sqrt(len(r))), rel=1e-10)
    assert 0 < hac.t_stat < naive.t_stat


# --- Sharpe ratio and its standard error ---------------------------------------------------


def test_sharpe_standard_error_is_the_mertens_formula_on_a_hand_built_series() -> None:
    x = np.array(HAND)
    n = len(x)
    mean = x.sum() / n
    sr = mean / math.sqrt(((x - mean) ** 2).sum() / (n - 1))
    m2, m3, m4 = (((x - mean) ** k).mean() for k in (2, 3, 4))
    skew, kurt = m3 / m2**1.5, m4 / m2**2
    se = math.sqrt((1 - skew * sr + (kurt - 1) / 4 * sr**2) / (n - 1))

    est = sharpe_estimate(HAND, periods_per_year=365)
    assert est.sharpe == pytest.approx(sr, rel=1e-12)
    assert est.skewness == pytest.approx(skew, rel=1e-12)
    assert est.skewness < 0
    assert est.kurtosis == pytest.approx(kurt, rel=1e-12)
    assert est.standard_error == pytest.approx(se, rel=1e-12)
    z = 1.959963984540054  # Φ⁻¹(0.975)
    assert est.ci_low == pytest.approx(sr - z * se, rel=1e-12)
    assert est.ci_high == pytest.approx(sr + z * se, rel=1e-12)
    assert est.annualized_sharpe == pytest.approx(sr * math.sqrt(365), rel=1e-12)
    assert est.annualized_standard_error == pytest.approx(se * math.sqrt(365), rel=1e-12)
    assert (est.observations, est.level) == (10, 0.95)


def test_a_wider_level_widens_the_interval_around_the_same_sharpe() -> None:
    narrow = sharpe_estimate(HAND, periods_per_year=365, level=0.5)
    wide = sharpe_estimate(HAND, periods_per_year=365, level=0.99)
    z = 2.5758293035489004  # Φ⁻¹(0.995)
    assert wide.ci_high - wide.sharpe == pytest.approx(z * wide.standard_error, rel=1e-12)
    assert wide.ci_low < narrow.ci_low < narrow.sharpe == wide.sharpe < narrow.ci_high
    assert narrow.ci_high < wide.ci_high


def test_normal_moments_give_the_iid_normal_standard_error() -> None:
    assert sharpe_standard_error(0.2, 101, 0.0, 3.0) == pytest.approx(
        math.sqrt((1 + 0.2**2 / 2) / 100), rel=1e-12
    )


def test_annualized_sharpe_is_the_metrics_json_sharpe() -> None:
    r = ar1(200, 0.1, 0.0008, seed=9)
    equity = 100.0 * np.cumprod(np.concatenate(([1.0], 1 + r)))
    metrics = performance(
        equity,
        np.arange(len(equity), dtype=np.int64) * 60_000_000,
        np.zeros(0),
        periods_per_year=525_600.0,
        fees_paid=0.0,
        traded_notional=0.0,
        exposure=1.0,
    )
    est = sharpe_estimate(r, periods_per_year=525_600.0)
    assert est.annualized_sharpe == pytest.approx(metrics["sharpe"], rel=1e-9)


# --- Probabilistic Sharpe Ratio --------------------------------------------------------------


def test_psr_is_one_half_at_its_own_sharpe_and_falls_as_the_benchmark_rises() -> None:
    moments = {"observations": 250, "skewness": -0.5, "kurtosis": 5.0}
    assert probabilistic_sharpe_ratio(0.1, **moments, benchmark=0.1) == pytest.approx(0.5)
    psrs = [probabilistic_sharpe_ratio(0.1, **moments, benchmark=b) for b in (-0.1, 0, 0.05, 0.2)]
    assert psrs == sorted(psrs, reverse=True)
    assert psrs[0] > 0.5 > psrs[-1]


def test_psr_grows_with_the_track_record_and_is_phi_of_the_standardized_distance() -> None:
    short = probabilistic_sharpe_ratio(0.1, 50, 0.0, 3.0)
    long = probabilistic_sharpe_ratio(0.1, 500, 0.0, 3.0)
    assert short < long
    se = sharpe_standard_error(0.1, 500, 0.0, 3.0)
    assert long == pytest.approx(stats.norm.cdf(0.1 / se), rel=1e-12)


def test_negative_skew_and_fat_tails_lower_the_psr() -> None:
    normal = probabilistic_sharpe_ratio(0.1, 250, 0.0, 3.0)
    assert probabilistic_sharpe_ratio(0.1, 250, -1.0, 3.0) < normal
    assert probabilistic_sharpe_ratio(0.1, 250, 0.0, 8.0) < normal


# --- Holm ------------------------------------------------------------------------------------


def test_holm_matches_a_hand_computed_example() -> None:
    # Sorted: 0.005, 0.01, 0.03, 0.04 -> x4, x3, x2, x1 = 0.02, 0.03, 0.06, 0.04 -> running
    # max 0.02, 0.03, 0.06, 0.06; back in the given order:
    result = holm([0.01, 0.04, 0.03, 0.005], alpha=0.05)
    assert result.adjusted.tolist() == pytest.approx([0.03, 0.06, 0.06, 0.02], abs=1e-15)
    assert result.reject.tolist() == [True, False, False, True]
    assert result.alpha == 0.05


def test_holm_caps_adjusted_p_values_at_one() -> None:
    result = holm(np.array([0.6, 0.9]))
    assert result.adjusted.tolist() == [1.0, 1.0]
    assert not result.reject.any()


# --- Refused inputs --------------------------------------------------------------------------

SERIES = [0.01, -0.02, 0.03, 0.005, -0.01, 0.02]


@pytest.mark.parametrize(
    ("returns", "message"),
    [
        ([0.01, 0.02], r"at least 3 returns are needed, got 2"),
        ([], r"at least 3 returns are needed, got 0"),
        ([0.01, 0.01, 0.01, 0.01], r"returns are constant \(0\.01 every period\)"),
        ([0.01, 0.02, math.nan, 0.0], r"returns\[2\] is nan; drop the missing bars"),
        ([0.01, math.inf, 0.02, 0.0], r"returns\[1\] is inf"),
        ([[0.01, 0.02], [0.03, 0.04]], r"1-D series.*shape \(2, 2\)"),
        (["a", "b", "c"], r"returns must be numbers"),
    ],
)
def test_bad_returns_are_refused_by_every_statistic(returns: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        sharpe_estimate(returns, periods_per_year=365)
    with pytest.raises(UsageError, match=message):
        hac_mean_test(returns, lags=0)
    with pytest.raises(UsageError, match=message):
        deflated_sharpe_of_returns(returns, trials=10, sharpe_variance=0.01)


def test_nearly_constant_returns_are_refused() -> None:
    with pytest.raises(UsageError, match=r"variance is too small"):
        sharpe_moments([1e-300, 0.0, 0.0, 0.0])


@pytest.mark.parametrize(
    ("lags", "message"),
    [
        (5, r"with 5 lags needs at least lags \+ 2 = 7 returns, got 6"),
        (-1, r"lags .* cannot be negative: -1"),
        (1.5, r"lags must be an integer, got 1\.5"),
        (True, r"lags must be an integer, got True"),
    ],
)
def test_hac_refuses_bad_lags(lags: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        hac_mean_test(SERIES, lags=lags)


def test_hac_accepts_the_most_lags_a_series_allows() -> None:
    assert hac_mean_test(SERIES, lags=4).lags == 4


@pytest.mark.parametrize("t", [0, -5])
def test_default_hac_lags_refuses_no_observations(t: int) -> None:
    with pytest.raises(UsageError, match=r"number of observations must be at least 1"):
        default_hac_lags(t)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"periods_per_year": 0.0}, r"periods_per_year must be a positive number, got 0\.0"),
        ({"periods_per_year": math.nan}, r"periods_per_year must be a positive number"),
        ({"periods_per_year": 365, "level": 1.0}, r"level .* must be in \(0, 1\), got 1\.0"),
        ({"periods_per_year": 365, "level": 95}, r"level .* must be in \(0, 1\), got 95"),
    ],
)
def test_sharpe_estimate_refuses_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        sharpe_estimate(SERIES, **options)


@pytest.mark.parametrize(
    ("trials", "message"),
    [
        (1, r"needs at least 2 trials, got 1: a sweep of one trial"),
        (0, r"needs at least 2 trials, got 0"),
        (math.inf, r"trials must be a number of trials, got inf"),
        (True, r"trials must be a number of trials, got True"),
    ],
)
def test_deflating_refuses_fewer_than_two_trials(trials: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        expected_max_sharpe(trials, 0.01)
    with pytest.raises(UsageError, match=message):
        deflated_sharpe_ratio(**PAPER, trials=trials, sharpe_variance=PAPER_VARIANCE)


@pytest.mark.parametrize(
    ("variance", "message"),
    [
        (-0.001, r"variance of the trials' Sharpe ratios cannot be negative, got -0\.001"),
        (math.nan, r"variance of the trials' Sharpe ratios must be a finite number, got nan"),
    ],
)
def test_deflating_refuses_a_bad_variance(variance: float, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        deflated_sharpe_ratio(**PAPER, trials=100, sharpe_variance=variance)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0.1, 2, 0.0, 3.0), r"at least 3 observations are needed, got 2"),
        ((0.1, 250.0, 0.0, 3.0), r"observations must be an integer, got 250\.0"),
        ((math.nan, 250, 0.0, 3.0), r"sharpe must be a finite number, got nan"),
        ((0.1, 250, math.inf, 3.0), r"skewness must be a finite number, got inf"),
        ((0.1, 250, 0.0, 0.0), r"kurtosis 0\.0 is below 1 \+ skewness² = 1\.0.*not the excess"),
        ((0.1, 250, -3.0, 9.0), r"kurtosis 9\.0 is below 1 \+ skewness² = 10\.0"),
    ],
)
def test_psr_and_the_standard_error_refuse_bad_moments(args: Any, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        probabilistic_sharpe_ratio(*args)
    with pytest.raises(UsageError, match=message):
        sharpe_standard_error(*args)


def test_psr_refuses_an_infinite_benchmark() -> None:
    with pytest.raises(UsageError, match=r"benchmark Sharpe ratio must be a finite number"):
        probabilistic_sharpe_ratio(0.1, 250, 0.0, 3.0, benchmark=math.inf)


def test_a_two_point_sample_on_the_kurtosis_bound_is_accepted() -> None:
    est = sharpe_estimate([0.02, -0.01, 0.02, -0.01, 0.02, -0.01, 0.02], periods_per_year=365)
    assert est.kurtosis == pytest.approx(1 + est.skewness**2, rel=1e-9)
    assert est.standard_error > 0


@pytest.mark.parametrize(
    ("p_values", "alpha", "message"),
    [
        ([0.01, 1.2], 0.05, r"probabilities in \[0, 1\]: p_values\[1\] = 1\.2"),
        ([0.01, math.nan], 0.05, r"p_values\[1\] = nan"),
        ([-0.01], 0.05, r"p_values\[0\] = -0\.01"),
        ([], 0.05, r"non-empty 1-D array, got shape \(0,\)"),
        (["x"], 0.05, r"p-values must be numbers"),
        ([0.01, 0.02], 0.0, r"alpha .* must be in \(0, 1\), got 0\.0"),
    ],
)
def test_holm_refuses_bad_input(p_values: Any, alpha: float, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        holm(p_values, alpha=alpha)
