"""The install contract: pyproject.toml holds the ranges, requirements.lock the exact pins every
install uses, environment.yml follows the lock."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import yaml
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tools.lockfile import environment_yml, read_lock

ROOT = Path(__file__).resolve().parent.parent
CARD_PACKAGES = (
    "jupyterlab",
    "ipywidgets",
    "bqplot",
    "pandas",
    "numpy",
    "statsmodels",
    "websocket-client",
    "duckdb",
)


def pyproject() -> dict:  # type: ignore[type-arg]
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_environment_yml_pins_exactly_what_the_lock_pins() -> None:
    assert (ROOT / "environment.yml").read_text() == environment_yml(read_lock()), (
        "environment.yml is out of date: run `make lock` (or python tools/lockfile.py)"
    )
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    # conda provides only the interpreter and pip: every library comes from the lock
    assert [d for d in deps if isinstance(d, str)] == ["python=3.11", "pip"]
    (pip_section,) = [d["pip"] for d in deps if isinstance(d, dict)]
    assert pip_section[-1] == "-e ."
    assert len(pip_section) == len(read_lock()) + 1


def test_the_lock_pins_every_requirement_of_pyproject_inside_its_range() -> None:
    project = pyproject()
    wanted = [
        *project["project"]["dependencies"],
        *(r for extra in project["project"]["optional-dependencies"].values() for r in extra),
        *project["dependency-groups"]["build"],
    ]
    pins = {canonicalize_name(p.name): p for p in read_lock()}
    for text in wanted:
        req = Requirement(text)
        pin = pins.get(canonicalize_name(req.name))
        assert pin is not None, f"{req.name} is not in requirements.lock: run `make lock`"
        assert req.specifier.contains(pin.version), f"{pin.requirement()} is outside {req}"


def test_every_locked_package_carries_hashes() -> None:
    text = (ROOT / "requirements.lock").read_text()
    entries = text.split("\n")
    names = [i for i, line in enumerate(entries) if line and not line[0].isspace() and "==" in line]
    assert len(names) == len(read_lock()) > 100
    for i in names:
        assert entries[i + 1].strip().startswith("--hash=sha256:"), entries[i]


def test_the_venv_holds_exactly_the_locked_versions() -> None:
    """`make venv` installs the lock as it is: every pin that applies here is what runs."""
    for pin in read_lock():
        if pin.marker and not Marker(pin.marker).evaluate():
            continue
        installed = metadata.version(pin.name)
        assert installed == pin.version, (
            f"{pin.name} {installed} installed, lock says {pin.version}"
        )


def test_pip_check_finds_no_broken_requirement() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stdout + out.stderr


def test_card_packages_have_tested_lower_bounds_and_no_open_major() -> None:
    deps = {
        canonicalize_name(Requirement(d).name): Requirement(d)
        for d in pyproject()["project"]["dependencies"]
    }
    pins = {canonicalize_name(p.name): p.version for p in read_lock()}
    for card in CARD_PACKAGES:
        spec = deps[card].specifier
        operators = {s.operator for s in spec}
        assert operators & {"<", "=="}, f"{card} needs an upper bound: {spec}"
        lower = [s for s in spec if s.operator in (">=", "==")]
        assert lower, f"{card} needs a lower bound: {spec}"
        # the lower bound is a release the suite has run with: the locked one, or older
        # only within the same release line
        assert Version(lower[0].version).major == Version(pins[card]).major


def test_core_dependencies_are_declared_and_duckdb_is_pinned() -> None:
    deps = pyproject()["project"]["dependencies"]
    names = {d.split("=")[0].split(">")[0].split("<")[0] for d in deps}
    for core in CARD_PACKAGES:
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
