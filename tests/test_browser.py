"""The tour notebook in a real browser: JupyterLab on 127.0.0.1, Debian's Chromium driven by
Playwright, assertions on the rendered DOM.

The test runs the tour up to the cell that stops the feeds, checks that the order-book and
price charts render and keep changing, screenshots both after 10 s of streaming and checks
their layout in the page (marks fill the plot, tick labels whole, plain and apart, price and
volume panels on one x range), measures how long a trivial cell takes while they
stream (reported, not asserted against a tight bound: wall-clock figures belong in benchmarks),
then runs the rest of the tour, which leaves both charts as snapshot images. A second test
opens the tour as nbclient saved it and finds the same snapshots. Screenshots, the latency
figures, the server log and the browser console go to the artifacts directory
(``$WB_ARTIFACTS`` or ``tests/artifacts``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient
from playwright.sync_api import Locator, Page, expect, sync_playwright

from tests.helpers.lab import JupyterLab, alive

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
TOUR = "01_live_market_data.ipynb"
STOP_CELL = "%wb feed stop"  # the tour's first cell that ends the stream
PROBE = "1+1"
PROBE_RUNS = 20
STREAM_SECONDS = 10
SLOW = 30_000  # ms: generous upper bounds, only there so a hang fails instead of stalling
SNAPSHOT_IMAGES = """() => [
    ...document.querySelectorAll('.jp-OutputArea-output img.wb-snapshot-chart')
].map(img => ({complete: img.complete, width: img.naturalWidth, height: img.naturalHeight}))"""
SNAPSHOTS_SHOWN = (
    f"() => ({SNAPSHOT_IMAGES})().length === 2 && "
    f"({SNAPSHOT_IMAGES})().every(i => i.complete && i.width > 0)"
)
"""Both charts show as snapshot images that the browser has decoded."""


ARTIFACTS = Path(os.environ.get("WB_ARTIFACTS", ROOT / "tests" / "artifacts")) / "browser"


@pytest.fixture(scope="module", autouse=True)
def fresh_artifacts() -> None:
    """Start from an empty artifacts directory: a stale failure.png must not outlive a pass."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)
    ARTIFACTS.mkdir(parents=True)


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing (apt-get install chromium)"
        if os.environ.get("CI", "").lower() in ("true", "1"):
            pytest.fail(f"{reason}: CI must run the browser test (.ci/run installs it)")
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[JupyterLab]:
    """A server on a scratch copy of the layout, so the tour's ../data/ stays in tmp_path."""
    root = tmp_path / "root"
    shutil.copytree(ROOT / "notebooks", root / "notebooks", ignore=shutil.ignore_patterns(".*"))
    (root / "data").mkdir()
    server = JupyterLab(root, tmp_path / "state", ARTIFACTS / "jupyterlab.log").start()
    yield server
    server.stop()  # no-op when the test already stopped it


def code_cell(page: Page, text: str) -> Locator:
    """The code cell whose source contains ``text`` (markdown may quote the same words)."""
    return page.locator(".jp-Notebook .jp-CodeCell").filter(
        has=page.locator(".cm-content", has_text=text)
    )


def select(cell: Locator) -> None:
    """Select a cell in command mode (clicking the prompt never enters the editor)."""
    cell.locator(".jp-InputPrompt").first.click()


def run_menu(page: Page, item: str) -> None:
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_role("menuitem", name=item, exact=True).click()


def wait_ran_above(page: Page, text: str) -> None:
    """Wait until every code cell above the one containing ``text`` has run: a number in its
    prompt, not ``*`` (the widgets render before the slower cells below them finish)."""
    page.wait_for_function(
        """(text) => {
            const cells = [...document.querySelectorAll('.jp-Notebook .jp-CodeCell')];
            const source = (c) => c.querySelector('.cm-content').textContent;
            const stop = cells.findIndex(c => source(c).includes(text));
            return stop > 0 && cells.slice(0, stop).every(c => /^\\[\\d+\\]:$/.test(
                c.querySelector('.jp-InputPrompt').textContent.trim()));
        }""",
        arg=text,
        timeout=120_000,
        polling=200,
    )


