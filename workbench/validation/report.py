"""``validate()`` and its :class:`ValidationReport`: every gate, every input, JSON and HTML.

The report is what a promotion decides on: it passes only when every gate does, and it keeps
what each gate computed from (T, lags, the Sharpe's moments, the trials and the variance of
their Sharpe ratios, every fold) so that a reader can check the verdict, not just trust it.
"""

from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from workbench.backtest.result import BacktestResult
from workbench.backtest.sweep import SweepResult
from workbench.errors import UsageError
from workbench.validation.charts import as_img, equity_svg, returns_histogram_svg
from workbench.validation.config import Thresholds
from workbench.validation.gate import (
    Gate,
    candidate_of,
    cost_stress_gate,
    evidence_gates,
    guarded,
    lookahead_gates,
    out_of_sample_gates,
    sharpe_gate,
    significance_gate,
    sweep_gates,
    thresholds_of,
)
from workbench.validation.walkforward import Fold, HoldoutResult, WalkForwardResult

Floats = npt.NDArray[np.float64]
FILES = ("report.json", "report.html")


@dataclass(frozen=True, eq=False)
class ValidationReport:
    """The verdict on one candidate: ``gates`` in the order they ran, ``passed`` when all
    did; ``result`` the candidate's backtest, ``returns`` its per-bar returns."""

    strategy: str
    params: dict[str, Any]
    symbol: str
    interval: str
    mode: str
    thresholds: Thresholds
    gates: tuple[Gate, ...]
    result: BacktestResult = field(repr=False)
    returns: Floats = field(repr=False)
    trials: int | None = None
    holdout: HoldoutResult | None = field(default=None, repr=False)
    walk_forward: WalkForwardResult | None = field(default=None, repr=False)

    @property
    def passed(self) -> bool:
        return all(gate.passed for gate in self.gates)

    @property
    def failed(self) -> list[str]:
        return [gate.name for gate in self.gates if not gate.passed]

    def gate(self, name: str) -> Gate:
        for gate in self.gates:
            if gate.name == name:
                return gate
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """Everything in the report, as JSON takes it (NaN as null)."""
        folds = self.walk_forward.table if self.walk_forward is not None else None
        document: dict[str, Any] = _jsonable(
            {
                "passed": self.passed,
                "failed": self.failed,
                "strategy": self.strategy,
                "params": self.params,
                "symbol": self.symbol,
                "interval": self.interval,
                "mode": self.mode,
                "trials": self.trials,
                "thresholds": self.thresholds.as_dict(),
                "gates": [vars(gate) for gate in self.gates],
                "metrics": self.result.metrics,
                "walk_forward_folds": None if folds is None else folds.to_dict("records"),
            }
        )
        return document

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def __repr__(self) -> str:
        verdict = "PASSED" if self.passed else f"FAILED ({', '.join(self.failed)})"
        return f"<ValidationReport {self.strategy} {self.interval}: {verdict}>"

    def _repr_html_(self) -> str:
        verdict = (
            "<b style='color:#2e7d32'>passed every gate</b>"
            if self.passed
            else f"<b style='color:#c62828'>failed: {html.escape(', '.join(self.failed))}</b>"
        )
        params = html.escape(", ".join(f"{k}={v!r}" for k, v in self.params.items()))
        rows = "".join(
            "<tr>"
            f"<td>{html.escape(gate.name)}</td>"
            f"<td>{'pass' if gate.passed else '<b>FAIL</b>'}</td>"
            f"<td>{_shown(gate.value)}</td><td>{html.escape(gate.threshold)}</td>"
            f"<td style='text-align:left'>{html.escape(gate.detail)}</td>"
            "</tr>"
            for gate in self.gates
        )
        folds = (
            "<h4>Walk-forward folds</h4>" + self.walk_forward.table.to_html(index=False)
            if self.walk_forward is not None
            else ""
        )
        trials = f", chosen from {self.trials} trials" if self.trials else ""
        return (
            f"<div><h4>Validation of {html.escape(self.strategy)} ({params}) on "
            f"{html.escape(self.symbol)} {html.escape(self.interval)} bars{trials}: {verdict}"
            "</h4><table><tr><th>gate</th><th>verdict</th><th>value</th><th>threshold</th>"
            f"<th>how</th></tr>{rows}</table>{self._charts()}{folds}</div>"
        )

    def _charts(self) -> str:
        """Equity and drawdown with the out-of-sample segments shaded; the returns' spread."""
        equity = self.result.equity
        times = equity["ts"].to_numpy(dtype="datetime64[us]").astype(np.int64)
        segments = [_segment(fold.oos_time, f"fold {fold.number}") for fold in self._folds()]
        if self.holdout is not None:
            segments.append(_segment(self.holdout.fold.oos_time, "holdout"))
        curve = equity_svg(
            times,
            equity["equity"].to_numpy(dtype=np.float64),
            equity["drawdown"].to_numpy(dtype=np.float64),
            segments,
        )
        return as_img(curve, "equity and drawdown, out-of-sample segments shaded") + as_img(
            returns_histogram_svg(self.returns), "distribution of per-bar returns"
        )

    def _folds(self) -> tuple[Fold, ...]:
        return () if self.walk_forward is None else self.walk_forward.folds

    def write(self, out: str | Path) -> Path:
        """``report.json`` and ``report.html`` into the new directory ``out``, complete or not
        at all."""
        from workbench.backtest.command import staged

        target = Path(out)
        with staged(target) as staging:
            (staging / "report.json").write_text(self.to_json())
            (staging / "report.html").write_text(
                "<!doctype html><meta charset='utf-8'><title>validation</title>"
                + self._repr_html_()
                + "\n"
            )
        return target


