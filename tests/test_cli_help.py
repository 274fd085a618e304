"""Every command's --help states its defaults, and every command reads the same recording
unless told otherwise."""

from __future__ import annotations

import argparse

import pytest

from workbench.cli import build_parser
from workbench.demo import DEMO_DB
from workbench.notebook.magics import WorkbenchMagics
from workbench.store import DEFAULT_DB


def _commands() -> dict[str, argparse.ArgumentParser]:
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(sub.choices)


def _has_default(action: argparse.Action) -> bool:
    return (
        bool(action.option_strings)
        and action.default not in (None, False, [], argparse.SUPPRESS)
        and action.dest != "help"
    )


@pytest.mark.parametrize("name", sorted(_commands()))
def test_every_option_with_a_default_shows_it_in_help(name: str) -> None:
    parser = _commands()[name]
    formatter = parser._get_formatter()
    for action in parser._actions:
        if not _has_default(action):
            continue
        text = formatter._expand_help(action)
        assert "default" in text, f"workbench {name} {action.option_strings[0]}: {text!r}"


def test_help_shows_the_default_value_itself() -> None:
    text = _commands()["clean"].format_help()
    assert f"(default: {DEFAULT_DB})" in " ".join(text.split())
    assert "(default: 5s)" in text  # a timedelta in seconds, not 0:00:05
    assert "(default: )" not in text  # an empty list has no default to show


def test_every_command_defaults_to_the_notebooks_recording() -> None:
    dbs = {
        name: next(a.default for a in p._actions if a.dest == "db")
        for name, p in _commands().items()
        if any(a.dest == "db" for a in p._actions)
    }
    # the demo replaces its database on each run, so it never touches the user's recording
    assert dbs.pop("demo") == DEMO_DB != DEFAULT_DB
    assert set(dbs) >= {"record", "resample", "import-csv", "clean"}
    assert all(db == DEFAULT_DB for db in dbs.values()), dbs
    assert WorkbenchMagics.db.default_value == str(DEFAULT_DB)
