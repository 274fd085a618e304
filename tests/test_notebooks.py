"""Every notebook runs top to bottom against the embedded simulator and ends with assertions."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOKS = sorted((Path(__file__).resolve().parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path, tmp_path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    # Run in a scratch copy of the layout so the tour's ../data/ path stays inside tmp_path.
    workdir = tmp_path / "notebooks"
    workdir.mkdir()
    (tmp_path / "data").mkdir()
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()
    last = notebook.cells[-1]
    assert last.outputs and "tour complete" in str(last.outputs[-1])


def test_there_is_a_tour() -> None:
    assert [p.name for p in NOTEBOOKS][:1] == ["01_live_market_data.ipynb"]
