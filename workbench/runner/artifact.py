"""A promoted strategy as a directory: exactly what was validated, pinned by hashes, checked
again before it runs.

``<dir>/<name>/`` holds four files::

    strategy.py    the strategy's source. The file that defines its class, byte for byte: a
                   built-in's module, a ``path/to/file.py:Class`` file. For a class defined in
                   a notebook cell (module ``__main__``): its definition, after import lines
                   generated from the names it uses — a module (``import numpy as np``), a
                   class or function importable from a module (``from workbench import
                   Strategy``), a number or a string (written as its value). Anything else
                   defined in the notebook (a helper function, a DataFrame) is refused: save
                   the strategy to a file and promote ``file.py:Class``.
    params.toml    every parameter, defaults filled in, written so that tomllib reads back the
                   same values and types
    report.json    the validation report (``ValidationReport.to_json``), byte for byte
    artifact.json  the manifest, format 1:

        format, name            this layout's version; the directory's name
        strategy, class, entry  the strategy's ``name``, its class, and "strategy.py:Class"
        source                  where strategy.py was copied from (a path or a notebook cell)
        exchange, symbol, interval, mode, cash, fills
                                what it ran on and how: ``fills`` are the BarFills fields
        data                    the fingerprint of the bars it was validated on
                                (:class:`DataFingerprint`)
        files                   sha256 of strategy.py, params.toml and report.json
        passed, forced, failed  the verdict; ``forced`` when it failed and was promoted anyway
                                (``failed``: the gates that failed, empty when it passed)
        workbench_version, lock the workbench that promoted it and the sha256 of the project's
                                requirements.lock (null, with a note, when there is none: a
                                workbench installed from a wheel)
        promoted_at             UTC, ISO 8601

Writing is whole or not at all: the files go to a temporary sibling directory, which is
loaded back (hashes, the class from its own strategy.py) and whose copy of the strategy is run
again on the same bars and costs; only if it makes the same decisions with the same metrics
— so a file edited or a cell re-run since the backtest is caught — is it renamed into place.
An existing ``<name>`` is refused; ``replace`` swaps out an existing *artifact* (a directory
with an artifact.json) as a whole, never any other directory. ``force`` is only for a failed
validation, never for an existing directory.

Reading (:func:`load_artifact`) checks that the directory, the manifest and its fields are
there and that every hashed file matches its hash, naming the file that is missing or
changed. :meth:`Artifact.make_strategy` loads the class from the artifact's own strategy.py
(re-hashed first), never from the installed package: the runner runs what was validated.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import dataclasses
import hashlib
import importlib
import json
import linecache
import math
import re
import secrets
import shutil
import symtable
import sys
import tomllib
import types
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec
import numpy as np
import pandas as pd

import workbench
from workbench.backtest.command import json_number
from workbench.core.fills import BarFills
from workbench.core.intervals import parse_interval
from workbench.engine.data import BAR_FIELDS, BarData
from workbench.errors import StrategyError, UsageError, WorkbenchError
from workbench.strategy.base import Strategy
from workbench.strategy.registry import find_strategy

if TYPE_CHECKING:
    from workbench.backtest.recipe import Recipe
    from workbench.backtest.result import BacktestResult

FORMAT = 1
MANIFEST = "artifact.json"
SOURCE, PARAMS, REPORT = "strategy.py", "params.toml", "report.json"
FILES = (SOURCE, PARAMS, REPORT)
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")
"""An artifact's name: one path component, no hidden or relative names."""


class ArtifactError(UsageError):
    """An artifact that cannot be written or trusted: missing, corrupt, or changed since it
    was promoted. The message names the file."""


class PromotionRefused(WorkbenchError):
    """The strategy failed validation and ``force`` was not given: nothing was written.
    ``verdict``: one line per gate, as ``workbench validate`` prints them."""

    def __init__(self, message: str, verdict: str) -> None:
        super().__init__(message)
        self.verdict = verdict


