"""The Strategy API: the base class, typed parameters, the built-ins and how they are found."""

from workbench.strategy.base import API_VERSION, Strategy
from workbench.strategy.builtin import BUILT_IN, SmaCross
from workbench.strategy.params import Param
from workbench.strategy.registry import find_strategy, make_strategy
from workbench.strategy.vol_breakout import VolBreakout

__all__ = [
    "API_VERSION",
    "BUILT_IN",
    "Param",
    "SmaCross",
    "Strategy",
    "VolBreakout",
    "find_strategy",
    "make_strategy",
]