def chart_paths(page: Page, widget: str) -> list[str]:
    """The ``d`` of every line a bqplot figure inside ``widget`` draws (depth curves, price
    and SMA lines): a chart that renders data has non-empty ones, a live one changes them."""
    paths: list[str] = page.eval_on_selector_all(
        f"{widget} svg path.line", "els => els.map(e => e.getAttribute('d') || '')"
    )
    return paths


def drawn(paths: list[str]) -> bool:
    return any(d.count("L") >= 1 for d in paths)


# Where a widget's figures put things on screen: per bqplot figure, the rectangles of its svg,
# its plot area, its marks (lines, bars) and its texts (tick labels, axis titles).
FIGURE_LAYOUT = """(widget) => [...widget.querySelectorAll('.bqplot.figure')].map(fig => {
    const box = (e) => {
        const r = e.getBoundingClientRect();
        return {left: r.left, top: r.top, right: r.right, bottom: r.bottom};
    };
    const shown = (e) => e.getBoundingClientRect().width > 0;
    return {
        widget: box(widget),
        svg: box(fig.querySelector('svg')),
        plot: box(fig.querySelector('rect.plotarea_background')),
        marks: [...fig.querySelectorAll('path.line, rect.bar')].filter(shown).map(box),
        texts: [...fig.querySelectorAll('.tick text, text.axislabel')].filter(
            e => shown(e) && e.textContent.trim()).map(e => ({...box(e), text: e.textContent})),
    };
})"""


def overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["left"] < b["right"]
        and b["left"] < a["right"]
        and a["top"] < b["bottom"]
        and (b["top"] < a["bottom"])
    )


def inside(inner: dict[str, float], outer: dict[str, float], slack: float = 1.0) -> bool:
    return (
        inner["left"] >= outer["left"] - slack
        and inner["right"] <= outer["right"] + slack
        and inner["top"] >= outer["top"] - slack
        and inner["bottom"] <= outer["bottom"] + slack
    )


def check_layout(widget: Locator) -> list[dict[str, Any]]:
    """Every figure of ``widget`` draws its marks inside its plot area and across most of its
    width (data on the scale it shows), and every tick label and axis title is whole (inside
    the figure), a plain number or time, and clear of every other one."""
    figures: list[dict[str, Any]] = widget.evaluate(FIGURE_LAYOUT)
    assert figures, "no bqplot figure"
    for fig in figures:
        plot, marks, texts = fig["plot"], fig["marks"], fig["texts"]
        assert marks, "no mark drawn"
        assert all(inside(m, plot) for m in marks), (marks, plot)
        drawn_width = max(m["right"] for m in marks) - min(m["left"] for m in marks)
        assert drawn_width > 0.8 * (plot["right"] - plot["left"]), (drawn_width, plot)
        raw = [t["text"] for t in texts if re.search(r"\de[+-]?\d", t["text"])]
        assert raw == [], f"labels in scientific notation: {raw}"
        whole = [t for t in texts if inside(t, fig["svg"], 0) and inside(t, fig["widget"], 0)]
        clipped = [t["text"] for t in texts if t not in whole]
        assert clipped == [], f"labels cut off at the figure's edge: {clipped}"
        clashes = [
            (a["text"], b["text"]) for i, a in enumerate(texts) for b in texts[i + 1 :]
            if overlap(a, b)
        ]  # fmt: skip
        assert clashes == [], f"labels on top of each other: {clashes}"
    return figures


# Installs a one-shot stopwatch in the page: starts on the Ctrl+Enter keydown (window capture
# phase, before JupyterLab sees it) and stops in the DOM mutation that shows the probe's new
# execution count with its result, i.e. when the user would see the answer.
ARM_STOPWATCH = """(cell) => {
    const prompt = () => cell.querySelector('.jp-InputPrompt').textContent.trim();
    const before = prompt();
    const watch = {t0: null, t1: null};
    window.__wbWatch = watch;
    const onKey = (e) => {
        if (e.key === 'Enter' && e.ctrlKey && watch.t0 === null) watch.t0 = performance.now();
    };
    window.addEventListener('keydown', onKey, {capture: true});
    const observer = new MutationObserver(() => {
        const out = cell.querySelector('.jp-OutputArea-output');
        const p = prompt();
        if (watch.t0 !== null && p !== before && /^\\[\\d+\\]:$/.test(p)
                && out && out.textContent.trim() === '2') {
            watch.t1 = performance.now();
            observer.disconnect();
            window.removeEventListener('keydown', onKey, {capture: true});
        }
    });
    observer.observe(cell, {subtree: true, childList: true, characterData: true});
}"""