class DataFingerprint(msgspec.Struct, frozen=True, kw_only=True):
    """The bars a strategy was validated on: where they came from (``db``: None when the
    bars were given as a DataFrame), the series, the first and last bucket start (naive UTC),
    how many bars and how many were halted (excluded from trading), and ``sha256`` over their
    ``ts`` (µs) and OHLCV columns as the engine reads them (so the same bars give the same
    hash however their times were typed)."""

    db: str | None
    exchange: str
    symbol: str
    interval: str
    first: str
    last: str
    bars: int
    halted_bars: int
    sha256: str


class LockHash(msgspec.Struct, frozen=True, kw_only=True):
    file: str | None
    sha256: str | None
    note: str | None = None


class Manifest(msgspec.Struct, frozen=True, kw_only=True):
    """artifact.json; the fields are described in the module docstring."""

    format: int
    name: str
    strategy: str
    class_name: str = msgspec.field(name="class")
    entry: str
    source: str
    exchange: str
    symbol: str
    interval: str
    mode: str
    cash: float
    fills: dict[str, Any]
    data: DataFingerprint
    files: dict[str, str]
    passed: bool
    forced: bool
    failed: list[str]
    workbench_version: str
    lock: LockHash
    promoted_at: str


@dataclass(frozen=True)
class Artifact:
    """A verified artifact directory: its manifest, its parameters and its report."""

    path: Path
    manifest: Manifest
    params: dict[str, Any]
    report: dict[str, Any]

    @property
    def name(self) -> str:
        return self.manifest.name

    @property
    def passed(self) -> bool:
        return self.manifest.passed

    @property
    def forced(self) -> bool:
        return self.manifest.forced

    def strategy_class(self) -> type[Strategy]:
        """The class from the artifact's own strategy.py, after checking it is unchanged."""
        _verify_file(self.path, SOURCE, self.manifest.files[SOURCE])
        try:
            cls = find_strategy(f"{self.path / SOURCE}:{self.manifest.class_name}")
        except UsageError as exc:
            raise ArtifactError(f"{self.path / SOURCE} does not load: {exc}") from None
        if cls.name != self.manifest.strategy:
            raise ArtifactError(
                f"{self.path / SOURCE}: {self.manifest.class_name} is now strategy "
                f"{cls.name!r}, not the {self.manifest.strategy!r} that was promoted"
            )
        return cls

    def make_strategy(self) -> Strategy:
        """A fresh instance of the promoted class with the parameters of params.toml."""
        return self.strategy_class()(**self.params)

    def fills(self) -> BarFills:
        """The fill model it was validated with."""
        return BarFills(**self.manifest.fills)

    def summary(self) -> str:
        m, data = self.manifest, self.manifest.data
        verdict = (
            "passed every gate"
            if m.passed
            else f"FAILED {', '.join(m.failed)}; promoted anyway (forced, recorded)"
        )
        lock = (
            f"requirements.lock {m.lock.sha256[:12]}" if m.lock.sha256 else "no requirements.lock"
        )
        market = " ".join(part for part in (m.exchange, m.symbol, m.interval) if part)
        return "\n".join(
            [
                f"{m.strategy} {self.params} on {market} → {self.path}",
                f"  validation: {verdict}",
                *(f"  {name:<12} sha256 {m.files[name][:12]}" for name in FILES),
                f"  {'data':<12} {data.bars} bars {data.first} → {data.last}, "
                f"sha256 {data.sha256[:12]}",
                f"  workbench {m.workbench_version}, {lock}; promoted {m.promoted_at}",
            ]
        )

    def __repr__(self) -> str:
        verdict = "passed" if self.passed else "FORCED past a failed validation"
        return f"<Artifact {self.name}: {self.manifest.strategy} {self.params}, {verdict}>"


