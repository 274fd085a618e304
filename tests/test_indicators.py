"""Indicators: vectorized versions match pandas, streaming versions match vectorized to 1e-9.

"Match to 1e-9" is relative to the magnitude of the data (max(1, max |x|)): rounding errors
of sums scale with the values summed, so that is the strongest promise floats can keep.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from workbench.core.indicators import (
    StreamingEMA,
    StreamingReturns,
    StreamingSMA,
    StreamingVol,
    ema,
    returns,
    rolling_vol,
    sma,
)
from workbench.errors import UsageError

Floats = npt.NDArray[np.float64]

prices = st.lists(st.floats(0.01, 1e6), max_size=300)
moves = st.lists(st.floats(-0.5, 0.5), max_size=300)
windows = st.integers(1, 40)


def stream(update: Callable[[float], float], values: Sequence[float]) -> Floats:
    return np.array([update(x) for x in values], dtype=np.float64)


def assert_agree(got: Floats, expected: Floats, values: Sequence[float]) -> None:
    """Same warm-up NaNs, and every value within 1e-9 of the data's magnitude."""
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    scale = max([1.0, *map(abs, values)])
    worst = np.max(np.abs(got - expected), initial=0.0, where=~np.isnan(expected))
    assert worst <= 1e-9 * scale, (worst, scale)


@given(prices, windows)
def test_streaming_sma_equals_vectorized(values: list[float], window: int) -> None:
    assert_agree(stream(StreamingSMA(window).update, values), sma(np.array(values), window), values)


@given(prices, windows)
def test_streaming_ema_equals_vectorized(values: list[float], span: int) -> None:
    assert_agree(stream(StreamingEMA(span).update, values), ema(np.array(values), span), values)


@given(st.one_of(prices, moves), st.integers(2, 40))
def test_streaming_vol_equals_vectorized(values: list[float], window: int) -> None:
    expected = rolling_vol(np.array(values), window)
    assert_agree(stream(StreamingVol(window).update, values), expected, values)


@given(prices, st.booleans())
def test_streaming_returns_equal_vectorized(values: list[float], log: bool) -> None:
    expected = returns(np.array(values), log=log)
    assert_agree(stream(StreamingReturns(log=log).update, values), expected, values)


def test_streaming_sma_does_not_drift_over_a_long_session() -> None:
    """A running sum would drift over 500k ticks; the periodic exact re-sum bounds it, and
    the vectorized sma's restarted running sum stays as close to each window's own mean."""
    rng = np.random.default_rng(7)
    walk = 30_000 * np.exp(np.cumsum(rng.normal(0, 1e-4, 500_000)))
    for window in (20, 50):
        exact = np.lib.stride_tricks.sliding_window_view(walk, window).mean(axis=1)
        got = stream(StreamingSMA(window).update, walk.tolist())[window - 1 :]
        assert np.abs(got - exact).max() <= 1e-9  # absolute, at prices near 30,000
        assert np.abs(sma(walk, window)[window - 1 :] - exact).max() <= 1e-9


def test_streaming_vol_recovers_precision_when_the_variance_collapses() -> None:
    """Swings of 1e6, then a quiet window: sliding updates alone would be off by ~1e-2 here."""
    values = [1e6, -1e6] * 15 + [1.0 + 1e-7 * (i % 3) for i in range(25)]
    got = stream(StreamingVol(20).update, values)
    expected = rolling_vol(np.array(values), 20)
    quiet = slice(30 + 20 - 1, None)  # windows holding only the quiet values
    assert np.max(np.abs(got[quiet] - expected[quiet])) <= 1e-15


@given(st.lists(st.floats(0.01, 1e6), min_size=1, max_size=200), windows)
@settings(max_examples=50)
def test_vectorized_sma_and_vol_match_pandas_rolling(values: list[float], window: int) -> None:
    series = pd.Series(values)
    assert_agree(sma(np.array(values), window), series.rolling(window).mean().to_numpy(), values)
    if window >= 2:
        expected = series.rolling(window).std().to_numpy()
        assert_agree(rolling_vol(np.array(values), window), expected, values)


def test_ema_is_seeded_with_the_first_value_and_reported_after_span_values() -> None:
    # alpha = 2 / (3 + 1) = 0.5: 1 → 1.5 → 2.25 → 3.125
    np.testing.assert_allclose(
        ema(np.array([1.0, 2.0, 3.0, 4.0]), 3), [np.nan, np.nan, 2.25, 3.125]
    )
    assert stream(StreamingEMA(3).update, [1.0, 2.0, 3.0, 4.0])[2:].tolist() == [2.25, 3.125]


def test_returns_are_simple_or_log_with_nan_first() -> None:
    np.testing.assert_allclose(returns(np.array([100.0, 110.0, 99.0])), [np.nan, 0.1, -0.1])
    logs = returns(np.array([100.0, 110.0]), log=True)
    assert math.isnan(logs[0]) and logs[1] == pytest.approx(math.log(1.1))


def test_vectorized_functions_return_a_series_with_the_input_index() -> None:
    index = pd.date_range("2024-01-01", periods=5, freq="1min")
    close = pd.Series([1.0, 2.0, 3.0, 4.0, 5.0], index=index, name="close")
    for result in (sma(close, 2), ema(close, 2), rolling_vol(close, 2), returns(close)):
        assert isinstance(result, pd.Series)
        assert result.index.equals(index) and result.name == "close"
    assert sma(close, 2).tolist()[1:] == [1.5, 2.5, 3.5, 4.5]


def test_short_inputs_are_all_nan() -> None:
    assert np.isnan(sma(np.array([1.0, 2.0]), 3)).all()
    assert np.isnan(rolling_vol(np.array([1.0]), 2)).all()
    assert len(returns(np.array([], dtype=np.float64))) == 0


@pytest.mark.parametrize(
    "make",
    [
        lambda: StreamingSMA(0),
        lambda: StreamingEMA(0),
        lambda: StreamingVol(1),
        lambda: sma(np.ones(3), 0),
        lambda: rolling_vol(np.ones(3), 1),
        lambda: sma(np.ones(3), 2.5),  # type: ignore[arg-type]
    ],
)
def test_bad_windows_are_usage_errors(make: Callable[[], object]) -> None:
    with pytest.raises(UsageError, match="window must be an integer"):
        make()