def probe_latencies(page: Page, probe: Locator, runs: int) -> list[float]:
    """Milliseconds from Ctrl+Enter to the visible result of the trivial cell, per run."""
    out = []
    for _ in range(runs):
        select(probe)
        probe.evaluate(ARM_STOPWATCH)
        page.keyboard.press("Control+Enter")
        page.wait_for_function("() => window.__wbWatch.t1 !== null", timeout=SLOW, polling=50)
        out.append(page.evaluate("() => window.__wbWatch.t1 - window.__wbWatch.t0"))
        time.sleep(0.2)
    return out


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def test_tour_streams_live_charts_and_a_trivial_cell_still_completes(
    chromium: Path, lab: JupyterLab, capsys: pytest.CaptureFixture[str]
) -> None:
    out = ARTIFACTS
    console: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 2000})  # fits a book
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        try:
            page.goto(lab.url(f"/lab/tree/notebooks/{TOUR}"))
            page.wait_for_function(
                """() => [...document.querySelectorAll('.jp-StatusBar-TextItem')]
                       .some(e => /Python 3.*\\| Idle/.test(e.textContent))""",
                timeout=60_000,
                polling=200,
            )
            page.keyboard.press("Control+b")  # fold the file browser: room for the charts

            # A trivial cell above the tour, timed once before anything streams (baseline).
            select(page.locator(".jp-Notebook .jp-Cell").first)
            page.keyboard.press("Escape")
            page.keyboard.press("a")
            page.keyboard.press("Enter")
            page.keyboard.type(PROBE)
            page.keyboard.press("Escape")
            probe = code_cell(page, PROBE).first
            probe_latencies(page, probe, 1)  # warm-up: the kernel's first execution
            baseline = probe_latencies(page, probe, PROBE_RUNS)

            # Run the tour up to the cell that stops the feeds.
            stop = code_cell(page, STOP_CELL).first
            select(stop)
            run_menu(page, "Run All Above Selected Cell")
            for widget in (".wb-orderbook", ".wb-price"):
                page.wait_for_selector(f"{widget} svg path.line", timeout=60_000)
            streaming_since = time.monotonic()
            wait_ran_above(page, STOP_CELL)

            book = page.locator(".wb-orderbook").first
            price = page.locator(".wb-price").first
            expect(book.locator(".wb-book-valid")).to_be_visible()
            book.scroll_into_view_if_needed()
            first = {w: chart_paths(page, w) for w in (".wb-orderbook", ".wb-price")}
            # The screenshots show the charts after STREAM_SECONDS of streaming, for review.
            time.sleep(max(2.5, STREAM_SECONDS - (time.monotonic() - streaming_since)))
            second = {w: chart_paths(page, w) for w in (".wb-orderbook", ".wb-price")}
            page.screenshot(path=str(out / "01_streaming.png"))
            shots = {"order book": out / "orderbook.png", "price": out / "price.png"}
            book.screenshot(path=str(shots["order book"]))
            price.screenshot(path=str(shots["price"]))
            with capsys.disabled():  # shown on a pass too: the screenshots are for review
                for name, path in shots.items():
                    print(f"\n{name} widget after {STREAM_SECONDS} s of streaming: {path}")
            for widget in first:
                assert drawn(first[widget]) and drawn(second[widget]), widget
                assert first[widget] != second[widget], f"{widget} did not change while streaming"
            check_layout(book)
            price_plot, volume_plot = (f["plot"] for f in check_layout(price))
            # the volume bars line up with the trades they add up: same plot-area x range
            assert (price_plot["left"], price_plot["right"]) == (
                volume_plot["left"],
                volume_plot["right"],
            )

            # The same trivial cell while both widgets stream.
            streaming = probe_latencies(page, probe, PROBE_RUNS)
            third = {w: chart_paths(page, w) for w in first}
            assert all(third[w] != second[w] for w in first), "charts froze during the probe"

            figures = {
                "runs": PROBE_RUNS,
                "baseline_ms": [round(x, 1) for x in baseline],
                "streaming_ms": [round(x, 1) for x in streaming],
                "baseline_p50_ms": round(statistics.median(baseline), 1),
                "streaming_p50_ms": round(statistics.median(streaming), 1),
                "streaming_p95_ms": round(p95(streaming), 1),
                "added_p50_ms": round(
                    statistics.median(streaming) - statistics.median(baseline), 1
                ),
            }
            (out / "trivial_cell_latency.json").write_text(json.dumps(figures, indent=2) + "\n")
            print("trivial cell latency while widgets stream:", json.dumps(figures))

            # The rest of the tour: stop the feeds, final assertions.
            select(stop)
            run_menu(page, "Run Selected Cell and All Below")
            last = page.locator(".jp-Notebook .jp-CodeCell").last
            done = last.locator(".jp-OutputArea-output", has_text="tour complete")
            done.wait_for(timeout=60_000)
            # %unload_ext replaced each widget, in its own cell, with its last frame
            page.wait_for_function(SNAPSHOTS_SHOWN, timeout=SLOW, polling=200)
            assert page.locator(".wb-live").count() == 0
            done.scroll_into_view_if_needed()
            page.screenshot(path=str(out / "02_tour_complete.png"))
        except Exception:
            page.screenshot(path=str(out / "failure.png"))
            raise
        finally:
            (out / "browser-console.log").write_text("\n".join(console) + "\n")
            browser.close()
    errors = [line for line in console if line.startswith(("error:", "pageerror:"))]
    assert errors == [], "the browser console has errors (see browser-console.log)"
    server = lab.pid
    assert lab.stop() == [], "processes survived the server shutdown"
    assert lab.started, "the server never started a kernel"
    assert not alive(server)


