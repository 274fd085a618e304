"""The statistics a validation gate applies to a backtest or a sweep, as pure functions.

Every Sharpe ratio here is per period (per bar) unless its name says ``annualized``, and is
the one :mod:`workbench.core.metrics` reports: ``SR = mean(r) / std(r)`` with the sample
standard deviation (ddof=1) and a risk-free rate of 0, so ``SR * sqrt(P)`` is a sweep
table's ``sharpe`` for ``P`` bars a year. ``T`` is the number of returns.

Skewness ``γ3`` and kurtosis ``γ4`` are the moment (biased, population) estimators
``scipy.stats.skew(r)`` = m3 / m2^1.5 and ``scipy.stats.kurtosis(r, fisher=False)`` =
m4 / m2², with ``m_k = mean((r - mean(r))^k)``; ``γ4`` is the plain kurtosis (3 for a
normal), not the excess. These are the estimators Bailey & López de Prado use.

Inputs are refused with a :class:`~workbench.errors.UsageError` when a statistic would be
undefined or meaningless: fewer than :data:`MIN_RETURNS` returns (``lags + 2`` for the HAC
test), any NaN or infinite return, a constant series, fewer than 2 trials to deflate for,
a negative variance.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from scipy import stats
from statsmodels.regression.linear_model import OLS  # type: ignore[import-untyped, unused-ignore]
from statsmodels.stats.multitest import multipletests  # type: ignore[import-untyped, unused-ignore]

from workbench.core.metrics import return_stats
from workbench.errors import UsageError

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]

MIN_RETURNS: Final = 3
"""The fewest returns (or observations ``T``) any statistic here accepts: a skewness needs
at least 3 points to say anything, and the Sharpe standard error divides by ``T - 1``."""


@dataclass(frozen=True)
class MeanTest:
    """A one-sided test that the mean per-period return is above zero (see
    :func:`hac_mean_test`)."""

    mean: float
    t_stat: float
    p_value: float
    """P(t >= t_stat) under H0: mean = 0, against H1: mean > 0."""
    lags: int
    observations: int


@dataclass(frozen=True)
class SharpeEstimate:
    """A per-period Sharpe ratio with its non-normal standard error (see
    :func:`sharpe_estimate`)."""

    sharpe: float
    skewness: float
    kurtosis: float
    """The plain (non-excess) kurtosis: 3 for a normal."""
    standard_error: float
    ci_low: float
    ci_high: float
    level: float
    annualized_sharpe: float
    annualized_standard_error: float
    observations: int


@dataclass(frozen=True)
class DeflatedSharpe:
    """A candidate's Sharpe ratio deflated for the trials it was picked from (see
    :func:`deflated_sharpe_ratio`); Sharpe ratios and the variance are per period."""

    sharpe: float
    expected_max_sharpe: float
    """SR0, the best Sharpe ratio ``trials`` skill-less trials would be expected to reach."""
    dsr: float
    """PSR(SR0): the probability that the true Sharpe ratio is above SR0."""
    trials: float
    sharpe_variance: float
    observations: int


@dataclass(frozen=True)
class HolmCorrection:
    """Holm–Bonferroni adjusted p-values and rejections, in the order the p-values came."""

    adjusted: Floats
    reject: Bools
    alpha: float


def default_hac_lags(t: int) -> int:
    """Newey & West's (1994) rule of thumb for the Bartlett kernel's lag truncation,
    ``floor(4 * (T / 100) ** (2 / 9))`` for ``T`` observations."""
    count = _count(t, "the number of observations")
    if count < 1:
        raise UsageError(f"the number of observations must be at least 1, got {count}")
    return math.floor(4 * float((count / 100) ** (2 / 9)))


def hac_mean_test(returns: npt.ArrayLike, *, lags: int | None = None) -> MeanTest:
    """Newey–West (1987) HAC t-test of H0: mean = 0 against H1: mean > 0: the OLS of the
    returns on a constant with Bartlett-kernel HAC standard errors (``statsmodels``
    ``cov_type="HAC"``), truncated at ``lags`` (:func:`default_hac_lags` when None):
    ``t = mean / sqrt(S / T)``, ``S = γ0 + 2 Σ_{j=1..L} (1 - j/(L+1)) γj`` with
    ``γj = Σ_t u_t u_{t-j} / T`` of the demeaned returns u, no small-sample correction.
    The t statistic is taken as standard normal, as statsmodels does for HAC; the p-value
    is its upper tail. Needs ``T >= lags + 2``."""
    r = _returns(returns)
    count = len(r)
    use = default_hac_lags(count) if lags is None else _count(lags, "lags")
    if use < 0:
        raise UsageError(f"lags is a number of autocovariances and cannot be negative: {use}")
    if count < use + 2:
        raise UsageError(
            f"a HAC test with {use} lags needs at least lags + 2 = {use + 2} returns, got "
            f"{count}: use fewer lags or a longer series"
        )
    fit = OLS(r, np.ones(count)).fit(cov_type="HAC", cov_kwds={"maxlags": use})
    t_stat = float(fit.tvalues[0])
    return MeanTest(
        mean=float(fit.params[0]),
        t_stat=t_stat,
        p_value=float(stats.norm.sf(t_stat)),
        lags=use,
        observations=count,
    )


def sharpe_estimate(
    returns: npt.ArrayLike, *, periods_per_year: float, level: float = 0.95
) -> SharpeEstimate:
    """The per-period Sharpe ratio of ``returns`` with its standard error under non-normal
    IID returns (Mertens 2002; Opdyke 2007, :func:`sharpe_standard_error`), the two-sided
    normal confidence interval ``SR ± Φ⁻¹((1 + level) / 2) · SE``, and both annualized by
    ``sqrt(periods_per_year)``."""
    sharpe, skewness, kurtosis, count = sharpe_moments(returns)
    if not (_finite(periods_per_year) and periods_per_year > 0):
        raise UsageError(f"periods_per_year must be a positive number, got {periods_per_year!r}")
    if not (_finite(level) and 0 < level < 1):
        raise UsageError(f"level is a confidence level and must be in (0, 1), got {level!r}")
    se = sharpe_standard_error(sharpe, count, skewness, kurtosis)
    half_width = float(stats.norm.ppf((1 + level) / 2)) * se
    scale = math.sqrt(periods_per_year)
    return SharpeEstimate(
        sharpe=sharpe,
        skewness=skewness,
        kurtosis=kurtosis,
        standard_error=se,
        ci_low=sharpe - half_width,
        ci_high=sharpe + half_width,
        level=float(level),
        annualized_sharpe=sharpe * scale,
        annualized_standard_error=se * scale,
        observations=count,
    )


def sharpe_moments(returns: npt.ArrayLike) -> tuple[float, float, float, int]:
    """``(SR, γ3, γ4, T)`` of ``returns``: what :func:`probabilistic_sharpe_ratio` and
    :func:`deflated_sharpe_ratio` take, with the conventions of the module docstring."""
    r = _returns(returns)
    # The same definition as metrics.json's sharpe, at one period a year.
    sharpe = return_stats(r, 1.0)["sharpe"]
    skewness = float(stats.skew(r))
    kurtosis = float(stats.kurtosis(r, fisher=False))
    if not all(math.isfinite(v) for v in (sharpe, skewness, kurtosis)):
        # Values so nearly equal that the variance underflows; not a constant, but as useless.
        raise UsageError(
            "the returns' variance is too small for a Sharpe ratio, skewness and kurtosis: "
            "they are (numerically) constant"
        )
    return sharpe, skewness, kurtosis, len(r)


def sharpe_standard_error(
    sharpe: float, observations: int, skewness: float, kurtosis: float
) -> float:
    """Standard error of a per-period Sharpe ratio estimated from ``T`` IID returns of
    skewness ``γ3`` and plain kurtosis ``γ4`` (Mertens 2002; Opdyke 2007):
    ``sqrt((1 - γ3 · SR + (γ4 - 1) / 4 · SR²) / (T - 1))``; ``sqrt((1 + SR² / 2) / (T - 1))``
    for normal returns."""
    return math.sqrt(_sharpe_variance_term(sharpe, observations, skewness, kurtosis)) / math.sqrt(
        observations - 1
    )


def probabilistic_sharpe_ratio(
    sharpe: float,
    observations: int,
    skewness: float,
    kurtosis: float,
    *,
    benchmark: float = 0.0,
) -> float:
    """PSR(SR*), the probability that the true per-period Sharpe ratio exceeds ``benchmark``
    SR* given an estimate ``sharpe`` from ``T`` returns (Bailey & López de Prado 2012):
    ``Φ((SR - SR*) · sqrt(T - 1) / sqrt(1 - γ3 · SR + (γ4 - 1) / 4 · SR²))``."""
    term = _sharpe_variance_term(sharpe, observations, skewness, kurtosis)
    if not _finite(benchmark):
        raise UsageError(f"the benchmark Sharpe ratio must be a finite number, got {benchmark!r}")
    z = (sharpe - benchmark) * math.sqrt(observations - 1) / math.sqrt(term)
    return float(stats.norm.cdf(z))


def expected_max_sharpe(trials: float, sharpe_variance: float) -> float:
    """SR0, the expected maximum of ``N`` trials' Sharpe ratios when every trial's true
    Sharpe ratio is 0 (Bailey & López de Prado 2014, the False Strategy theorem):
    ``sqrt(V[SR_n]) · ((1 - γ) · Φ⁻¹(1 - 1/N) + γ · Φ⁻¹(1 - 1/(N·e)))``, γ the
    Euler–Mascheroni constant and ``V[SR_n]`` the variance of the trials' Sharpe ratios, in
    the units (per period or annualized) SR0 is wanted in."""
    n = _trials(trials)
    if not _finite(sharpe_variance):
        raise UsageError(
            f"the variance of the trials' Sharpe ratios must be a finite number, got "
            f"{sharpe_variance!r}"
        )
    if sharpe_variance < 0:
        raise UsageError(
            f"the variance of the trials' Sharpe ratios cannot be negative, got "
            f"{sharpe_variance!r}: pass the variance (not a difference) of their Sharpe ratios"
        )
    gamma = np.euler_gamma
    quantiles = (1 - gamma) * stats.norm.ppf(1 - 1 / n) + gamma * stats.norm.ppf(
        1 - 1 / (n * math.e)
    )
    return math.sqrt(sharpe_variance) * float(quantiles)


def deflated_sharpe_ratio(
    sharpe: float,
    observations: int,
    skewness: float,
    kurtosis: float,
    *,
    trials: float,
    sharpe_variance: float,
) -> DeflatedSharpe:
    """The Deflated Sharpe Ratio DSR = PSR(SR0) of a candidate picked as the best of
    ``trials`` (Bailey & López de Prado 2014): :func:`probabilistic_sharpe_ratio` against
    :func:`expected_max_sharpe`. Everything per period: ``sharpe`` and ``sharpe_variance``
    (the variance of all the trials' per-period Sharpe ratios; an annualized variance
    divided by ``periods_per_year``)."""
    sr0 = expected_max_sharpe(trials, sharpe_variance)
    dsr = probabilistic_sharpe_ratio(sharpe, observations, skewness, kurtosis, benchmark=sr0)
    return DeflatedSharpe(
        sharpe=float(sharpe),
        expected_max_sharpe=sr0,
        dsr=dsr,
        trials=float(trials),
        sharpe_variance=float(sharpe_variance),
        observations=int(observations),
    )


def deflated_sharpe_of_returns(
    returns: npt.ArrayLike, *, trials: float, sharpe_variance: float
) -> DeflatedSharpe:
    """:func:`deflated_sharpe_ratio` of a candidate's per-period ``returns``, its SR, T, γ3
    and γ4 measured by :func:`sharpe_moments`."""
    sharpe, skewness, kurtosis, count = sharpe_moments(returns)
    return deflated_sharpe_ratio(
        sharpe, count, skewness, kurtosis, trials=trials, sharpe_variance=sharpe_variance
    )


def holm(p_values: npt.ArrayLike, *, alpha: float = 0.05) -> HolmCorrection:
    """Holm's (1979) step-down correction of a sweep's p-values, controlling the
    family-wise error rate at ``alpha``: the k-th smallest of m p-values becomes
    ``max over j <= k of min(1, (m - j + 1) · p_(j))``, rejected when below ``alpha``
    (``statsmodels`` ``multipletests(method="holm")``)."""
    try:
        p = np.asarray(p_values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"p-values must be numbers: {exc}") from None
    if p.ndim != 1 or len(p) == 0:
        raise UsageError(f"p-values must be a non-empty 1-D array, got shape {p.shape}")
    bad = ~((p >= 0) & (p <= 1))  # NaN fails both comparisons
    if np.any(bad):
        i = int(np.argmax(bad))
        raise UsageError(f"p-values must be probabilities in [0, 1]: p_values[{i}] = {p[i]}")
    if not (_finite(alpha) and 0 < alpha < 1):
        raise UsageError(f"alpha is a significance level and must be in (0, 1), got {alpha!r}")
    reject, adjusted, _, _ = multipletests(p, alpha=alpha, method="holm")
    return HolmCorrection(
        adjusted=np.asarray(adjusted, dtype=np.float64),
        reject=np.asarray(reject, dtype=np.bool_),
        alpha=float(alpha),
    )


def _returns(returns: npt.ArrayLike) -> Floats:
    """The returns as a float64 array, refused unless 1-D, finite, not constant and at
    least :data:`MIN_RETURNS` long."""
    try:
        r = np.asarray(returns, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UsageError(f"returns must be numbers: {exc}") from None
    if r.ndim != 1:
        raise UsageError(f"returns must be a 1-D series, one per period, got shape {r.shape}")
    if len(r) < MIN_RETURNS:
        raise UsageError(f"at least {MIN_RETURNS} returns are needed, got {len(r)}")
    bad = ~np.isfinite(r)
    if np.any(bad):
        i = int(np.argmax(bad))
        raise UsageError(
            f"returns must be finite: returns[{i}] is {r[i]}; drop the missing bars "
            f"(e.g. .dropna()) or fix the series first"
        )
    if np.ptp(r) == 0:
        raise UsageError(
            f"the returns are constant ({float(r[0])!r} every period): zero variance leaves the "
            f"Sharpe ratio and the t statistic undefined"
        )
    return r


def _count(value: object, what: str) -> int:
    """``value`` as an int, refused unless it is an integer (a bool is not)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise UsageError(f"{what} must be an integer, got {value!r}")
    return int(value)


