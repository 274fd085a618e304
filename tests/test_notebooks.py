"""Every notebook runs top to bottom against the embedded simulator and ends with assertions.

Each notebook's last code cell asserts what it demonstrated and only then prints its marker,
so a notebook that errors, or finishes without reaching its checks, fails here. Notebooks run
as copies in a temporary directory: the committed ones are never written to.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FINAL_OUTPUT = {
    "01_live_market_data.ipynb": "tour complete",
    "02_clean_and_resample.ipynb": "clean and resample complete",
    "03_strategy_research.ipynb": "strategy research complete",
    "04_validation.ipynb": "validation complete",
}
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"

Run = Callable[[Path], Any]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Execute a notebook once per test module: a copy in a scratch layout (so ``../data/``
    stays inside it), saved and read back as a user's saved notebook would be."""

    @functools.cache
    def execute(path: Path) -> Any:
        root = tmp_path_factory.mktemp(path.stem)
        workdir = root / "notebooks"
        workdir.mkdir()
        (root / "data").mkdir()
        notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        NotebookClient(
            notebook,
            timeout=120,
            kernel_name="python3",
            resources={"metadata": {"path": str(workdir)}},
        ).execute()
        saved = workdir / path.name
        nbformat.write(notebook, saved)  # type: ignore[no-untyped-call]
        return nbformat.read(saved, as_version=4)  # type: ignore[no-untyped-call]

    return execute


def committed_state() -> tuple[str, list[str]]:
    """``git status`` of notebooks/ and a hash of each file there."""
    status = subprocess.run(
        ["git", "status", "--porcelain", "--", "notebooks/"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    hashes = [hashlib.sha256(p.read_bytes()).hexdigest() for p in NOTEBOOKS]
    return status, hashes


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom_and_leaves_the_committed_copy_alone(
    path: Path, run: Run
) -> None:
    before = committed_state()
    notebook = run(path)
    last = [cell for cell in notebook.cells if cell.cell_type == "code"][-1]
    assert last.outputs, "the last code cell printed nothing"
    assert FINAL_OUTPUT[path.name] in str(last.outputs[-1])
    assert committed_state() == before


def code_cell(notebook: Any, starts: str) -> Any:
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(starts)]
    return cell


def test_the_saved_tour_shows_the_final_charts_as_static_snapshots(run: Run) -> None:
    """Reopened after a run, the tour's widget cells hold snapshots of their last frames (the
    extension was unloaded), not views of models that no longer exist."""
    notebook = run(NOTEBOOKS[0])
    for starts, chart in (("%wb book", "wb-book-snapshot"), ("%wb price", "wb-price-snapshot")):
        (output,) = code_cell(notebook, starts).outputs
        assert output.output_type == "display_data"
        assert set(output.data) == {"text/html", "image/svg+xml", "text/plain"}, starts
        svg = ET.fromstring(output.data["image/svg+xml"])
        assert svg.tag == "{http://www.w3.org/2000/svg}svg"
        labels = [t.text for t in svg.iter("{http://www.w3.org/2000/svg}text")]
        assert "no data yet" not in " ".join(map(str, labels))  # the feed had streamed
        assert chart in output.data["text/html"]
        assert (
            '<img class="wb-snapshot-chart" src="data:image/svg+xml;base64,'
            in (output.data["text/html"])
        )
        text = output.data["text/plain"]
        assert "BTC-USD" in text and "feed stopped" in text
    (status,) = code_cell(notebook, "%wb feeds").outputs
    assert "wb-feed-status-snapshot" in status.data["text/html"]
    assert "<b>stopped</b>" in status.data["text/html"]
    views = [
        cell.source
        for cell in notebook.cells
        for output in cell.get("outputs", [])
        if WIDGET_VIEW in output.get("data", {})
    ]
    assert views == []
    # the page ends with a word on what is on screen, after the checks
    assert notebook.cells[-1].cell_type == "markdown"
    assert "snapshot" in notebook.cells[-1].source or "static" in notebook.cells[-1].source


def test_every_notebook_is_stored_clean_and_valid() -> None:
    """No outputs or execution counts in git (they go stale and bloat diffs), valid nbformat 4,
    and each one names the final output this module checks."""
    assert [p.name for p in NOTEBOOKS] == sorted(FINAL_OUTPUT)
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        nbformat.validate(notebook)
        assert notebook.nbformat == 4
        assert notebook.metadata.kernelspec.name == "python3"
        assert "widgets" not in notebook.metadata  # no saved widget state either
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


def test_the_tour_comes_first() -> None:
    assert NOTEBOOKS[0].name == "01_live_market_data.ipynb"