def test_the_executed_tour_reopens_with_its_final_charts(chromium: Path, lab: JupyterLab) -> None:
    """Run the tour headless (nbclient, as `jupyter execute` would), save it, open the saved
    copy in JupyterLab without a kernel run: the widget cells show the snapshots of their last
    frames as images (the copy is untrusted, so this is what the sanitizer lets through)."""
    notebook = nbformat.read(ROOT / "notebooks" / TOUR, as_version=4)  # type: ignore[no-untyped-call]
    workdir = lab.root / "notebooks"
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    nbformat.write(notebook, workdir / "executed_tour.ipynb")  # type: ignore[no-untyped-call]
    console: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(chromium), args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 2000})
        page.on("console", lambda m: console.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: console.append(f"pageerror: {e}"))
        try:
            page.goto(lab.url("/lab/tree/notebooks/executed_tour.ipynb"))
            page.wait_for_function(SNAPSHOTS_SHOWN, timeout=60_000, polling=200)
            images = page.evaluate(SNAPSHOT_IMAGES)
            assert all(i["width"] >= 700 and i["height"] >= 250 for i in images), images
            text = page.locator(".jp-Notebook").inner_text()
            assert "model not found" not in text and "Error displaying widget" not in text
            assert "stopped" in page.locator(".wb-feed-status-snapshot").inner_text()
            assert page.locator(".wb-book-snapshot .wb-ladder-table tr").count() == 22
            snapshot = page.locator(".wb-book-snapshot").first
            snapshot.scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "03_reopened_tour.png"))
            snapshot.screenshot(path=str(ARTIFACTS / "orderbook_snapshot.png"))
            page.locator(".wb-price-snapshot").first.screenshot(
                path=str(ARTIFACTS / "price_snapshot.png")
            )
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "reopen_failure.png"))
            raise
        finally:
            (ARTIFACTS / "reopen-console.log").write_text("\n".join(console) + "\n")
            browser.close()
    errors = [line for line in console if line.startswith(("error:", "pageerror:"))]
    assert errors == [], "the browser console has errors (see reopen-console.log)"