def _finite(value: object) -> bool:
    """Whether ``value`` is a finite real number (a bool is not one)."""
    return (
        not isinstance(value, bool)
        and isinstance(value, numbers.Real)
        and math.isfinite(float(value))
    )


def _trials(trials: float) -> float:
    """The number of trials, refused below 2: the best of one trial is not a selection."""
    if not _finite(trials):
        raise UsageError(f"trials must be a number of trials, got {trials!r}")
    if trials < 2:
        raise UsageError(
            f"the deflated Sharpe ratio needs at least 2 trials, got {trials!r}: a sweep of "
            f"one trial selected nothing to deflate for; use probabilistic_sharpe_ratio"
        )
    return float(trials)


def _sharpe_variance_term(
    sharpe: float, observations: int, skewness: float, kurtosis: float
) -> float:
    """``1 - γ3 · SR + (γ4 - 1) / 4 · SR²``, after checking the inputs. Any real sample has
    ``γ4 >= 1 + γ3²`` (Pearson), which keeps the term positive; a kurtosis below that is
    almost always an excess kurtosis passed by mistake."""
    count = _count(observations, "observations")
    if count < MIN_RETURNS:
        raise UsageError(f"at least {MIN_RETURNS} observations are needed, got {count}")
    for name, value in (("sharpe", sharpe), ("skewness", skewness), ("kurtosis", kurtosis)):
        if not _finite(value):
            raise UsageError(f"{name} must be a finite number, got {value!r}")
    floor = 1 + skewness**2
    if kurtosis < floor * (1 - 1e-9):  # tolerance: a two-point sample sits on the bound
        raise UsageError(
            f"kurtosis {kurtosis!r} is below 1 + skewness² = {floor!r}, impossible for "
            f"real data: pass the plain kurtosis (3 for a normal), not the excess kurtosis"
        )
    term = 1 - skewness * sharpe + (kurtosis - 1) / 4 * sharpe**2
    if term <= 0:  # only within the tolerance above, at an extreme skewness
        raise UsageError(
            f"skewness {skewness!r} and kurtosis {kurtosis!r} leave the Sharpe ratio's "
            f"variance non-positive ({term!r}): check the moments"
        )
    return term
