"""Parameter grids: every combination of a few values per parameter, in a fixed order.

A grid maps a parameter to its values: a list (``[5, 10, 20]``), one value, or text as the
command line gives it — ``"5:50:5"`` (start, stop and step, both ends included: 5, 10, …,
50) or ``"true,false"``. Points come out in the grid's order with the last parameter
varying fastest, so a sweep's rows are the same run after run.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation

from workbench.errors import UsageError

MAX_POINTS = 100_000
"""A grid larger than this is almost certainly a typo in a step."""


def axes(grid: Mapping[str, object]) -> dict[str, list[object]]:
    """Each parameter's values, in the grid's order (an empty grid: one point, the
    strategy's defaults)."""
    found = {name: values(name, spec) for name, spec in grid.items()}
    size = math.prod(len(v) for v in found.values())
    if size > MAX_POINTS:
        raise UsageError(f"the grid has {size:,} points, more than {MAX_POINTS:,}: check its steps")
    return found


def expand(grid: Mapping[str, object]) -> list[dict[str, object]]:
    """Every point of ``grid`` as a ``{name: value}`` dict (text values stay text: the
    strategy's parameters parse and check them)."""
    found = axes(grid)
    return [dict(zip(found, point, strict=True)) for point in itertools.product(*found.values())]


def values(name: str, spec: object) -> list[object]:
    """One parameter's values from a list, a single value or text (see the module docstring)."""
    if isinstance(spec, str):
        found: list[object] = list(_text_values(name, spec))
    elif isinstance(spec, (list, tuple, range)):
        found = list(spec)
    else:
        found = [spec]
    if not found:
        raise UsageError(f"grid parameter {name!r} has no values")
    if len(set(map(repr, found))) != len(found):
        raise UsageError(f"grid parameter {name!r} repeats a value: {spec!r}")
    return found


def parse_grid_arg(text: str) -> tuple[str, str]:
    """``--grid fast=5:50:5`` → ``("fast", "5:50:5")``."""
    name, sep, spec = text.partition("=")
    if not sep or not name.strip() or not spec.strip():
        raise UsageError(f"--grid takes NAME=START:STOP:STEP or NAME=A,B,C; got {text!r}")
    return name.strip(), spec.strip()


def _text_values(name: str, text: str) -> list[str]:
    if ":" not in text:
        return [part.strip() for part in text.split(",") if part.strip()]
    bad = UsageError(
        f"grid parameter {name!r}: {text!r} is not START:STOP:STEP with a positive step "
        "and START <= STOP"
    )
    try:
        start, stop, step = map(Decimal, text.split(":"))
    except (ValueError, InvalidOperation):  # not three parts, or not numbers
        raise bad from None
    if not all(d.is_finite() for d in (start, stop, step)) or step <= 0 or stop < start:
        raise bad
    count = int((stop - start) / step) + 1
    if count > MAX_POINTS:
        raise UsageError(f"grid parameter {name!r}: {text!r} has {count:,} values")
    # Decimal steps: 0.1:0.3:0.1 gives 0.1, 0.2, 0.3 and no 0.30000000000000004.
    return [str(start + k * step) for k in range(count)]
