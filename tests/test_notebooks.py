"""Every notebook runs top to bottom against the embedded simulator and ends with assertions.

Each notebook's last cell asserts what it demonstrated and only then prints its marker, so a
notebook that errors, or finishes without reaching its checks, fails here.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))
FINAL_OUTPUT = {
    "01_live_market_data.ipynb": "tour complete",
    "02_clean_and_resample.ipynb": "clean and resample complete",
}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
    # Run in a scratch copy of the layout so ../data/ paths stay inside tmp_path.
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    (tmp_path / "data").mkdir()
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    last = notebook.cells[-1]
    assert last.outputs, "the last cell printed nothing"
    assert FINAL_OUTPUT[path.name] in str(last.outputs[-1])


def test_every_notebook_is_stored_clean_and_valid() -> None:
    """No outputs or execution counts in git (they go stale and bloat diffs), valid nbformat 4,
    and each one names the final output this module checks."""
    assert [p.name for p in NOTEBOOKS] == sorted(FINAL_OUTPUT)
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)  # type: ignore[no-untyped-call]
        nbformat.validate(notebook)
        assert notebook.nbformat == 4
        assert notebook.metadata.kernelspec.name == "python3"
        for cell in notebook.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path.name


def test_the_tour_comes_first() -> None:
    assert NOTEBOOKS[0].name == "01_live_market_data.ipynb"
