"""The install contract: pyproject is the source of truth, environment.yml follows it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_installs_the_project_from_pyproject() -> None:
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    conda_pkgs = [d for d in deps if isinstance(d, str)]
    pip_sections = [d["pip"] for d in deps if isinstance(d, dict)]
    # conda provides only the interpreter and pip: every library comes from pyproject
    assert sorted(p.split("=")[0] for p in conda_pkgs) == ["pip", "python"]
    python = next(p for p in conda_pkgs if p.startswith("python"))
    required = pyproject()["project"]["requires-python"]  # ">=3.11"
    assert python.split("=")[1] >= required.removeprefix(">=")
    assert pip_sections == [["-e .[dev]"]]


def test_core_dependencies_are_declared_and_duckdb_is_pinned() -> None:
    deps = pyproject()["project"]["dependencies"]
    names = {d.split("=")[0].split(">")[0].split("<")[0] for d in deps}
    for core in (
        "jupyterlab",
        "ipywidgets",
        "bqplot",
        "pandas",
        "numpy",
        "statsmodels",
        "websocket-client",
        "duckdb",
    ):
        assert core in names
    assert any(d.startswith("duckdb==") for d in deps), "duckdb must be pinned exactly"


def test_console_script_and_module_entry_point() -> None:
    assert pyproject()["project"]["scripts"]["workbench"] == "workbench.cli:main"
    out = subprocess.run(
        [sys.executable, "-m", "workbench", "--help"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0 and "record" in out.stdout and "sim" in out.stdout


def test_default_database_lives_in_data_and_is_ignored() -> None:
    assert (ROOT / "data").is_dir()
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "data/*.duckdb" in ignored
