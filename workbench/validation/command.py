"""``workbench validate``: the validation gate on a backtest or a sweep's best trial, as files.

``workbench validate STRATEGY`` takes ``workbench backtest``'s data, cost and ``--param``
flags; ``workbench validate --sweep DIR`` takes a ``workbench sweep`` directory: its table
and returns as written, its bars and costs from the flags recorded in its ``sweep.json``.
Thresholds are the documented defaults, changed by ``--config FILE`` (TOML) and then by
``--threshold NAME=VALUE``. ``--out DIR`` gets report.json and report.html, whole or not at
all. Exit codes: 0 every gate passed; 1 a gate failed; 2 a usage mistake (nothing written).
"""

from __future__ import annotations

import argparse
import json
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from workbench.backtest import backtest
from workbench.backtest.command import add_run_arguments, bars_of, fills_of, parse_pair
from workbench.backtest.recipe import Recipe
from workbench.backtest.sweep import SweepResult
from workbench.backtest.sweep_command import RUN_ARGUMENTS
from workbench.errors import StrategyError, UsageError
from workbench.validation.config import Thresholds, load_thresholds, names

if TYPE_CHECKING:
    from workbench.validation.report import ValidationReport


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    defaults = ", ".join(f"{k}={v}" for k, v in Thresholds().as_dict().items())
    p = sub.add_parser(
        "validate",
        help="run the validation gate on a strategy or a sweep's best trial",
        description="Run every gate of the validation gate (evidence, HAC significance, Sharpe "
        "interval, deflated Sharpe and Holm for a sweep, holdout and walk-forward, look-ahead, "
        "cost stress) and write report.json and report.html into a new directory. Exit codes: 0 "
        "every gate passed; 1 a gate failed; 2 a usage mistake (nothing written).",
        epilog=f"Thresholds and their defaults: {defaults}.",
    )
    add_run_arguments(p, required=False)
    p.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="a strategy parameter"
    )
    p.add_argument(
        "--sweep", type=Path, metavar="DIR", help="a workbench sweep directory: its best trial"
    )
    add_gate_arguments(p, listed="see the list below")
    p.add_argument("--out", type=Path, required=True, help="output directory (must not exist)")


def add_gate_arguments(p: argparse.ArgumentParser, *, listed: str) -> None:
    """``--config``, ``--threshold`` and ``--n-jobs``: what running the gate takes
    (``listed``: where the help says the thresholds are listed)."""
    p.add_argument("--config", type=Path, metavar="FILE", help="thresholds from a TOML file")
    p.add_argument(
        "--threshold",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help=f"a threshold (after --config), e.g. alpha=0.01; {listed}",
    )
    p.add_argument("--n-jobs", type=int, default=1, help="workers for the out-of-sample sweeps")


def run(args: argparse.Namespace) -> int:
    from workbench.validation.report import validate  # statsmodels: only for this command

    limits = thresholds_of_args(args)
    subject = _subject(args)
    try:
        report = validate(subject, limits, n_jobs=args.n_jobs)
    except StrategyError as exc:
        raise UsageError(str(exc)) from exc
    if isinstance(subject, SweepResult):
        _check_unchanged(subject, report, args.sweep)
    report.write(args.out)
    print(summary(report, args.out))
    return 0 if report.passed else 1


def summary(report: ValidationReport, out: Path | None = None) -> str:
    lines = [
        f"{report.strategy} {report.params} on {report.symbol} {report.interval}: "
        + ("PASSED every gate" if report.passed else f"FAILED {', '.join(report.failed)}")
    ]
    lines += [f"  {'pass' if g.passed else 'FAIL'}  {g.name}: {g.detail}" for g in report.gates]
    if out is not None:
        lines.append(f"→ {out}")
    return "\n".join(lines)


def thresholds_of_args(args: argparse.Namespace) -> Thresholds:
    limits = load_thresholds(args.config) if args.config else Thresholds()
    overrides: dict[str, Any] = {}
    for text in args.threshold:
        name, value = parse_pair(text)
        if name not in names():
            raise UsageError(f"no threshold {name!r}; choose from {', '.join(names())}")
        overrides[name] = _value(name, value)
    return limits.but(overrides, "--threshold") if overrides else limits


def _value(name: str, text: str) -> Any:
    """A flag's text as TOML reads it (0.01, 50, true, "rolling"), bare words as text."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        if text.replace("_", "").isalpha():
            return text
        raise UsageError(f"--threshold {name}={text}: not a number, true/false or a word") from None


def _subject(args: argparse.Namespace) -> Any:
    if args.sweep is None:
        missing = [flag for flag, value in (("STRATEGY", args.strategy), ("--symbol", args.symbol),
                   ("--interval", args.interval)) if value is None]  # fmt: skip
        if missing:
            raise UsageError(f"give {' '.join(missing)} (or --sweep DIR)")
        bars, exclude = bars_of(args)
        return backtest(
            args.strategy,
            bars,
            interval=args.interval,
            params=dict(parse_pair(text) for text in args.param),
            fills=fills_of(args),
            cash=args.cash,
            mode=args.mode,
            exclude=exclude,
        )
    if args.strategy is not None or args.param:
        raise UsageError("--sweep DIR names its strategy and data: give no STRATEGY or --param")
    return load_sweep(args.sweep, args.out)


def _check_unchanged(sweep: SweepResult, report: ValidationReport, directory: Path) -> None:
    """The best trial run again must score what the sweep wrote, or its data has changed."""
    wrote, now = float(sweep.best("sharpe")["sharpe"]), report.result.metrics["sharpe"]
    if wrote != now:
        raise UsageError(
            f"the best trial of {directory} ({report.params}) now has sharpe {now!r}, not the "
            f"{wrote!r} it was written with: the bars in its database have changed since"
        )


def load_sweep(directory: Path, out: Path) -> SweepResult:
    """A ``workbench sweep`` directory as the sweep it wrote, its bars loaded again."""
    try:
        written = json.loads((directory / "sweep.json").read_text())
        table = pd.read_csv(directory / "results.csv")
        returns = pd.read_parquet(directory / "returns.parquet").set_index("ts")
    except (OSError, ValueError) as exc:
        raise UsageError(
            f"{directory} is not a readable workbench sweep directory: {exc}"
        ) from None
    run = written.get("run")
    if not isinstance(run, dict) or set(run) != set(RUN_ARGUMENTS):
        raise UsageError(f"{directory}/sweep.json does not record its run (an older sweep?)")
    flags = argparse.Namespace(**run, out=out)
    flags.db = Path(run["db"])
    bars, exclude = bars_of(flags)
    returns.columns = [int(column) for column in returns.columns]
    return SweepResult(
        strategy=written["strategy"],
        grid=written["grid"],
        interval=written["interval"],
        mode=written["mode"],
        table=table,
        returns=returns,
        recipe=Recipe(
            run["strategy"],
            params={},
            bars=bars,
            interval=run["interval"],
            fills=fills_of(flags),
            cash=run["cash"],
            mode=run["mode"],
            exclude=exclude,
        ),
    )
