"""``%wb`` and ``%%wb sql``: a thin argparse layer over the Workbench API and the widgets.

Each subcommand parses its flags, calls one Workbench or widget function and returns what
the notebook should display (a DataFrame, a widget, a clean report) or prints one line.

User mistakes are :class:`IPython.core.error.UsageError`, which IPython shows as one line
without a traceback: argparse is subclassed so a bad flag raises instead of printing usage
to stderr and calling ``sys.exit``; every :class:`~workbench.WorkbenchError` (raised on
purpose, with a message that says what to do) and every DuckDB error caused by the SQL in
a ``%%wb sql`` cell is converted at the magic boundary.

SQL safety: the ``%%wb`` line is not variable-expanded and the cell body is never
formatted; Python values reach DuckDB only as named parameters (``$name``, passed with
``-p name``), bound by DuckDB itself.

Thread output under ipykernel 7: output written from a background thread lands in
whichever cell ran last, not the one that started the thread. So nothing here prints from
a thread: the magics print only on the kernel's main thread while their cell runs, feeds
report through ``status()``, and widget pumps route their errors through their own
``ipywidgets.Output`` (``append_stderr``), which stays attached to the widget's cell.
"""

from __future__ import annotations

import argparse
import keyword
import re
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import duckdb
import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class, no_var_expand
from traitlets import Bunch, Float, Int, TraitError, Unicode, observe, validate

from workbench.core.clean import TABLE_SPECS
from workbench.errors import WorkbenchError
from workbench.feeds.replay_feed import SCHEME as REPLAY
from workbench.notebook import sql_access
from workbench.notebook.session import Session
from workbench.notebook.sql_access import FILES, WRITE
from workbench.sim.command import (
    EMBEDDED_RATE,
    EMBEDDED_SEED,
    add_market_options,
    embedded_sim,
    market_options_given,
)
from workbench.store import DEFAULT_DB
from workbench.venues import get_venue

if TYPE_CHECKING:
    from IPython.core.interactiveshell import InteractiveShell

Handler = Callable[[argparse.Namespace], object]

_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

# DuckDB errors that mean the SQL (or a file or value it names) was wrong, not DuckDB.
_SQL_MISTAKES = (
    duckdb.ProgrammingError,  # parser, binder, catalog, invalid input
    duckdb.DataError,  # conversion, out of range
    duckdb.IntegrityError,  # constraints
    duckdb.NotSupportedError,
    duckdb.IOException,  # a missing or unreadable file in read_csv, COPY, ...
    duckdb.TransactionException,
    duckdb.DependencyException,
)


class _HelpShown(Exception):
    """``--help`` printed its text; the magic returns quietly."""


class _Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing usage to stderr and exiting:
    a magic must not raise SystemExit, and IPython shows UsageError as one clean line."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{self.prog}: {message}; see {self.prog} --help")

    def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
        # error() raises first, so only --help (after printing to stdout) gets here
        raise _HelpShown


def _one_line(text: str) -> str:
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def _duckdb_message(exc: duckdb.Error) -> str:
    """DuckDB's message without the ``LINE n:`` excerpt and caret that follow it."""
    lines = []
    for line in str(exc).splitlines():
        if line.startswith("LINE "):
            break
        lines.append(line)
    return _one_line("\n".join(lines))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not (0 < value < float("inf")):
        raise argparse.ArgumentTypeError(f"expected a number above 0, got {text!r}")
    return value


def _sma_windows(text: str) -> tuple[int, ...]:
    """``"20,50"`` → ``(20, 50)``; an empty string means no overlay."""
    try:
        return tuple(_positive_int(part) for part in text.split(",") if part.strip())
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated window lengths such as 20,50, got {text!r}"
        ) from None