def validate(
    subject: BacktestResult | SweepResult,
    config: Thresholds | str | Path | dict[str, Any] | None = None,
    *,
    n_jobs: int = 1,
) -> ValidationReport:
    """Run every gate on ``subject`` — a bar backtest, or a sweep whose best trial by Sharpe
    is judged and deflated for the search — with the thresholds of ``config`` (None: the
    defaults of :class:`~workbench.validation.config.Thresholds`; a TOML file; or overrides
    by name). ``n_jobs``: workers for the out-of-sample sweeps."""
    limits = thresholds_of(config)
    candidate = candidate_of(subject)
    gates = evidence_gates(candidate, limits)
    gates += guarded(
        "significance", f"< {limits.alpha:g}", lambda: significance_gate(candidate, limits)
    )
    gates += guarded(
        "sharpe", f"above {limits.min_sharpe:g}", lambda: sharpe_gate(candidate, limits)
    )
    if candidate.sweep is not None:
        gates += guarded(
            "deflated sharpe", f">= {limits.min_dsr:g}", lambda: sweep_gates(candidate, limits)
        )
    split: HoldoutResult | None = None
    folds: WalkForwardResult | None = None
    try:
        oos, split, folds = out_of_sample_gates(candidate, limits, n_jobs=n_jobs)
        gates += oos
    except UsageError as exc:
        gates.append(Gate("out of sample", False, None, "computable", {}, f"not computable: {exc}"))
    gates += guarded(
        "look-ahead", "0 changed decisions", lambda: lookahead_gates(candidate, limits)
    )
    gates += guarded("cost stress", "> 0", lambda: cost_stress_gate(candidate, limits))
    result = candidate.result
    return ValidationReport(
        strategy=result.strategy,
        params=dict(result.params),
        symbol=result.symbol,
        interval=result.interval,
        mode=candidate.recipe.mode,
        thresholds=limits,
        gates=tuple(gates),
        result=result,
        returns=candidate.returns,
        trials=None if candidate.sweep is None else candidate.sweep.trials,
        holdout=split,
        walk_forward=folds,
    )


def _segment(span: tuple[pd.Timestamp, pd.Timestamp], label: str) -> tuple[int, int, str]:
    start, end = (int(time.value // 1_000) for time in span)  # ns to µs
    return start, end, label


def _shown(value: float | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{value:.4g}"


def _jsonable(value: Any) -> Any:
    """``value`` with every NaN as None, infinities as strings and numpy scalars and
    timestamps as plain JSON values."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        if math.isnan(value):
            return None
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return value
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value
