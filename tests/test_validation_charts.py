"""Static SVG charts of a validation report: parsed back and checked against the panels'
own mapping (``equity_layout``, ``histogram_layout``) and against numpy."""

from __future__ import annotations

import base64
import html
import re
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from scipy import stats

from workbench.errors import UsageError
from workbench.validation import charts

SVG = "{http://www.w3.org/2000/svg}"
T0 = 1_704_067_200_000_000  # 2024-01-01 00:00:00 UTC
MINUTE = 60_000_000
PERCENT = re.compile(r"^-?\d+(\.\d+)?%$")
PX = 0.06  # coordinates are written with 1 decimal


def parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return root


def with_class(root: ET.Element, name: str, tag: str = "") -> list[ET.Element]:
    return [
        el
        for el in root.iter(f"{SVG}{tag}" if tag else None)
        if name in (el.get("class") or "").split()
    ]


def points(el: ET.Element) -> np.ndarray:
    return np.array([[float(v) for v in p.split(",")] for p in el.get("points", "").split()])


def equity_series(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    times = T0 + np.arange(n, dtype=np.int64) * MINUTE
    equity = 100_000 * np.cumprod(1 + rng.normal(0, 1e-3, n))
    peak = np.maximum.accumulate(equity)
    return times, equity, 1 - equity / peak


def test_equity_chart_is_well_formed_with_title_and_white_background() -> None:
    root = parse(charts.equity_svg(*equity_series(500)))
    assert root.find(f"{SVG}title") is not None
    assert root.findtext(f"{SVG}title") == "equity and drawdown"
    background = root.find(f"{SVG}rect")
    assert background is not None and background.get("fill") == "#fff"
    assert len(with_class(root, "equity", "polyline")) == 1
    assert len(with_class(root, "drawdown", "polyline")) == 1


def test_equity_line_is_inside_its_panel_monotone_in_x_and_on_the_mapping() -> None:
    times, equity, drawdown = equity_series(500)
    panel = charts.equity_layout(times, equity, drawdown).equity
    (line,) = with_class(parse(charts.equity_svg(times, equity, drawdown)), "equity", "polyline")
    xy = points(line)
    assert len(xy) == 500  # short series are drawn point for point
    assert np.all(np.diff(xy[:, 0]) >= 0)
    assert xy[:, 0].min() >= panel.left - PX and xy[:, 0].max() <= panel.right + PX
    assert xy[:, 1].min() >= panel.top - PX and xy[:, 1].max() <= panel.bottom + PX
    assert xy[0, 0] == pytest.approx(panel.left, abs=PX)
    assert xy[-1, 0] == pytest.approx(panel.right, abs=PX)
    expected = panel.ys(equity)
    assert np.abs(xy[:, 1] - expected).max() <= PX


def test_a_million_bars_are_decimated_and_the_deepest_drawdown_survives() -> None:
    n = 1_000_000
    times, equity, drawdown = equity_series(n, seed=3)
    drawdown = np.minimum(drawdown, 0.2)
    deepest = 612_347  # one bar, not on any round stride: a strided sample would miss it
    drawdown[deepest] = 0.5
    top = 401_233
    equity[top] = equity.max() * 1.5
    layout = charts.equity_layout(times, equity, drawdown)
    root = parse(charts.equity_svg(times, equity, drawdown))

    (dd_line,) = with_class(root, "drawdown", "polyline")
    xy = points(dd_line)
    assert 1_000 <= len(xy) <= 4_000
    assert np.all(np.diff(xy[:, 0]) >= 0)
    low = xy[np.argmax(xy[:, 1])]  # SVG y grows downwards: the deepest point is the largest y
    assert low[0] == pytest.approx(layout.drawdown.x(float(times[deepest])), abs=PX)
    assert low[1] == pytest.approx(layout.drawdown.y(-0.5), abs=PX)
    assert layout.drawdown.top <= low[1] <= layout.drawdown.bottom

    (eq_line,) = with_class(root, "equity", "polyline")
    xy = points(eq_line)
    assert len(xy) <= 4_000
    high = xy[np.argmin(xy[:, 1])]
    assert high[0] == pytest.approx(layout.equity.x(float(times[top])), abs=PX)


def test_decimate_keeps_first_last_and_every_runs_extremes() -> None:
    rng = np.random.default_rng(11)
    values = rng.normal(size=100_003)
    values[5] = np.nan
    values[77_777] = -50.0
    values[33_333] = 50.0
    keep = charts.decimate(values, 600)
    assert len(keep) <= 600
    assert np.all(np.diff(keep) > 0)
    assert keep[0] == 0 and keep[-1] == len(values) - 1
    assert {77_777, 33_333} <= set(keep.tolist())
    assert 5 not in set(keep.tolist())  # a NaN is never a run's extreme
    assert np.array_equal(charts.decimate(values[:600], 600), np.arange(600))
    with pytest.raises(UsageError):
        charts.decimate(values, 3)


def test_segments_are_shaded_on_both_panels_over_their_time_range() -> None:
    times, equity, drawdown = equity_series(1_000)
    oos = (int(times[200]), int(times[400]), "OOS 1")
    holdout = (int(times[800]), int(times[-1]) + 500 * MINUTE, "holdout <final>")  # runs past
    outside = (int(times[-1]) + MINUTE, int(times[-1]) + 2 * MINUTE, "later")
    layout = charts.equity_layout(times, equity, drawdown)
    root = parse(charts.equity_svg(times, equity, drawdown, [oos, holdout, outside]))

    rects = with_class(root, "segment", "rect")
    assert len(rects) == 4  # two segments on two panels; the one after the data is not drawn
    by_panel = {layout.equity.top: [], layout.drawdown.top: []}
    for rect in rects:
        by_panel[float(rect.get("y", "nan"))].append(rect)
    for panel in (layout.equity, layout.drawdown):
        first, second = by_panel[panel.top]
        spans = [
            (float(r.get("x", "nan")), float(r.get("x", "nan")) + float(r.get("width", "nan")))
            for r in (first, second)
        ]
        assert spans[0][0] == pytest.approx(panel.x(oos[0]), abs=0.01)
        assert spans[0][1] == pytest.approx(panel.x(oos[1]), abs=0.01)
        assert spans[1][0] == pytest.approx(panel.x(holdout[0]), abs=0.01)
        assert spans[1][1] == pytest.approx(panel.right, abs=0.01)  # clipped to the panel
        assert float(first.get("height", "nan")) == pytest.approx(panel.height)
    labels = [el.text for el in with_class(root, "segment-label", "text")]
    assert labels == ["OOS 1", "holdout <final>"]  # escaped in the SVG, read back as given


def test_drawdown_ticks_are_percent_labels_at_their_values() -> None:
    times, equity, drawdown = equity_series(2_000)
    drawdown[1_000] = 0.123
    layout = charts.equity_layout(times, equity, drawdown)
    root = parse(charts.equity_svg(times, equity, drawdown))
    ticks = [
        el
        for el in with_class(root, "y-tick", "text")
        if layout.drawdown.top - PX <= float(el.get("y", "nan")) - 4 <= layout.drawdown.bottom + PX
    ]
    labels = [el.text or "" for el in ticks]
    assert labels == ["0%", "-5%", "-10%", "-15%"]
    for el, label in zip(ticks, labels, strict=True):
        value = float(label.rstrip("%")) / 100
        assert float(el.get("y", "nan")) - 4 == pytest.approx(layout.drawdown.y(value), abs=PX)
    assert layout.drawdown.y(-0.123) <= layout.drawdown.bottom  # the deepest point is inside
    assert "max drawdown 12.3%" in (with_class(root, "note", "text")[0].text or "")


def test_negative_drawdown_convention_draws_the_same_chart() -> None:
    times, equity, drawdown = equity_series(300)
    assert charts.equity_svg(times, equity, -drawdown) == charts.equity_svg(times, equity, drawdown)


def test_long_runs_get_calendar_ticks_that_fit() -> None:
    day = 86_400_000_000
    for span_days, pattern in ((3, r"^\d\d-\d\d \d\d:00$"), (40, r"^\d{4}-\d\d-\d\d$")):
        ticks = charts.time_ticks(T0, T0 + span_days * day, 560)
        assert len(ticks) >= 2 and all(re.match(pattern, label) for label in ticks.values())
    ticks = charts.time_ticks(T0, T0 + 3 * 365 * day, 560)
    assert 2 <= len(ticks) <= 560 // (7 * 7 + 16)
    assert all(re.match(r"^\d{4}(-\d\d)?$", label) for label in ticks.values())
    assert list(ticks) == sorted(ticks) and min(ticks) > T0 and max(ticks) < T0 + 3 * 365 * day
    short = charts.time_ticks(T0, T0 + 30 * MINUTE, 560)
    assert all(re.match(r"^\d\d:\d\d:\d\d$", label) for label in short.values())


def test_equity_degenerate_and_malformed_input() -> None:
    root = parse(charts.equity_svg(np.array([T0]), np.array([1.0]), np.array([0.0])))
    assert [el.text for el in with_class(root, "no-data")] == ["no equity to show"]
    assert with_class(root, "line") == []
    with pytest.raises(UsageError, match="one value a bar"):
        charts.equity_svg(np.array([T0, T0 + 1]), np.array([1.0, 2.0]), np.array([0.0]))


def returns_sample() -> np.ndarray:
    rng = np.random.default_rng(5)
    returns = rng.standard_t(4, 5_000) * 0.01 + 0.002
    returns[[10, 20]] = np.nan
    return returns


def test_histogram_bars_are_np_histogram_of_the_finite_returns() -> None:
    returns = returns_sample()
    counts, edges = np.histogram(returns[np.isfinite(returns)], bins=40)
    layout = charts.histogram_layout(returns, bins=40)
    assert layout is not None
    panel = layout.panel
    root = parse(charts.returns_histogram_svg(returns, bins=40))
    bars = with_class(root, "bar", "rect")
    assert len(bars) == 40
    drawn = np.array([int(b.get("data-count", "-1")) for b in bars])
    assert np.array_equal(drawn, counts) and drawn.sum() == 4_998
    heights = np.array([float(b.get("height", "nan")) for b in bars])
    assert np.abs(heights - (panel.bottom - panel.ys(counts.astype(float)))).max() <= 0.011
    assert np.abs(heights / heights.max() - counts / counts.max()).max() <= 1e-3
    xs = np.array([float(b.get("x", "nan")) for b in bars])
    assert np.abs(xs - panel.xs(edges[:-1])).max() <= 0.006
    assert all(float(b.get("y", "nan")) >= panel.top - 0.01 for b in bars)


def test_histogram_has_zero_and_mean_lines_and_percent_ticks() -> None:
    returns = returns_sample()
    finite = returns[np.isfinite(returns)]
    layout = charts.histogram_layout(returns)
    assert layout is not None
    root = parse(charts.returns_histogram_svg(returns))
    (zero,) = with_class(root, "zero", "line")
    (mean,) = with_class(root, "mean", "line")
    assert float(zero.get("x1", "nan")) == pytest.approx(layout.panel.x(0.0), abs=0.006)
    assert float(mean.get("x1", "nan")) == pytest.approx(layout.panel.x(finite.mean()), abs=0.006)
    assert float(mean.get("x1", "nan")) > float(zero.get("x1", "nan"))  # the mean is 0.2%

    ticks = with_class(root, "x-tick", "text")
    labels = [el.text or "" for el in ticks]
    assert len(labels) >= 3 and all(PERCENT.match(label) for label in labels)
    for el, label in zip(ticks, labels, strict=True):
        value = float(label.rstrip("%")) / 100
        assert float(el.get("x", "nan")) == pytest.approx(layout.panel.x(value), abs=PX)


def test_histogram_header_notes_the_moments() -> None:
    returns = returns_sample()
    finite = returns[np.isfinite(returns)]
    root = parse(charts.returns_histogram_svg(returns))
    note = with_class(root, "note", "text")[0].text or ""
    assert "n 4,998" in note
    assert f"mean {finite.mean() * 100:.3g}%" in note
    assert f"std {finite.std(ddof=1) * 100:.3g}%" in note
    assert f"skewness {stats.skew(finite):.2f}" in note
    assert f"kurtosis {stats.kurtosis(finite, fisher=False):.2f}" in note
    summary = charts.returns_summary(returns)
    assert summary.count == 4_998
    assert summary.kurtosis == pytest.approx(stats.kurtosis(finite, fisher=False))


@pytest.mark.parametrize(
    ("returns", "message"),
    [
        (np.array([]), "no returns to show"),
        (np.array([np.nan, np.nan]), "no returns to show"),
        (np.array([0.005, 0.005, np.nan, 0.005]), "all returns equal 0.5% (3 returns)"),
        (np.array([-0.01]), "all returns equal -1% (1 return)"),
    ],
)
def test_histogram_degenerate_series_say_so(returns: np.ndarray, message: str) -> None:
    root = parse(charts.returns_histogram_svg(returns))
    assert [el.text for el in with_class(root, "no-data")] == [message]
    assert with_class(root, "bar") == []
    assert root.findtext(f"{SVG}title") == "distribution of per-bar returns"


def test_histogram_refuses_bad_bins() -> None:
    with pytest.raises(UsageError, match="bins"):
        charts.returns_histogram_svg(np.array([0.1, 0.2]), bins=0)


def test_percent_labels() -> None:
    assert charts.percent_labels([0.0, -0.05, -0.1]) == ["0%", "-5%", "-10%"]
    assert charts.percent_labels([-0.0025, 0.0, 0.0025]) == ["-0.25%", "0.00%", "0.25%"]
    assert charts.percent_labels([-0.0]) == ["0%"]


def test_as_img_round_trips_the_svg_and_escapes_the_alt() -> None:
    svg = charts.returns_histogram_svg(returns_sample())
    img = charts.as_img(svg, 'returns "per bar" <all>')
    match = re.fullmatch(
        r'<img class="[^"]+" src="data:image/svg\+xml;base64,([^"]+)" alt="([^"]*)"/>', img
    )
    assert match is not None
    assert base64.b64decode(match.group(1)).decode() == svg
    assert html.unescape(match.group(2)) == 'returns "per bar" <all>'
    assert "<all>" not in img
