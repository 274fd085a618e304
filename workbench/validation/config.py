"""The validation gate's thresholds: documented defaults, a TOML file, overrides by name.

Every threshold is a field of :class:`Thresholds` with its default, its bounds and what it
means; msgspec checks a file's or an override's type and bounds, so a mistake is refused with
the name of the threshold instead of surfacing as a strange verdict. A TOML file holds the
fields to change at its top level or under ``[validation]``::

    alpha = 0.01
    min_trades = 50

    [validation]   # the same, for a file shared with other settings
    folds = 8
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import msgspec

from workbench.errors import UsageError

Probability = Annotated[float, msgspec.Meta(gt=0, lt=1)]
Count = Annotated[int, msgspec.Meta(ge=1)]


class Thresholds(msgspec.Struct, frozen=True, forbid_unknown_fields=True, kw_only=True):
    """What a strategy must reach to pass each gate (Sharpe ratios annualised)."""

    min_trades: Annotated[int, msgspec.Meta(ge=0)] = 30
    """Enough evidence: the fewest round trips."""
    min_returns: Annotated[int, msgspec.Meta(ge=3)] = 500
    """Enough evidence: the fewest per-bar returns."""
    alpha: Probability = 0.05
    """Significance: the largest one-sided p-value of the HAC t-test of the mean return, and
    of the best trial's Holm-adjusted p-value in a sweep."""
    hac_lags: Annotated[int, msgspec.Meta(ge=0)] | None = None
    """Autocovariance lags of the HAC test; None: floor(4·(T/100)^(2/9))."""
    sharpe_level: Probability = 0.95
    """Confidence level of the Sharpe ratio's interval."""
    min_sharpe: float = 0.0
    """The lower end of the Sharpe ratio's interval must be above this."""
    min_psr: Probability = 0.95
    """Probabilistic Sharpe ratio: the least probability that the true Sharpe is above 0."""
    min_dsr: Probability = 0.95
    """Deflated Sharpe ratio: the same, against the expected best of a sweep's trials."""
    holdout: Probability = 0.7
    """Out of sample: the fraction of the bars the parameters are chosen on."""
    folds: Annotated[int, msgspec.Meta(ge=2)] = 5
    """Walk-forward: how many out-of-sample folds."""
    scheme: Literal["anchored", "rolling"] = "anchored"
    """Walk-forward: an in-sample part that grows from the start, or one of fixed length."""
    min_oos_sharpe: float = 0.0
    """Out of sample: the holdout's and the walk-forward's stitched Sharpe must be above this."""
    min_oos_is_ratio: float = 0.5
    """Out of sample: out-of-sample over in-sample Sharpe must be at least this."""
    lookahead_cuts: Count = 5
    """No look-ahead: how many truncation (and perturbation) points."""
    cost_multiplier: Annotated[float, msgspec.Meta(ge=1)] = 2.0
    """Cost stress: fees and slippage multiplied by this must still leave a profit."""
    seed: int = 0
    """Seeds the perturbation test, so a report is the same run after run."""

    def but(self, overrides: dict[str, Any], origin: str = "an override") -> Thresholds:
        """These thresholds with ``overrides`` (names as the fields), checked."""
        return _checked({**msgspec.structs.asdict(self), **overrides}, origin)

    def as_dict(self) -> dict[str, Any]:
        return msgspec.structs.asdict(self)


def names() -> tuple[str, ...]:
    """Every threshold's name, in the order :class:`Thresholds` documents them."""
    return Thresholds.__struct_fields__


def load_thresholds(path: str | Path) -> Thresholds:
    """The defaults changed by the TOML file ``path``."""
    path = Path(path)
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"cannot read thresholds {path}: {exc.strerror or exc}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"thresholds {path} are not TOML: {exc}") from None
    section = document.pop("validation", {})
    if not isinstance(section, dict):
        raise UsageError(f"thresholds {path}: [validation] must be a table")
    return _checked({**document, **section}, str(path))


def _checked(values: dict[str, Any], origin: str) -> Thresholds:
    try:
        return msgspec.convert(values, Thresholds, strict=True)
    except msgspec.ValidationError as exc:
        # msgspec names the field as `$.name`; say it as the threshold's name.
        detail = str(exc).replace("`$.", "`")
        raise UsageError(f"thresholds from {origin}: {detail}") from None