def write_artifact(
    target: str | Path,
    result: BacktestResult,
    report_json: str,
    *,
    db: str | Path | None = None,
    force: bool = False,
    replace: bool = False,
) -> Artifact:
    """``result``'s strategy, parameters and data with its validation report ``report_json``
    as the artifact directory ``target`` (see the module docstring). A failed report needs
    ``force``; ``db``: the database the bars came from, for the fingerprint."""
    target = Path(target)
    check_target(target, replace=replace)
    recipe = result.recipe
    if recipe is None:
        raise UsageError("only a bar backtest can be promoted (it keeps the recipe it ran)")
    report = read_report(report_json)
    check_report(report, result)
    if not report["passed"] and not force:
        raise PromotionRefused(
            f"{result.strategy} failed validation ({', '.join(report['failed'])}): nothing "
            "promoted; force it (--force, force=True) to promote it anyway, recorded as forced",
            verdict(report),
        )
    source, origin = strategy_source(find_strategy(recipe.strategy))
    strategy = recipe.make()
    params = dict(strategy.params)
    contents = {
        SOURCE: source,
        PARAMS: params_toml(params).encode(),
        REPORT: report_json.encode(),
    }
    data = data_fingerprint(recipe.bars, recipe.interval, db=db, exclude=recipe.exclude)
    manifest = Manifest(
        format=FORMAT,
        name=target.name,
        strategy=strategy.name,
        class_name=type(strategy).__name__,
        entry=f"{SOURCE}:{type(strategy).__name__}",
        source=origin,
        exchange=data.exchange,
        symbol=data.symbol,
        interval=recipe.interval,
        mode=recipe.mode,
        cash=recipe.cash,
        fills=dataclasses.asdict(recipe.fills),
        data=data,
        files={name: _sha256(content) for name, content in contents.items()},
        passed=bool(report["passed"]),
        forced=not report["passed"],
        failed=list(report["failed"]),
        workbench_version=workbench.__version__,
        lock=lock_hash(),
        promoted_at=datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z"),
    )
    with _staged(target, replace) as staging:
        for name, content in contents.items():
            (staging / name).write_bytes(content)
        (staging / MANIFEST).write_bytes(msgspec.json.format(msgspec.json.encode(manifest)) + b"\n")
        _check_reproduces(load_artifact(staging), recipe, result)
    return load_artifact(target)


def load_artifact(path: str | Path) -> Artifact:
    """The artifact at ``path``, verified: an :class:`ArtifactError` naming the file that is
    missing, corrupt or changed since promotion otherwise."""
    root = Path(path)
    if not root.is_dir():
        why = "not a directory" if root.exists() else "it does not exist"
        raise ArtifactError(f"no artifact at {root}: {why}")
    manifest = _read_manifest(root)
    for name in FILES:
        _verify_file(root, name, manifest.files[name])
    try:
        params = tomllib.loads((root / PARAMS).read_text())
        report = read_report((root / REPORT).read_text())
    except (tomllib.TOMLDecodeError, UsageError) as exc:
        raise ArtifactError(f"{root} holds a corrupt {PARAMS} or {REPORT}: {exc}") from None
    return Artifact(root, manifest, params, report)


def artifact_path(directory: str | Path, name: str) -> Path:
    """``directory/name``, once ``name`` is checked to be one plain path component."""
    if not NAME.fullmatch(name):
        raise ArtifactError(
            f"artifact name {name!r}: use letters, digits, '.', '_' and '-', starting with a "
            "letter or digit"
        )
    return Path(directory) / name


def check_target(target: Path, *, replace: bool = False) -> None:
    """A UsageError unless ``target`` may become an artifact: a valid name, and free (or,
    with ``replace``, an artifact already)."""
    artifact_path(target.parent, target.name)
    if not (target.exists() or target.is_symlink()):
        return
    if not replace:
        raise ArtifactError(
            f"{target} exists: promote under another name, or replace that artifact "
            "(--replace, replace=True)"
        )
    if not (target.is_dir() and (target / MANIFEST).is_file()):
        raise ArtifactError(
            f"{target} exists and is not an artifact (no {MANIFEST}): not replacing it"
        )


