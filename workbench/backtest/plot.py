"""``BacktestResult.plot()``: price with the trades' entries and exits, equity, drawdown.

A backtest can have millions of bars and thousands of trades; a browser chart of that many
points freezes the notebook. So the lines are cut into at most ``points`` buckets of equal
bar count, each drawn by its last value — except the drawdown, drawn by each bucket's
deepest point, so the worst drawdown is on the chart whatever the zoom — and at most
``MAX_MARKERS`` trades get markers — entries as triangles (up long, down short), exits as
circles — evenly spaced through the run; the title says how many of how many. The three
charts share one time scale, so they line up and pan together.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import bqplot  # type: ignore[import-untyped, unused-ignore]
import ipywidgets  # type: ignore[import-untyped, unused-ignore]
import numpy as np
import numpy.typing as npt

from workbench.errors import UsageError

if TYPE_CHECKING:
    from workbench.backtest.result import BacktestResult

MAX_MARKERS = 2_000
LONG, SHORT, EXIT = "#2e7d32", "#c62828", "#424242"
LINE = "#1f4e79"


def buckets(length: int, points: int) -> npt.NDArray[np.int64]:
    """The last index of each of at most ``points`` runs of equal length covering ``length``."""
    if length <= points:
        return np.arange(length, dtype=np.int64)
    return (np.arange(1, points + 1, dtype=np.int64) * length) // points - 1


def plot_result(result: BacktestResult, *, points: int = 2_000) -> Any:
    if isinstance(points, bool) or not isinstance(points, int) or points < 2:
        raise UsageError(f"points must be an integer >= 2, got {points!r}")
    equity = result.equity
    ends = buckets(len(equity), points)
    starts = np.concatenate(([0], ends[:-1] + 1))
    times = equity["ts"].to_numpy()[ends]
    x = bqplot.DateScale()
    layout = ipywidgets.Layout(height="260px", width="100%")

    price_scale = bqplot.LinearScale()
    price = bqplot.Lines(
        x=times,
        y=equity["close"].to_numpy()[ends],
        scales={"x": x, "y": price_scale},
        colors=[LINE],
        stroke_width=1.2,
    )
    trades = result.trades
    shown = trades.iloc[buckets(len(trades), MAX_MARKERS)] if len(trades) else trades
    long = (shown["direction"] == "long").to_numpy()
    markers = [
        bqplot.Scatter(
            x=shown["entry"].to_numpy()[which],
            y=shown["entry_price"].to_numpy()[which],
            scales={"x": x, "y": price_scale},
            colors=[color],
            marker=marker,
            default_size=24,
        )
        for which, color, marker in ((long, LONG, "triangle-up"), (~long, SHORT, "triangle-down"))
    ]
    markers.append(
        bqplot.Scatter(
            x=shown["exit"].to_numpy(),
            y=shown["exit_price"].to_numpy(),
            scales={"x": x, "y": price_scale},
            colors=[EXIT],
            marker="circle",
            default_size=16,
        )
    )
    marked = f"{len(shown)} of {len(trades)} trades marked" if len(shown) < len(trades) else ""
    title = f"{result.strategy} on {result.symbol} {result.interval}"
    title += f" ({marked})" if marked else ""
    price_chart = _figure(title, [price, *markers], x, price_scale, "price", layout)

    equity_scale = bqplot.LinearScale()
    equity_line = bqplot.Lines(
        x=times,
        y=equity["equity"].to_numpy()[ends],
        scales={"x": x, "y": equity_scale},
        colors=[LINE],
    )
    equity_chart = _figure("equity", [equity_line], x, equity_scale, "equity", layout)

    drawdown_scale = bqplot.LinearScale(max=0.0)
    deepest = np.minimum.reduceat(equity["drawdown"].to_numpy(), starts)
    drawdown_line = bqplot.Lines(
        x=times,
        y=deepest,
        scales={"x": x, "y": drawdown_scale},
        colors=[SHORT],
        fill="bottom",
        fill_opacities=[0.3],
    )
    drawdown_chart = _figure(
        "drawdown", [drawdown_line], x, drawdown_scale, "drawdown", layout, tick_format=".0%"
    )
    return ipywidgets.VBox([price_chart, equity_chart, drawdown_chart])


def _figure(
    title: str,
    marks: list[Any],
    x: Any,
    y: Any,
    label: str,
    layout: Any,
    tick_format: str = ",.6g",
) -> Any:
    return bqplot.Figure(
        title=title,
        marks=marks,
        axes=[
            bqplot.Axis(scale=x, label="time"),
            bqplot.Axis(scale=y, side="left", label=label, tick_format=tick_format),
        ],
        layout=layout,
        fig_margin={"top": 40, "bottom": 40, "left": 70, "right": 20},
    )
