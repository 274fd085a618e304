"""Finding a strategy: a built-in name, ``path/to/file.py:ClassName``, or the class itself
(one defined in a notebook cell)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Mapping
from pathlib import Path

from workbench.errors import UsageError
from workbench.strategy.base import API_VERSION, Strategy
from workbench.strategy.builtin import BUILT_IN


def find_strategy(spec: str | type[Strategy]) -> type[Strategy]:
    """The strategy class ``spec`` names; a UsageError saying what exists otherwise."""
    if isinstance(spec, type):
        found = spec
    elif not isinstance(spec, str):
        raise UsageError(f"a strategy is a name, 'file.py:Class' or a class, got {spec!r}")
    elif spec in BUILT_IN:
        found = BUILT_IN[spec]
    elif ":" in spec:
        found = _from_file(*spec.rsplit(":", 1))
    else:
        raise UsageError(
            f"unknown strategy {spec!r}: built-in are {', '.join(BUILT_IN)}, "
            "or name a class in a file as path/to/file.py:ClassName"
        )
    if not (isinstance(found, type) and issubclass(found, Strategy)):
        raise UsageError(f"{spec!r} is not a subclass of workbench.strategy.Strategy")
    if found.api_version != API_VERSION:
        raise UsageError(
            f"strategy {found.name} is written for Strategy API v{found.api_version}; "
            f"this workbench has v{API_VERSION}"
        )
    return found


def make_strategy(
    spec: str | type[Strategy] | Strategy, params: Mapping[str, object] | None = None
) -> Strategy:
    """An instance of the strategy ``spec`` with ``params`` (values or their text)."""
    if isinstance(spec, Strategy):
        if params:
            raise UsageError("pass parameters with a strategy's name or class, not an instance")
        return spec
    return find_strategy(spec)(**dict(params or {}))


def _from_file(path_text: str, class_name: str) -> type[Strategy]:
    path = Path(path_text)
    if path.suffix != ".py" or not path.is_file():
        raise UsageError(f"no strategy file {path_text!r} (expected path/to/file.py:ClassName)")
    module_name = f"workbench_strategy_{path.stem}"
    loader = importlib.util.spec_from_file_location(module_name, path)
    if loader is None or loader.loader is None:
        raise UsageError(f"cannot import {path_text!r} as Python")
    module = importlib.util.module_from_spec(loader)
    sys.modules[module_name] = module  # dataclasses and pickling look their module up
    try:
        loader.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[module_name]
        raise UsageError(f"importing {path_text} failed: {type(exc).__name__}: {exc}") from exc
    found = getattr(module, class_name, None)
    if found is None:
        raise UsageError(f"{path_text} defines no {class_name!r}")
    return found  # type: ignore[no-any-return]