def read_report(text: str) -> dict[str, Any]:
    """A validation report's JSON, checked to be one."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise UsageError(f"not a validation report: not JSON ({exc})") from None
    needed = {"passed": bool, "failed": list, "gates": list, "strategy": str, "params": dict,
              "symbol": str, "interval": str, "metrics": dict}  # fmt: skip
    if not isinstance(document, dict):
        raise UsageError("not a validation report: not a JSON object")
    wrong = [key for key, kind in needed.items() if not isinstance(document.get(key), kind)]
    if wrong:
        raise UsageError(f"not a validation report: no valid {', '.join(wrong)}")
    return document


def check_report(report: Mapping[str, Any], result: BacktestResult) -> None:
    """A UsageError unless ``report`` judged ``result``: the same strategy, parameters,
    symbol and interval, and the same metrics (else it ran on other bars, costs or cash)."""
    ours = {"strategy": result.strategy, "params": result.params, "symbol": result.symbol,
            "interval": result.interval}  # fmt: skip
    for key, value in ours.items():
        if report[key] != value:
            raise UsageError(
                f"the report is on {key} {report[key]!r}, not {value!r} as the backtest being "
                "promoted: validate this strategy with these parameters on this data"
            )
    metrics = _plain_metrics(result.metrics)
    differ = [k for k, v in metrics.items() if report["metrics"].get(k, v) != v]
    if differ or set(report["metrics"]) != set(metrics):
        key = differ[0] if differ else "metrics"
        raise UsageError(
            f"the report's backtest is not this one ({key}: {report['metrics'].get(key)!r} in "
            f"the report, {metrics.get(key)!r} now): it ran on other bars, costs or cash"
        )


def verdict(report: Mapping[str, Any]) -> str:
    """One line per gate of a report's JSON, as ``workbench validate`` prints them."""
    return "\n".join(
        f"  {'pass' if gate.get('passed') else 'FAIL'}  {gate.get('name')}: {gate.get('detail')}"
        for gate in report["gates"]
    )


def data_fingerprint(
    bars: pd.DataFrame,
    interval: str,
    *,
    db: str | Path | None = None,
    exclude: pd.DataFrame | None = None,
) -> DataFingerprint:
    """The :class:`DataFingerprint` of ``bars`` (checked as a backtest checks them)."""
    every = parse_interval(interval)
    data = BarData.from_frame(bars, every.micros, exclude)
    digest = hashlib.sha256(f"workbench bars v1 {len(data)}\n".encode())
    for name, column in (("ts", data.ts), *((f, data.column(f)) for f in BAR_FIELDS)):
        digest.update(f"{name}\n".encode())
        digest.update(column.astype("<i8" if name == "ts" else "<f8").tobytes())
    first, last = (pd.Timestamp(int(t), unit="us").isoformat() for t in (data.ts[0], data.ts[-1]))
    return DataFingerprint(
        db=None if db is None else str(Path(db).resolve()),
        exchange=data.exchange,
        symbol=data.symbol,
        interval=every.name,
        first=first,
        last=last,
        bars=len(data),
        halted_bars=int(np.count_nonzero(data.halted)),
        sha256=digest.hexdigest(),
    )


def lock_hash() -> LockHash:
    """The sha256 of the requirements.lock of the project this workbench runs from."""
    root = Path(workbench.__file__).resolve().parent.parent
    lock = root / "requirements.lock"
    if (root / "pyproject.toml").is_file() and lock.is_file():
        return LockHash(file=str(lock), sha256=_sha256(lock.read_bytes()))
    return LockHash(
        file=None,
        sha256=None,
        note="no requirements.lock next to the workbench source (installed, not editable): "
        "only workbench_version pins the environment",
    )


def params_toml(params: Mapping[str, object]) -> str:
    """``params`` as TOML that tomllib reads back as the same values of the same types."""
    lines = ["# Every parameter of the promoted strategy, defaults filled in."]
    lines += [f"{_toml_key(key)} = {_toml_value(key, value)}" for key, value in params.items()]
    text = "\n".join(lines) + "\n"
    if _typed(tomllib.loads(text)) != _typed(params):
        raise ArtifactError(f"the parameters {dict(params)} do not survive TOML")
    return text


def strategy_source(cls: type[Strategy]) -> tuple[bytes, str]:
    """What strategy.py holds for ``cls``, and where it came from (see the module docstring)."""
    save = f"save it to a file and promote path/to/file.py:{cls.__name__}"
    if "." in cls.__qualname__:
        raise UsageError(
            f"{cls.__qualname__} is not defined at the top level of its file or cell: {save}"
        )
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    if cls.__module__ != "__main__" and isinstance(file, str) and file.endswith(".py"):
        path = Path(file)
        if path.is_file():
            return path.read_bytes(), str(path)
    return _cell_source(cls, save)


