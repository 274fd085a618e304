"""Bars for strategy tests: a seeded log-normal random walk in the shape backtest() takes."""

from __future__ import annotations

import numpy as np
import pandas as pd


def walk_bars(
    n: int,
    seed: int = 0,
    *,
    sigma: float = 0.002,
    drift: float = 0.0,
    gap: float = 0.0,
    wick: float = 0.0,
    **labels: str,
) -> pd.DataFrame:
    """``n`` one-minute bars from 2024-01-01: closes ``100 · exp(cumsum(N(drift, sigma)))``,
    each open the previous close (× ``exp(N(0, gap))`` when ``gap``), highs and lows the
    open/close range widened by ``wick`` (a fraction); ``labels`` are constant columns
    (``symbol="BTC-USD"``)."""
    rng = np.random.default_rng(seed)
    close = 100 * np.exp(np.cumsum(rng.normal(drift, sigma, n)))
    open_ = np.concatenate(([100.0], close[:-1]))
    if gap:
        open_ = open_ * np.exp(rng.normal(0, gap, n))
    return pd.DataFrame(
        {
            **labels,
            "ts": pd.date_range("2024-01-01", periods=n, freq="1min"),
            "open": open_,
            "high": np.maximum(open_, close) * (1 + wick),
            "low": np.minimum(open_, close) * (1 - wick),
            "close": close,
            "volume": 1.0,
        }
    )
