"""``promote()`` and ``workbench promote``: a strategy that passed the validation gate becomes
an artifact directory the runner can run unchanged (layout: :mod:`workbench.runner.artifact`).

From a notebook::

    from workbench.runner.promote import promote
    artifact = promote(result, "trend")              # validates the backtest first
    artifact = promote(report, "trend", dir="strategies", replace=True)  # a report already made
    artifact.make_strategy()                         # from the artifact's own strategy.py

``promote`` takes a bar :class:`~workbench.backtest.BacktestResult` or a
:class:`~workbench.backtest.SweepResult` (validated with ``config``, as ``validate`` takes
it) or a :class:`~workbench.validation.report.ValidationReport`. A failed validation raises
:class:`~workbench.runner.artifact.PromotionRefused` and writes nothing, unless ``force``:
then the artifact records ``forced: true`` and the gates that failed. A passing strategy is
never "forced". An existing ``<dir>/<name>`` is refused unless ``replace`` (and then only if
it is an artifact).

``workbench promote STRATEGY --name NAME`` takes ``workbench backtest``'s data, cost, mode and
``--param`` flags and either ``workbench validate``'s ``--config``/``--threshold``/
``--n-jobs`` (it runs the gate) or ``--report FILE`` (a ``workbench validate`` report.json or
its directory: the backtest is run again and must be the one the report judged — same
strategy, parameters, symbol, interval and metrics — or it is refused). The bars are read
like ``bars_of`` reads them, without its ``--out`` check (there is no ``--out`` here).

Exit codes: 0 promoted (also forced); 1 validation failed without ``--force`` (nothing
written; the gates on stdout); 2 a usage mistake — an unknown strategy, a missing database,
an existing artifact, an invalid name, a report that is unreadable or for another backtest —
with nothing written.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from workbench.backtest import backtest
from workbench.backtest.command import add_run_arguments, fills_of, parse_pair, read_bars
from workbench.errors import StrategyError, UsageError
from workbench.runner.artifact import (
    Artifact,
    PromotionRefused,
    artifact_path,
    check_target,
    read_report,
    write_artifact,
)
from workbench.strategy.registry import find_strategy
from workbench.validation.command import add_gate_arguments, thresholds_of_args

if TYPE_CHECKING:
    from workbench.backtest import BacktestResult, SweepResult
    from workbench.validation.config import Thresholds
    from workbench.validation.report import ValidationReport

DEFAULT_DIR = Path("strategies")


def promote(
    subject: BacktestResult | SweepResult | ValidationReport,
    name: str,
    *,
    dir: str | Path = DEFAULT_DIR,
    config: Thresholds | str | Path | dict[str, Any] | None = None,
    force: bool = False,
    replace: bool = False,
    db: str | Path | None = None,
    n_jobs: int = 1,
) -> Artifact:
    """``subject`` validated (unless it is a report already) and written to ``dir/name``
    (see the module docstring). ``db``: the database its bars came from, for the record."""
    from workbench.validation.report import ValidationReport, validate

    target = artifact_path(dir, name)
    check_target(target, replace=replace)  # before the gate's minute, not after it
    if isinstance(subject, ValidationReport):
        if config is not None:
            raise UsageError(
                "a ValidationReport keeps the thresholds it was judged by: pass config only "
                "with a BacktestResult or a SweepResult"
            )
        report = subject
    else:
        report = validate(subject, config, n_jobs=n_jobs)
    return write_artifact(
        target, report.result, report.to_json(), db=db, force=force, replace=replace
    )


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "promote",
        help="validate a strategy and write it as an artifact the runner can run",
        description="Run the validation gate on a strategy's backtest (or take a workbench "
        "validate report.json with --report) and write DIR/NAME: strategy.py, params.toml, "
        "report.json and artifact.json (the data's fingerprint, the files' hashes, the "
        "workbench version, the lock file's hash, the time), whole or not at all. Exit codes: "
        "0 promoted; 1 validation failed and no --force (nothing written); 2 a usage mistake "
        "(nothing written).",
    )
    add_run_arguments(p)
    p.add_argument(
        "--param", action="append", default=[], metavar="K=V", help="a strategy parameter"
    )
    p.add_argument("--name", required=True, help="the artifact's directory under --dir")
    p.add_argument("--dir", type=Path, default=DEFAULT_DIR, help="where artifacts are kept")
    p.add_argument(
        "--report",
        type=Path,
        metavar="FILE",
        help="a workbench validate report.json (or its directory) on this very backtest, "
        "instead of running the gate again",
    )
    add_gate_arguments(p, listed="see workbench validate --help")
    p.add_argument(
        "--force",
        action="store_true",
        help="promote even though a gate failed; the artifact records it as forced",
    )
    p.add_argument("--replace", action="store_true", help="replace an existing artifact NAME")


def run(args: argparse.Namespace) -> int:
    from workbench.validation.report import validate

    target = artifact_path(args.dir, args.name)
    check_target(target, replace=args.replace)
    if args.report is not None and (args.config is not None or args.threshold):
        raise UsageError("--report brings its verdict: give no --config or --threshold with it")
    limits = thresholds_of_args(args)
    report_json = None if args.report is None else _read_report(args.report)
    find_strategy(args.strategy)  # an unknown strategy before the database is read
    bars, exclude = read_bars(args)
    try:
        result = backtest(
            args.strategy,
            bars,
            interval=args.interval,
            params=dict(parse_pair(text) for text in args.param),
            fills=fills_of(args),
            cash=args.cash,
            mode=args.mode,
            exclude=exclude,
        )
        if report_json is None:
            report_json = validate(result, limits, n_jobs=args.n_jobs).to_json()
        artifact = write_artifact(
            target, result, report_json, db=args.db, force=args.force, replace=args.replace
        )
    except StrategyError as exc:
        raise UsageError(str(exc)) from exc
    except PromotionRefused as exc:
        print(exc.verdict)
        raise
    print(f"promoted {artifact.summary()}")
    return 0


def _read_report(path: Path) -> str:
    """The text of a ``workbench validate`` report.json (``path`` or ``path/report.json``)."""
    file = path / "report.json" if path.is_dir() else path
    try:
        text = file.read_bytes().decode("utf-8")
        read_report(text)
    except (OSError, UnicodeDecodeError, UsageError) as exc:
        raise UsageError(f"--report {file}: {exc}") from None
    return text