def _cell_source(cls: type[Strategy], save: str) -> tuple[bytes, str]:
    """A class defined in a notebook cell: its definition from the cell's text (which
    IPython keeps in linecache under the name its methods' code carries), after the imports
    of what it uses."""
    functions = [f for f in map(_function_of, vars(cls).values()) if f is not None]
    if not functions:
        raise UsageError(
            f"the source of {cls.__name__} is not available (no method of its own): {save}"
        )
    code = functions[0].__code__
    lines = linecache.getlines(code.co_filename)
    try:
        tree = ast.parse("".join(lines))
    except SyntaxError:
        tree = ast.Module(body=[], type_ignores=[])
    nodes = [
        node
        for node in tree.body
        if isinstance(node, ast.ClassDef)
        and node.name == cls.__name__
        and node.lineno <= code.co_firstlineno <= (node.end_lineno or 0)
    ]
    if not nodes:
        raise UsageError(
            f"the source of {cls.__name__} is not available ({code.co_filename}): {save}"
        )
    node = nodes[0]
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    body = "".join(lines[start - 1 : node.end_lineno]).rstrip("\n") + "\n"
    header = _imports(body, functions[0].__globals__, cls.__name__, save)
    text = (
        f"# {cls.name}: promoted by workbench from a class defined in a notebook cell; the\n"
        "# lines above the class were generated from the names it uses.\n"
        f"{header}\n\n\n{body}"
    )
    return text.encode(), f"notebook cell {code.co_filename}"


def _function_of(value: object) -> types.FunctionType | None:
    if isinstance(value, (staticmethod, classmethod)):
        value = value.__func__
    if isinstance(value, property):
        value = value.fget
    return value if isinstance(value, types.FunctionType) else None


def _imports(source: str, namespace: Mapping[str, Any], owner: str, save: str) -> str:
    """The lines that give ``source`` the globals it reads from ``namespace``."""
    lines = []
    for name in sorted(_global_names(source)):
        if name not in namespace:
            if hasattr(builtins, name):
                continue
            raise UsageError(f"{owner} refers to {name!r}, which the notebook does not define")
        line = _import_line(name, namespace[name])
        if line is None:
            kind = type(namespace[name]).__name__
            raise UsageError(f"{owner} uses {name!r}, a {kind} defined in the notebook: {save}")
        lines.append(line)
    order = {"import": 0, "from": 1}
    return "\n".join(sorted(lines, key=lambda line: (order.get(line.split()[0], 2), line)))


def _global_names(source: str) -> set[str]:
    """The global names ``source`` reads, less those it defines itself."""
    table = symtable.symtable(source, SOURCE, "exec")
    defined = {s.get_name() for s in table.get_symbols() if s.is_assigned() or s.is_imported()}
    found: set[str] = set()
    pending = [table]
    while pending:
        scope = pending.pop()
        pending.extend(scope.get_children())
        found.update(
            s.get_name() for s in scope.get_symbols() if s.is_referenced() and s.is_global()
        )
    return found - defined


def _import_line(name: str, value: object) -> str | None:
    """How strategy.py gets ``value`` as ``name``: an import, a literal, or None (it cannot)."""
    if isinstance(value, types.ModuleType):
        path = value.__name__
        return f"import {path}" if path == name else f"import {path} as {name}"
    module, qualname = getattr(value, "__module__", None), getattr(value, "__qualname__", None)
    if isinstance(module, str) and isinstance(qualname, str) and module != "__main__":
        try:
            found = getattr(importlib.import_module(module), qualname, None)
        except ImportError:
            found = None
        if found is value:
            alias = "" if qualname == name else f" as {name}"
            return f"from {module} import {qualname}{alias}"
    if value is None or type(value) in (bool, int, str):
        return f"{name} = {value!r}"
    if type(value) is float and math.isfinite(value):
        return f"{name} = {value!r}"
    return None


