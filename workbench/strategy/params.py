"""Typed strategy parameters: declared once on the class, validated on every instance.

``fast = Param(10, low=2, doc="fast SMA window")`` declares an integer parameter (the type is
the default's) with a range. Values from the command line arrive as text (``--param
fast=12``) and are parsed by that type; a wrong type or a value out of range is a
:class:`~workbench.errors.UsageError` naming the strategy, the parameter and what it takes.
"""

from __future__ import annotations

import math
from typing import Any, Generic, TypeVar, overload

from workbench.errors import UsageError

Value = TypeVar("Value", int, float, bool, str)

_TRUE, _FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


class Param(Generic[Value]):
    """One parameter: its default, type, allowed range or choices and a line of help."""

    def __init__(
        self,
        default: Value,
        *,
        low: float | None = None,
        high: float | None = None,
        choices: tuple[Value, ...] | None = None,
        doc: str = "",
    ) -> None:
        self.default: Value = default
        self.type: type = type(default)
        if self.type not in (int, float, bool, str):
            raise TypeError(f"a Param's default is an int, float, bool or str, got {default!r}")
        self.low, self.high, self.doc = low, high, doc
        self.choices: tuple[Value, ...] | None = choices
        self.name = ""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, instance: None, owner: type) -> Param[Value]: ...

    @overload
    def __get__(self, instance: object, owner: type) -> Value: ...

    def __get__(self, instance: object | None, owner: type) -> Param[Value] | Value:
        if instance is None:
            return self
        value: Value = instance.__dict__["params"][self.name]
        return value

    def __set__(self, instance: object, value: object) -> None:
        raise AttributeError(f"parameter {self.name!r} is fixed when the strategy is made")

    def describe(self) -> str:
        """``fast: int = 10, 2..∞ — fast SMA window``: for help texts and reprs."""
        allowed = ""
        if self.choices is not None:
            allowed = ", one of " + "/".join(map(str, self.choices))
        elif self.low is not None or self.high is not None:
            low = "-∞" if self.low is None else f"{self.low:g}"
            high = "∞" if self.high is None else f"{self.high:g}"
            allowed = f", {low}..{high}"
        help_text = f" — {self.doc}" if self.doc else ""
        return f"{self.name}: {self.type.__name__} = {self.default!r}{allowed}{help_text}"

    def check(self, value: object, owner: str) -> Value:
        """``value`` (or its text) as this parameter's type, or a UsageError saying why not."""
        where = f"{owner}: parameter {self.name!r}"
        parsed = self._parse(value, where) if isinstance(value, str) else value
        if self.type is float and type(parsed) is int:
            parsed = float(parsed)
        if type(parsed) is not self.type:
            raise UsageError(
                f"{where} takes a {self.type.__name__}, got {value!r} ({type(value).__name__})"
            )
        if self.type is float and not math.isfinite(parsed):  # type: ignore[arg-type]
            raise UsageError(f"{where} must be finite, got {value!r}")
        if self.choices is not None and parsed not in self.choices:
            raise UsageError(f"{where} must be one of {self.choices}, got {value!r}")
        if (self.low is not None and parsed < self.low) or (  # type: ignore[operator]
            self.high is not None and parsed > self.high  # type: ignore[operator]
        ):
            raise UsageError(f"{where} must be in {self.low}..{self.high}, got {value!r}")
        checked: Value = parsed  # type: ignore[assignment]
        return checked

    def _parse(self, text: str, where: str) -> Any:
        if self.type is str:
            return text
        if self.type is bool:
            if text.lower() in _TRUE:
                return True
            if text.lower() in _FALSE:
                return False
            raise UsageError(f"{where} takes true or false, got {text!r}")
        try:
            return self.type(text)
        except ValueError:
            raise UsageError(f"{where} takes a {self.type.__name__}, got {text!r}") from None