@magics_class
class WorkbenchMagics(Magics):
    """The ``%wb`` magics and their settings (``%config WorkbenchMagics``)."""

    db = Unicode(
        str(DEFAULT_DB),
        help="DuckDB file this kernel records into, relative to the working directory. "
        "Opened on first use; can change while no feed runs (the current file is closed).",
    ).tag(config=True)
    pump_rate = Float(
        10.0, min=0.1, max=20.0, help="Updates per second of book and price widgets (Hz)."
    ).tag(config=True)
    status_rate = Float(
        2.0, min=0.1, max=20.0, help="Updates per second of the %wb feeds table (Hz)."
    ).tag(config=True)
    depth = Int(20, min=1, help="Levels per side an order-book widget charts.").tag(config=True)
    levels = Int(10, min=1, help="Levels per side of an order-book widget's ladder.").tag(
        config=True
    )
    window = Int(2000, min=1, help="Trades a price widget keeps on screen.").tag(config=True)
    sim_rate = Float(
        EMBEDDED_RATE, help="Messages per second per symbol of an embedded simulator."
    ).tag(config=True)
    sim_seed = Int(
        EMBEDDED_SEED, help="Seed of an embedded simulator: same seed, same market."
    ).tag(config=True)

    def __init__(self, shell: InteractiveShell | None = None, **kwargs: Any) -> None:
        # The session exists before the traits: loading config may already set ``db``.
        self.session = Session(DEFAULT_DB)
        super().__init__(shell=shell, **kwargs)
        self.session.db = self._db_path(self.db)

    # -- settings -------------------------------------------------------------------------
    @staticmethod
    def _db_path(value: str) -> Path:
        return Path(value).expanduser()

    @validate("db")
    def _check_db(self, proposal: Bunch) -> str:
        value = str(proposal["value"])
        running = self.session.running_feeds()
        if running and self._db_path(value).resolve() != self.session.db.resolve():
            names = ", ".join(feed.name for feed in running)
            raise TraitError(
                f"WorkbenchMagics.db cannot change while feeds record into {self.session.db} "
                f"({names}): run %wb feed stop --all (or %unload_ext workbench) first"
            )
        return value

    @observe("db")
    def _switch_db(self, change: Bunch) -> None:
        new = self._db_path(change["new"])
        if new.resolve() != self.session.db.resolve():
            self.session.close()  # no feed runs (see _check_db): only closes the old file
        self.session.db = new

    # -- the magic ------------------------------------------------------------------------
    @no_var_expand
    @line_cell_magic
    def wb(self, line: str, cell: str | None = None) -> object:
        """Live market data into DuckDB, from this notebook.

            %wb SUBCOMMAND [ARGS]          %wb SUBCOMMAND --help lists every flag
            %%wb sql [-o VAR] [-p NAME[=VARIABLE] ...] [--write] [--files]

        Subcommands:
          feed start VENUE SYMBOL...  start recording; venue sim without --ws-url starts an
                                      embedded simulator (no internet, no keys);
                                      venue replay:PATH plays a recording [--speed X]
                                      [--redundant] [--ws-url URL] [--rest-url URL]
                                      [--name NAME] [--depth N]; embedded simulator:
                                      [--seed N] [--rate MSGS] [--drop-every S]
                                      [--stall-every S] [--malformed P] [--gap P]
                                      [--duplicate P] [--crossed P] [--sim-symbols A,B]
          feed stop [NAME | --all]    stop a feed and its embedded simulator
          feeds                       live status table of every feed
          attach DIR                  %%wb sql reads DIR, another process's Parquet export
                                      (workbench record --export-parquet DIR), read-only
          clean [--kind trades]       clean a recorded table into clean_<kind>; shows the report
          bars SYMBOL INTERVAL        update the stored bars and return them as a DataFrame
                                      [--exchange X]
          book SYMBOL                 live order book: depth chart, ladder, best bid/ask,
                                      spread, mid, book-valid flag [--feed NAME] [--depth N]
                                      [--levels N]
          price SYMBOL                live last price with SMA overlays and volume bars
                                      [--sma 20,50] [--window N] [--feed NAME]
          sql                         (cell magic) run the cell as SQL, return a DataFrame;
                                      -o VAR also stores it in VAR. Read-only by default:
                                      --write allows changes (DELETE, DROP, CREATE, SET...),
                                      --files allows files, network and extensions
                                      (read_csv, COPY, ATTACH, INSTALL/LOAD)

        Examples:
          %wb feed start sim BTC-USD ETH-USD
          %wb feed start sim BTC-USD --seed 7 --gap 0.01 --drop-every 5 --name faulty
          %wb feed start replay:data/session.duckdb --speed 20
          %wb book BTC-USD
          %wb price BTC-USD --sma 20,50
          %wb feeds
          %wb bars BTC-USD 1m
          %wb clean --kind trades
          %wb feed stop --all

          %%wb sql -p sym -o trades
          SELECT * FROM trades WHERE symbol = $sym ORDER BY ts DESC LIMIT 100

        The SQL is never formatted: $name is a DuckDB parameter whose value is the notebook
        variable passed with -p name (or -p name=variable). %wb arguments are taken
        literally: no $var or {expr} expansion.

        Settings (%config WorkbenchMagics lists them): db (data/workbench.duckdb, opened on
        first use; changing it closes the open file, and is refused while feeds run),
        pump_rate (10 Hz), status_rate (2 Hz), depth (20), levels (10), window (2000),
        sim_rate (200 msgs/s per symbol), sim_seed. %unload_ext workbench closes the widgets,
        stops feeds and simulators and closes the database; so does shutting the kernel down.
        """
        try:
            args = self._parse(line)
            if args.command == "sql":
                if cell is None:
                    raise UsageError(
                        "sql runs a cell: put %%wb sql on the first line of a cell and the "
                        "query below it"
                    )
                return self._sql(args, cell)
            if cell is not None:
                raise UsageError(
                    f"%%wb only runs sql; {args.command} is a line magic: %wb {args.command} ..."
                )
            handler: Handler = args.run
            return handler(args)
        except _HelpShown:
            return None
        except WorkbenchError as exc:
            raise UsageError(_one_line(str(exc))) from None

    def _parse(self, line: str) -> argparse.Namespace:
        try:
            words = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%wb: cannot split {line!r}: {exc}") from None
        return self._parser().parse_args(words)

    def _parser(self) -> _Parser:
        """Built per call so the defaults in --help show the current %config settings."""
        parser = _Parser(
            prog="%wb",
            description="Live market data into DuckDB from this notebook (details: %wb?).",
            allow_abbrev=False,
        )
        sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND", required=True)

        feed = sub.add_parser("feed", help="start or stop a feed", allow_abbrev=False)
        feed_sub = feed.add_subparsers(dest="action", metavar="ACTION", required=True)
        start = feed_sub.add_parser(
            "start",
            help="start recording a venue's trades and books",
            description="Start recording SYMBOLs from VENUE into the database in background "
            "threads; returns at once. Venue sim without --ws-url starts an embedded "
            f"simulator (rate {self.sim_rate:g} msgs/s per symbol, seed {self.sim_seed}).",
            allow_abbrev=False,
        )
        start.add_argument(
            "venue", help="sim, coinbase, binance, kraken, okx, ..., or replay:PATH (a recording)"
        )
        start.add_argument(
            "symbols", nargs="*", metavar="SYMBOL", help="(replay: default every one recorded)"
        )
        start.add_argument(
            "--redundant", action="store_true", help="a second connection, deduplicated"
        )
        start.add_argument("--ws-url", metavar="URL", help="override the venue's WebSocket URL")
        start.add_argument("--rest-url", metavar="URL", help="override the venue's REST URL")
        start.add_argument("--name", help="feed name (default venue:SYMBOL,...)")
        start.add_argument(
            "--depth", type=_positive_int, metavar="N",
            help="book levels per side: subscribed where the venue offers a choice (kraken, "
            "bybit, okx; other values are refused, listing the choices), and stored in snapshots "
            "(default: the venue's subscription, 20 stored)",
        )  # fmt: skip
        start.add_argument(
            "--speed", type=_positive_float, metavar="X",
            help="replay: X times the recorded pace (default: as fast as possible)",
        )  # fmt: skip
        add_market_options(start, rate=self.sim_rate, seed=self.sim_seed, embedded=True)
        start.set_defaults(run=self._feed_start)
        stop = feed_sub.add_parser(
            "stop",
            help="stop a feed and its embedded simulator",
            description="Stop feed NAME (optional when exactly one feed runs), or all.",
            allow_abbrev=False,
        )
        stop.add_argument("name", nargs="?", metavar="NAME")
        stop.add_argument("--all", action="store_true", help="stop every running feed")
        stop.set_defaults(run=self._feed_stop)

        sub.add_parser(
            "feeds", help="live status table of every feed", allow_abbrev=False
        ).set_defaults(run=self._feeds)

        attach = sub.add_parser(
            "attach",
            help="read another process's Parquet export in SQL cells",
            description="Serve SQL cells from DIR, the Parquet export of a recording another "
            "process owns (workbench record ... --export-parquet DIR): one view per table, "
            "read-only; each query sees what was exported so far.",
            allow_abbrev=False,
        )
        attach.add_argument("dir", metavar="DIR", type=Path, help="the export directory")
        attach.set_defaults(run=self._attach)

        clean = sub.add_parser(
            "clean",
            help="clean a recorded table; shows the report",
            description="Run the cleaning rules over a recorded table: writes clean_<kind>, "
            "clean_flags and clean_windows; the raw table stays untouched.",
            allow_abbrev=False,
        )
        clean.add_argument("--kind", choices=list(TABLE_SPECS), default="trades")
        clean.set_defaults(run=self._clean)

        bars = sub.add_parser(
            "bars",
            help="update the stored bars and return them",
            description="Bring the stored bars at INTERVAL up to date from the recorded "
            "trades (only the tail is recomputed) and return SYMBOL's bars as a DataFrame.",
            allow_abbrev=False,
        )
        bars.add_argument("symbol")
        bars.add_argument("interval", help="e.g. 1s, 1m, 5m, 1h, 1d")
        bars.add_argument("--exchange", help="only this venue's bars")
        bars.set_defaults(run=self._bars)

        book = sub.add_parser(
            "book",
            help="live order-book widget",
            description="A live order book of SYMBOL from the running feed that records it.",
            allow_abbrev=False,
        )
        book.add_argument("symbol")
        book.add_argument("--feed", metavar="NAME", help="the feed to read (if several record it)")
        book.add_argument(
            "--depth", type=_positive_int, default=self.depth, metavar="N",
            help="levels per side the depth chart shows (default %(default)s)",
        )  # fmt: skip
        book.add_argument(
            "--levels", type=_positive_int, default=self.levels, metavar="N",
            help="levels per side the ladder lists (default %(default)s)",
        )  # fmt: skip
        book.set_defaults(run=self._book)

        price = sub.add_parser(
            "price",
            help="live price widget",
            description="Last price of SYMBOL with SMA overlays and volume bars.",
            allow_abbrev=False,
        )
        price.add_argument("symbol")
        price.add_argument(
            "--sma", type=_sma_windows, default=(20, 50), metavar="N,M",
            help="SMA window lengths in trades (default 20,50)",
        )  # fmt: skip
        price.add_argument(
            "--window", type=_positive_int, default=self.window, metavar="N",
            help="trades kept on screen (default %(default)s)",
        )  # fmt: skip
        price.add_argument("--feed", metavar="NAME", help="the feed to read (if several record it)")
        price.set_defaults(run=self._price)

        sql = sub.add_parser(
            "sql",
            help="(cell magic) run the cell as SQL",
            description="Run the cell body as SQL on the notebook's cursor and return the "
            "last statement's result as a DataFrame. Read-only unless --write / --files: "
            "every statement is classified by DuckDB's parser before any runs. The SQL is "
            "never formatted: $NAME is a DuckDB parameter bound to a notebook variable with -p.",
            allow_abbrev=False,
        )
        sql.add_argument("-o", "--out", metavar="VAR", help="also store the DataFrame in VAR")
        sql.add_argument(
            WRITE, action="store_true",
            help="allow statements that change the database or the session (INSERT, DELETE, "
            "DROP, CREATE, SET, BEGIN, ...); without it the cell may only read",
        )  # fmt: skip
        sql.add_argument(
            FILES, action="store_true",
            help="allow files, network and extensions (read_csv, FROM 'file.parquet', COPY, "
            "EXPORT, ATTACH, INSTALL/LOAD); COPY ... FROM also needs --write",
        )  # fmt: skip
        sql.add_argument(
            "-p", "--param", action="append", default=[], metavar="NAME[=VARIABLE]",
            help="bind $NAME to the variable NAME (or VARIABLE); repeat for each parameter",
        )  # fmt: skip
        return parser

    # -- subcommands ----------------------------------------------------------------------
    def _feed_start(self, args: argparse.Namespace) -> None:
        if args.venue.startswith(REPLAY):
            self._replay_start(args)
            return
        if args.speed is not None:
            raise UsageError("--speed is for replay:PATH feeds")
        if not args.symbols:
            raise UsageError(
                f"name the symbols to record, e.g. %wb feed start {args.venue} BTC-USD"
            )
        venue = get_venue(args.venue).name
        sim = embedded_sim(args, venue, args.symbols, rate=self.sim_rate, seed=self.sim_seed)
        options: dict[str, Any] = {"redundant": args.redundant, "name": args.name}
        if args.depth is not None:
            options["depth"] = args.depth
        if sim is None:
            options.update(ws_url=args.ws_url, rest_url=args.rest_url)
        feed = self.session.start_feed(venue, args.symbols, sim=sim, **options)
        server = self.session.simulator(feed)
        source = f"an embedded simulator ({server.ws_url})" if server else feed.ws_url
        print(
            f"feed {feed.name!r} recording {', '.join(feed.symbols)} from {source} "
            f"into {self.session.workbench.store.path}"
        )

    def _replay_start(self, args: argparse.Namespace) -> None:
        path = args.venue.removeprefix(REPLAY)
        live_only = [
            flag
            for flag, given in (
                ("--redundant", args.redundant), ("--ws-url", args.ws_url),
                ("--rest-url", args.rest_url), ("--depth", args.depth),
            )
            if given
        ] + market_options_given(args)  # fmt: skip
        if live_only:
            raise UsageError(f"{', '.join(live_only)}: not for a replay feed")
        feed = self.session.workbench.start_replay_feed(
            path, speed=args.speed, symbols=args.symbols or None, name=args.name
        )
        pace = f"at {args.speed:g}x" if args.speed else "as fast as possible"
        print(
            f"feed {feed.name!r} replaying {', '.join(feed.symbols)} ({feed.exchange}) from "
            f"{feed.path} {pace} into {self.session.workbench.store.path}"
        )

    def _feed_stop(self, args: argparse.Namespace) -> None:
        running = [feed.name for feed in self.session.running_feeds()]
        if args.all:
            if args.name is not None:
                raise UsageError("give a feed NAME or --all, not both")
            names = running
        elif args.name is not None:
            names = [args.name]
        elif len(running) == 1:
            names = running
        elif running:
            listed = ", ".join(repr(name) for name in running)
            raise UsageError(f"several feeds run ({listed}): %wb feed stop NAME, or --all")
        else:
            raise UsageError("no feed is running")
        if not names:
            print("no feed was running")
        for name in names:
            status = self.session.stop_feed(name).status()
            print(f"stopped feed {name!r}: {status.messages} msgs, {status.trades} trades")

    def _attach(self, args: argparse.Namespace) -> None:
        rows = self.session.attach(args.dir)
        listed = ", ".join(f"{name} ({n:,} rows)" for name, n in rows.items())
        print(f"%%wb sql now reads {args.dir} (read-only): {listed}")

    def _feeds(self, args: argparse.Namespace) -> object:
        from workbench.notebook.widgets import FeedStatusWidget

        widget = FeedStatusWidget(self.session.workbench, rate=self.status_rate)
        return self.session.add_widget(widget)

    def _clean(self, args: argparse.Namespace) -> object:
        return self.session.workbench.clean(args.kind)

    def _bars(self, args: argparse.Namespace) -> pd.DataFrame:
        workbench = self.session.workbench
        workbench.update_bars(args.interval, symbol=args.symbol, exchange=args.exchange)
        return workbench.bars(args.symbol, args.interval, exchange=args.exchange)

    def _book(self, args: argparse.Namespace) -> object:
        from workbench.notebook.widgets import OrderBookWidget

        feed = self.session.feed_for(args.symbol, args.feed)
        widget = OrderBookWidget(
            feed, args.symbol, depth=args.depth, levels=args.levels, rate=self.pump_rate
        )
        return self.session.add_widget(widget)

    def _price(self, args: argparse.Namespace) -> object:
        from workbench.notebook.widgets import PriceWidget

        feed = self.session.feed_for(args.symbol, args.feed)
        widget = PriceWidget(
            feed, args.symbol, sma=args.sma, window=args.window, rate=self.pump_rate
        )
        return self.session.add_widget(widget)

    def _sql(self, args: argparse.Namespace, cell: str) -> pd.DataFrame:
        if args.out is not None and (keyword.iskeyword(args.out) or not args.out.isidentifier()):
            raise UsageError(f"-o takes a Python variable name, not {args.out!r}")
        params = self._params(args.param)
        if args.write and self.session.attached is not None:
            raise UsageError(
                f"%%wb sql reads an attached export ({self.session.attached}), which is "
                "read-only: --write is refused"
            )
        cursor = self.session.cursor
        try:
            statements = cursor.extract_statements(cell)
            if not statements:
                raise UsageError("the cell holds no SQL statement")
            wanted = set().union(*(statement.named_parameters for statement in statements))
            self._check_params(wanted, params)
            granted = {flag for flag, on in ((WRITE, args.write), (FILES, args.files)) if on}
            for statement in statements:  # all checked before any runs
                self._check_access(cursor, statement, granted)
            result: duckdb.DuckDBPyConnection | None = None
            for statement in statements:
                used = {name: params[name] for name in statement.named_parameters}
                result = cursor.execute(statement, used or None)
            assert result is not None
            frame = result.df()
        except _SQL_MISTAKES as exc:
            raise UsageError(_duckdb_message(exc)) from None
        if args.out is not None:
            assert self.shell is not None
            self.shell.user_ns[args.out] = frame
        return frame

    @staticmethod
    def _check_access(
        cursor: duckdb.DuckDBPyConnection, statement: duckdb.Statement, granted: set[str]
    ) -> None:
        need = sql_access.needs(cursor, statement)
        if need is None or need.flags <= granted:
            return
        flags = " ".join(sorted(need.flags - granted, reverse=True))
        first = _one_line(statement.query)[:60]
        raise UsageError(
            f"%%wb sql is read-only by default: {first!r}: {need.why}; "
            f"add {flags} (%%wb sql {flags}) to run it"
        )

    def _params(self, specs: list[str]) -> dict[str, Any]:
        """``-p NAME[=VARIABLE]`` → {NAME: value of VARIABLE (default NAME) in the notebook}."""
        assert self.shell is not None
        namespace = self.shell.user_ns
        params: dict[str, Any] = {}
        for spec in specs:
            name, _, variable = spec.partition("=")
            variable = variable or name
            if not _PARAM_NAME.fullmatch(name):
                raise UsageError(f"-p {spec}: a parameter name is letters, digits and _")
            if name in params:
                raise UsageError(f"-p {name} is given twice")
            if variable not in namespace:
                raise UsageError(f"-p {spec}: no variable named {variable!r} in the notebook")
            params[name] = namespace[variable]
        return params

    @staticmethod
    def _check_params(wanted: set[str], params: dict[str, Any]) -> None:
        if any(name.isdigit() for name in wanted):
            raise UsageError("use named parameters ($name, bound with -p name), not ? or $1")
        missing = sorted(wanted - params.keys())
        if missing:
            dollars = ", ".join(f"${name}" for name in missing)
            flags = " ".join(f"-p {name}" for name in missing)
            raise UsageError(f"the SQL uses {dollars} but no value was bound: add {flags}")
        unused = sorted(params.keys() - wanted)
        if unused:
            names = ", ".join(f"${name}" for name in unused)
            raise UsageError(f"-p binds {names}, which the SQL does not use")