def _check_reproduces(artifact: Artifact, recipe: Recipe, result: BacktestResult) -> None:
    """The artifact's own copy of the strategy, run as ``result`` was, must do what it did."""
    try:
        again = recipe.but(strategy=artifact.strategy_class(), params=artifact.params).backtest()
    except StrategyError as exc:
        raise ArtifactError(f"the promoted copy of {SOURCE} raised: {exc}") from None
    if not again.decisions.equals(result.decisions) or _plain_metrics(
        again.metrics
    ) != _plain_metrics(result.metrics):
        raise ArtifactError(
            f"the promoted copy of {result.strategy} ({artifact.manifest.source}) does not "
            "reproduce the validated backtest: its code changed since it ran (a file edited, a "
            "cell re-run?) or it is not deterministic; run the backtest again and promote that"
        )


def _read_manifest(root: Path) -> Manifest:
    file = root / MANIFEST
    try:
        raw = json.loads(file.read_bytes())
    except FileNotFoundError:
        raise ArtifactError(
            f"{root} has no {MANIFEST}: not a promoted strategy (or an incomplete copy of one)"
        ) from None
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{file} is corrupt: {exc}") from None
    if not isinstance(raw, dict):
        raise ArtifactError(f"{file} is corrupt: not a JSON object")
    if raw.get("format") != FORMAT:
        raise ArtifactError(
            f"{file} is format {raw.get('format')!r}; this workbench reads format {FORMAT}"
        )
    try:
        manifest = msgspec.convert(raw, Manifest)
    except msgspec.ValidationError as exc:
        raise ArtifactError(f"{file} is corrupt: {exc}") from None
    if sorted(manifest.files) != sorted(FILES):
        raise ArtifactError(f"{file} is corrupt: it hashes {sorted(manifest.files)}, not {FILES}")
    if manifest.entry != f"{SOURCE}:{manifest.class_name}":
        raise ArtifactError(f"{file} is corrupt: entry {manifest.entry!r} is not {SOURCE}:Class")
    return manifest


def _verify_file(root: Path, name: str, recorded: str) -> None:
    file = root / name
    try:
        now = _sha256(file.read_bytes())
    except FileNotFoundError:
        raise ArtifactError(
            f"{name} is missing from {root} ({MANIFEST} records its sha256)"
        ) from None
    except OSError as exc:
        raise ArtifactError(f"{file} cannot be read: {exc}") from None
    if now != recorded:
        raise ArtifactError(
            f"{name} changed since promotion: sha256 {now} != {recorded} recorded in "
            f"{root / MANIFEST}; restore it, or promote the strategy again"
        )


@contextmanager
def _staged(target: Path, replace: bool) -> Iterator[Path]:
    """A temporary sibling of ``target`` to write into, put in its place when the block ends
    without an error; removed, with any directory made for it, when it does not."""
    made = [p for p in (target.parent, *target.parent.parents) if not p.exists()]
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.parent / f".{target.name}.{secrets.token_hex(6)}"
    staging.mkdir()  # not mkdtemp: the artifact gets the umask's permissions, not 0700
    try:
        yield staging
        check_target(target, replace=replace)  # it may have appeared while we validated
        if target.exists():
            old = staging.with_name(f"{staging.name}.old")
            target.rename(old)
            try:
                staging.rename(target)
            except BaseException:
                old.rename(target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        for directory in made:
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise


def _plain_metrics(metrics: Mapping[str, float]) -> dict[str, float | str | None]:
    """Metrics as report.json holds them (NaN null, infinities as text)."""
    return {key: json_number(float(value)) for key, value in metrics.items()}


def _sha256(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")


def _toml_key(key: str) -> str:
    return key if _BARE_KEY.fullmatch(key) else _toml_string(key)


def _toml_value(key: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        return _toml_string(value)
    raise ArtifactError(f"parameter {key!r} = {value!r} cannot be written as TOML")


def _toml_string(text: str) -> str:
    escaped = "".join(
        "\\" + ch if ch in '"\\' else f"\\u{ord(ch):04x}" if ch < " " or ch == "\x7f" else ch
        for ch in text
    )
    return f'"{escaped}"'


def _typed(values: Mapping[str, object]) -> dict[str, tuple[type, object]]:
    return {key: (type(value), value) for key, value in values.items()}
