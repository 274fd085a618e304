"""The %wb magics through a real IPython shell, real embedded simulators and real DuckDB files."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from tests.e2e import wait_for
from tests.helpers.replay_server import ReplayServer, Script
from tests.test_record_kraken import Kraken
from tests.test_record_kraken import opening as kraken_opening
from tests.test_store_store import T0
from tests.test_store_store import trades as trade_rows
from tests.venue_e2e import serve
from workbench import load_ipython_extension, unload_ipython_extension
from workbench.core.clean import CleanReport
from workbench.notebook.extension import loaded_magics
from workbench.notebook.magics import WorkbenchMagics
from workbench.notebook.widgets import FeedStatusWidget, OrderBookWidget, PriceWidget
from workbench.sim import SimConfig, SimServer
from workbench.store import TABLES, Store, export_parquet

SYM = "BTC-USD"
ETH = "ETH-USD"


def fresh_shell() -> InteractiveShell:
    """The testing shell with the extension loaded and no %config left by earlier tests
    (%config merges into the shell's config, which outlives an unload)."""
    ip = InteractiveShell.instance()
    ip.config.pop("WorkbenchMagics", None)
    load_ipython_extension(ip)
    return ip


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """The testing shell with the extension loaded on a database in ``tmp_path``."""
    monkeypatch.chdir(tmp_path)  # the default db path is relative to the working directory
    ip = fresh_shell()
    ip.run_line_magic("config", f"WorkbenchMagics.db = {str(tmp_path / 'wb.duckdb')!r}")
    ip.run_line_magic("config", "WorkbenchMagics.sim_rate = 400.0")
    try:
        yield ip
    finally:
        unload_ipython_extension(ip)


def magics(ip: InteractiveShell) -> WorkbenchMagics:
    found = loaded_magics(ip)
    assert found is not None
    return found


def wb(ip: InteractiveShell, line: str) -> object:
    return ip.run_line_magic("wb", line)


def sql(ip: InteractiveShell, line: str, body: str) -> pd.DataFrame:
    frame = ip.run_cell_magic("wb", line, body)
    assert isinstance(frame, pd.DataFrame)
    return frame


def trades(ip: InteractiveShell, symbol: str = SYM) -> int:
    ip.user_ns["_sym"] = symbol
    frame = sql(ip, "sql -p sym=_sym", "SELECT count(*) AS n FROM trades WHERE symbol = $sym")
    return int(frame["n"].iloc[0])


def usage_error(ip: InteractiveShell, line: str, cell: str | None = None) -> str:
    """The one-line message of the UsageError the magic raises."""
    with pytest.raises(UsageError) as info:
        if cell is None:
            wb(ip, line)
        else:
            ip.run_cell_magic("wb", line, cell)
    message = str(info.value)
    assert message and "\n" not in message
    return message


def workbench_threads() -> list[str]:
    return [
        t.name for t in threading.enumerate() if t.name.startswith(("wb-", "workbench-", "sim-"))
    ]


def simulator_threads() -> set[threading.Thread]:
    """The threads every running simulator has (sessions and senders come and go)."""
    return {t for t in threading.enumerate() if t.name in ("sim-acceptor", "sim-clock")}


# -- feeds ---------------------------------------------------------------------------------


def test_feed_start_sim_runs_an_embedded_simulator_and_records(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    assert wb(shell, f"feed start sim {SYM} {ETH}") is None
    out = capsys.readouterr().out
    assert out.count("\n") == 1  # one confirmation line, nothing streamed after it
    assert "'sim:BTC-USD,ETH-USD'" in out and "embedded simulator (ws://127.0.0.1:" in out
    (feed,) = magics(shell).session.running_feeds()
    assert feed.symbols == [SYM, ETH]
    assert magics(shell).session.simulator(feed) is not None
    assert wait_for(lambda: trades(shell, SYM) > 0 and trades(shell, ETH) > 0, 15)


def test_feed_start_sim_passes_the_simulator_flags_to_the_embedded_simulator(
    shell: InteractiveShell,
) -> None:
    wb(shell, f"feed start sim {SYM} --seed 5 --rate 300 --gap 0.05 --drop-every 30")
    (feed,) = magics(shell).session.running_feeds()
    sim = magics(shell).session.simulator(feed)
    assert sim is not None
    assert (sim.config.seed, sim.config.rate, sim.config.gap) == (5, 300.0, 0.05)
    assert (sim.config.drop_every, sim.config.symbols) == (30.0, (SYM,))
    assert wait_for(lambda: feed.status().gaps > 0, 15)  # the injected gaps reach the feed


def test_feed_start_sim_takes_other_symbols_only_when_sim_symbols_lists_them(
    shell: InteractiveShell,
) -> None:
    message = usage_error(shell, "feed start sim NOPE-USD")
    assert message == (
        "the embedded simulator has no symbol NOPE-USD: it knows BTC-USD, ETH-USD "
        "(--sim-symbols BTC-USD,ETH-USD,NOPE-USD adds others)"
    )
    assert magics(shell).session.running_feeds() == [] and simulator_threads() == set()
    wb(shell, "feed start sim NOPE-USD --sim-symbols NOPE-USD")
    assert [feed.symbols for feed in magics(shell).session.running_feeds()] == [["NOPE-USD"]]
    assert wait_for(lambda: trades(shell, "NOPE-USD") > 0, 15)


def test_feed_start_with_ws_url_records_that_server_and_starts_no_simulator(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    with SimServer(SimConfig(port=0, seed=3, symbols=(SYM,), rate=400)) as server:
        simulators = simulator_threads()
        wb(
            shell,
            f"feed start sim {SYM} --ws-url {server.ws_url} --rest-url {server.rest_url} "
            "--name ext --depth 5 --redundant",
        )
        assert server.ws_url in capsys.readouterr().out
        feed = magics(shell).session.workbench.feed("ext")
        assert feed.redundant and feed.depth == 5
        assert magics(shell).session.simulator(feed) is None
        # no embedded simulator: the only new sim- threads serve the test's own server
        assert simulator_threads() == simulators
        assert wait_for(lambda: trades(shell) > 0, 15)
        wb(shell, "feed stop ext")
    assert not feed.threads_alive()


def test_feed_stop_without_a_name_stops_the_only_feed_and_its_simulator(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    wb(shell, f"feed start sim {SYM}")
    (feed,) = magics(shell).session.running_feeds()
    sim = magics(shell).session.simulator(feed)
    assert sim is not None
    assert wait_for(lambda: feed.status().trades > 0, 15)
    capsys.readouterr()
    wb(shell, "feed stop")
    line = capsys.readouterr().out
    assert line.startswith("stopped feed 'sim:BTC-USD': ") and line.count("\n") == 1
    assert not feed.running and feed.threads_alive() == []
    assert magics(shell).session.simulator(feed) is None
    assert sim.wait_closed(0)  # stop() ran: the simulator's threads are joined
    assert usage_error(shell, "feed stop") == "no feed is running"


def test_feed_stop_needs_a_name_when_several_run(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    wb(shell, f"feed start sim {SYM} --name a")
    wb(shell, f"feed start sim {SYM} --name b")
    message = usage_error(shell, "feed stop")
    assert "'a'" in message and "'b'" in message and "--all" in message
    assert "not both" in usage_error(shell, "feed stop a --all")
    assert "no feed named 'c'" in usage_error(shell, "feed stop c")
    wb(shell, "feed stop b")
    assert [f.name for f in magics(shell).session.running_feeds()] == ["a"]
    capsys.readouterr()
    wb(shell, "feed stop --all")
    assert capsys.readouterr().out.startswith("stopped feed 'a'")
    assert magics(shell).session.running_feeds() == []
    wb(shell, "feed stop --all")
    assert capsys.readouterr().out == "no feed was running\n"


def test_a_second_feed_with_a_taken_name_is_refused_and_its_simulator_stopped(
    shell: InteractiveShell,
) -> None:
    wb(shell, f"feed start sim {SYM}")
    simulators = simulator_threads()
    assert "already running" in usage_error(shell, f"feed start sim {SYM}")
    assert simulator_threads() == simulators


def test_feeds_shows_a_live_status_widget(shell: InteractiveShell) -> None:
    wb(shell, f"feed start sim {SYM}")
    widget = wb(shell, "feeds")
    assert isinstance(widget, FeedStatusWidget)
    assert widget.pump.alive and widget.pump.rate == magics(shell).status_rate
    assert wait_for(lambda: "sim:BTC-USD" in widget.table.value, 10)


# -- data ----------------------------------------------------------------------------------


def test_clean_returns_the_report_of_the_recorded_trades(shell: InteractiveShell) -> None:
    wb(shell, f"feed start sim {SYM}")
    assert wait_for(lambda: trades(shell) > 0, 15)
    wb(shell, "feed stop")
    report = wb(shell, "clean")
    assert isinstance(report, CleanReport)
    assert report.kind == "trades" and report.rows_in == trades(shell)
    assert "clean trades" in report._repr_markdown_()
    stored = sql(shell, "sql", "SELECT count(*) AS n FROM clean_trades")
    assert int(stored["n"].iloc[0]) == report.rows_out


def test_bars_updates_and_returns_the_symbols_bars(shell: InteractiveShell) -> None:
    wb(shell, f"feed start sim {SYM} {ETH}")
    assert wait_for(lambda: trades(shell) > 0, 15)
    wb(shell, "feed stop")
    frame = wb(shell, f"bars {SYM} 1s")
    assert isinstance(frame, pd.DataFrame) and len(frame) > 0
    assert set(frame["symbol"]) == {SYM} and set(frame["interval"]) == {"1s"}
    assert int(frame["trades"].sum()) == trades(shell)
    same = wb(shell, f"bars {SYM} 1s --exchange sim")
    assert isinstance(same, pd.DataFrame) and len(same) == len(frame)
    assert "DOGE-USD" in usage_error(shell, "bars DOGE-USD 1m")
    assert "available" in usage_error(shell, f"bars {SYM} 1m --exchange kraken")


# -- widgets -------------------------------------------------------------------------------


def test_book_and_price_widgets_follow_the_feed_that_records_the_symbol(
    shell: InteractiveShell,
) -> None:
    shell.run_line_magic("config", "WorkbenchMagics.pump_rate = 5.0")
    wb(shell, f"feed start sim {SYM} {ETH}")
    (feed,) = magics(shell).session.running_feeds()
    book = wb(shell, f"book {SYM} --depth 7 --levels 4")
    assert isinstance(book, OrderBookWidget)
    assert book.feed is feed and book.symbol == SYM and (book.depth, book.levels) == (7, 4)
    assert book.pump.alive and book.pump.rate == 5.0
    price = wb(shell, f"price {ETH} --sma 5,10 --window 300")
    assert isinstance(price, PriceWidget)
    assert price.feed is feed and price.symbol == ETH
    assert price.sma == (5, 10) and price.window == 300
    default = wb(shell, f"price {SYM}")
    assert isinstance(default, PriceWidget)
    assert default.sma == (20, 50) and default.window == magics(shell).window == 2000
    assert isinstance(wb(shell, f"book {SYM}"), OrderBookWidget)


def test_widget_settings_come_from_config(shell: InteractiveShell) -> None:
    shell.run_line_magic("config", "WorkbenchMagics.depth = 3")
    shell.run_line_magic("config", "WorkbenchMagics.levels = 5")
    shell.run_line_magic("config", "WorkbenchMagics.window = 50")
    wb(shell, f"feed start sim {SYM}")
    book = wb(shell, f"book {SYM}")
    price = wb(shell, f"price {SYM}")
    assert isinstance(book, OrderBookWidget) and (book.depth, book.levels) == (3, 5)
    assert isinstance(price, PriceWidget) and price.window == 50


def test_book_needs_a_running_feed_and_picks_one_when_several_record_it(
    shell: InteractiveShell,
) -> None:
    message = usage_error(shell, f"book {SYM}")
    assert "no running feed records 'BTC-USD'" in message and "%wb feed start sim" in message
    wb(shell, f"feed start sim {SYM} --name one")
    wb(shell, f"feed start sim {SYM} {ETH} --name two")
    message = usage_error(shell, f"price {SYM}")
    assert "several feeds" in message and "'one'" in message and "--feed" in message
    book = wb(shell, f"book {SYM} --feed two")
    assert isinstance(book, OrderBookWidget) and book.feed.name == "two"
    price = wb(shell, f"price {ETH}")  # only "two" records ETH-USD
    assert isinstance(price, PriceWidget) and price.feed.name == "two"
    assert "does not record 'ETH-USD'" in usage_error(shell, f"book {ETH} --feed one")
    assert "no feed named 'three'" in usage_error(shell, f"book {SYM} --feed three")
    message = usage_error(shell, "book SOL-USD")
    assert "BTC-USD, ETH-USD" in message  # says what the running feeds do record


# -- SQL -----------------------------------------------------------------------------------


def test_sql_returns_a_dataframe_and_stores_it_with_o(shell: InteractiveShell) -> None:
    frame = sql(shell, "sql -o result", "SELECT 42 AS answer, 'x' AS letter")
    assert frame.to_dict("records") == [{"answer": 42, "letter": "x"}]
    assert shell.user_ns["result"] is frame


def test_sql_binds_notebook_values_as_parameters_never_as_text(shell: InteractiveShell) -> None:
    evil = "x'; DROP TABLE trades; --"
    shell.user_ns.update(evil=evil, limit_value=3, name="ignored")
    frame = sql(
        shell,
        "sql -p evil -p n=limit_value",
        "SELECT $evil AS v, $n + 1 AS n, (SELECT count(*) FROM trades) AS rows",
    )
    assert frame.to_dict("records") == [{"v": evil, "n": 4, "rows": 0}]
    # quotes inside the value stay data: the table is still there and the value round-trips
    sql(shell, "sql --write", "CREATE TEMP TABLE notes (text VARCHAR)")
    sql(shell, "sql --write -p evil", "INSERT INTO notes VALUES ($evil)")
    assert sql(shell, "sql", "SELECT text FROM notes")["text"].tolist() == [evil]
    assert sql(shell, "sql", "SELECT count(*) AS n FROM trades")["n"].tolist() == [0]
    # no $ or {} expansion in the SQL text, nor in the magic line
    literal = sql(shell, "sql", "SELECT '{evil}' AS braces, '$evil' AS dollar")
    assert literal.to_dict("records") == [{"braces": "{evil}", "dollar": "$evil"}]
    assert "{name}" in usage_error(shell, "sql -o {name}", "SELECT 1")


def test_sql_runs_every_statement_on_one_cursor_and_returns_the_last(
    shell: InteractiveShell,
) -> None:
    shell.user_ns["k"] = 7
    frame = sql(
        shell,
        "sql --write -p k",
        "CREATE TEMP TABLE t AS SELECT $k AS v;\n"
        "INSERT INTO t VALUES (8);\n"
        "SELECT sum(v) AS s FROM t",
    )
    assert frame["s"].tolist() == [15]
    assert sql(shell, "sql", "SELECT count(*) AS n FROM t")["n"].tolist() == [2]  # next cell


def test_sql_sees_what_the_feeds_recorded(shell: InteractiveShell) -> None:
    wb(shell, f"feed start sim {SYM}")
    assert wait_for(lambda: trades(shell) > 0, 15)
    shell.user_ns["sym"] = SYM
    frame = sql(
        shell, "sql -p sym", "SELECT DISTINCT exchange, symbol FROM trades WHERE symbol = $sym"
    )
    assert frame.to_dict("records") == [{"exchange": "sim", "symbol": SYM}]


def test_feed_start_depth_selects_the_venues_book_subscription(
    shell: InteractiveShell, servers: list[ReplayServer]
) -> None:
    server = serve(servers, Script(kraken_opening(Kraken(100))))
    wb(shell, f"feed start kraken BTC/USD --ws-url {server.ws_url} --depth 100 --name k")
    feed = magics(shell).session.workbench.feed("k")
    assert wait_for(lambda: feed.status().book_valid["BTC/USD"], 15)
    assert json.loads(server.received[1])["params"]["depth"] == 100
    assert feed.venue_cls.book_depth == feed.depth == 100 and feed.status().checksums == 0
    wb(shell, "feed stop k")


REFUSED = [
    ("DROP TABLE trades", "--write", "DROP changes the database"),
    ("DELETE FROM trades", "--write", "DELETE changes the database"),
    ("SELECT 1; DELETE FROM trades", "--write", "DELETE changes the database"),
    ("EXPLAIN ANALYZE DELETE FROM trades", "--write", "DELETE changes the database"),
    ("SET threads = 1", "--write", "SET changes the database or the session"),
    ("PRAGMA threads = 1", "--write", "SET changes the database or the session"),
    ("COPY trades TO 'out.csv'", "--files", "COPY reaches files"),
    ("COPY trades FROM 'in.csv'", "--write --files", "COPY reaches files"),
    ("INSTALL httpfs", "--files", "INSTALL/LOAD of an extension"),
    ("LOAD httpfs", "--files", "INSTALL/LOAD of an extension"),
    ("ATTACH 'other.duckdb' AS other", "--files", "ATTACH reaches files"),
    ("SELECT * FROM read_csv('/etc/passwd')", "--files", "read_csv() may read files"),
    ("SELECT count(*) FROM (SELECT * FROM read_text('/etc/hosts'))", "--files", "read_text()"),
    ("FROM '/etc/passwd'", "--files", "FROM '/etc/passwd' reads a file"),
    ("DESCRIBE FROM 'x.parquet'", "--files", "reads a file"),
    ("EXPLAIN SELECT * FROM read_parquet('x.parquet')", "--files", "read_parquet()"),
    ("SELECT * FROM query('SELECT 1')", "--files", "query() may read"),
]


@pytest.mark.parametrize(("body", "flags", "why"), REFUSED)
def test_sql_is_read_only_unless_asked_and_names_the_flag(
    shell: InteractiveShell, body: str, flags: str, why: str
) -> None:
    sql(shell, "sql", "SELECT 1")  # opens the store: every workbench table exists
    before = sql(shell, "sql", "SELECT table_name FROM duckdb_tables() ORDER BY 1")
    message = usage_error(shell, "sql", body)
    assert "read-only by default" in message and why in message
    assert f"add {flags} (%%wb sql {flags})" in message
    after = sql(shell, "sql", "SELECT table_name FROM duckdb_tables() ORDER BY 1")
    assert after.equals(before)  # nothing ran, not even the read before the DELETE
    assert sql(shell, "sql", "SELECT current_setting('threads') AS t")["t"][0] > 1


READS = [
    "SELECT count(*) FROM trades",
    "WITH t AS (SELECT * FROM trades) SELECT count(*) FROM t",
    "DESCRIBE trades",
    "SHOW TABLES",
    "SUMMARIZE trades",
    "EXPLAIN SELECT * FROM trades",
    "PRAGMA table_info('trades')",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM range(3)",
    "FROM main.trades",
]


@pytest.mark.parametrize("body", READS)
def test_reads_of_the_database_need_no_flag(shell: InteractiveShell, body: str) -> None:
    assert isinstance(sql(shell, "sql", body), pd.DataFrame)


def test_write_and_files_run_what_they_allow(shell: InteractiveShell, tmp_path: Path) -> None:
    out = tmp_path / "quality.csv"
    shell.user_ns["out"] = str(out)
    sql(shell, "sql --write", "CREATE TABLE notes (n INTEGER); INSERT INTO notes VALUES (1), (2)")
    sql(shell, "sql --files -p out", "COPY notes TO $out (HEADER)")
    assert out.read_text().split() == ["n", "1", "2"]
    frame = sql(shell, "sql --files -p out", "SELECT sum(n) AS s FROM read_csv($out)")
    assert frame["s"].tolist() == [3]
    assert "--write" in usage_error(shell, "sql --files -p out", "COPY notes FROM $out")
    sql(shell, "sql --write --files -p out", "COPY notes FROM $out")
    assert sql(shell, "sql", "SELECT count(*) AS c FROM notes")["c"].tolist() == [4]
    sql(shell, "sql --write", "DELETE FROM notes WHERE n = 1")
    assert sql(shell, "sql", "SELECT count(*) AS c FROM notes")["c"].tolist() == [2]
    sql(shell, "sql --write", "DROP TABLE notes")
    assert "notes" not in sql(shell, "sql", "SHOW TABLES")["name"].tolist()


# -- mistakes ------------------------------------------------------------------------------

MISTAKES = [
    ("%wb", "required: SUBCOMMAND"),
    ("%wb nope", "invalid choice: 'nope'"),
    ("%wb feed", "required: ACTION"),
    ("%wb feed start", "required: venue, SYMBOL"),
    ("%wb feed start nyse BTC-USD", "unknown venue 'nyse'; known venues: binance"),
    ("%wb feed start sim 'BTC USD' --sim-symbols 'BTC USD'", "bad symbol 'BTC USD'"),
    ("%wb feed start sim BTC-USD --rest-url http://127.0.0.1:1", "--rest-url needs --ws-url"),
    ("%wb feed start sim BTC-USD --depth 0", "--depth: expected a whole number of at least 1"),
    (
        "%wb feed start kraken BTC/USD --depth 30",
        "kraken offers book depths 10, 25, 100, 500, 1000",
    ),
    ("%wb book BTC-USD --levels 0", "--levels: expected a whole number of at least 1"),
    ("%wb feed start sim BTC-USD --bogus", "unrecognized arguments: --bogus"),
    ("%wb feed start sim BTC-USD --ws-url http://127.0.0.1:1", "ws_url must start with ws://"),
    ("%wb feed start sim NOPE-USD", "no symbol NOPE-USD: it knows BTC-USD, ETH-USD"),
    ("%wb feed start sim BTC-USD --rate 0", "rate must be above 0"),
    ("%wb feed start sim BTC-USD --gap 2", "gap is a probability per message"),
    (
        "%wb feed start sim BTC-USD --seed 1 --ws-url ws://127.0.0.1:1/ws",
        "--seed: only for the embedded simulator",
    ),
    ("%wb feed start coinbase BTC-USD --gap 0.1", "--gap: only for the embedded simulator"),
    ("%wb feed stop", "no feed is running"),
    ("%wb feed stop nope", "no feed named 'nope'"),
    ("%wb feeds extra", "unrecognized arguments: extra"),
    ("%wb book BTC-USD", "no running feed records 'BTC-USD'"),
    ("%wb price BTC-USD --sma 20,x", "--sma: expected comma-separated window lengths"),
    ("%wb price BTC-USD --window 0", "--window: expected a whole number"),
    ("%wb bars BTC-USD 7m", "bad interval '7m'"),
    ("%wb bars BTC-USD", "required: interval"),
    ("%wb bars BTC-USD 1m", "no trades for symbol=BTC-USD"),
    ("%wb clean --kind nope", "--kind: invalid choice: 'nope'"),
    ("%wb book 'BTC-USD", "No closing quotation"),
    ("%wb book BTC-USD --dep 3", "unrecognized arguments: --dep 3"),  # no abbreviations
    ("%wb sql", "put %%wb sql on the first line of a cell"),
    ("%%wb feeds\nSELECT 1", "%%wb only runs sql"),
    ("%%wb sql\n", "cell body is empty"),
    ("%%wb sql\n-- a comment only", "no SQL statement"),
    ("%%wb sql\nSELEC 1", 'Parser Error: syntax error at or near "SELEC"'),
    ("%%wb sql\nSELECT * FROM nope", "Catalog Error: Table with name nope does not exist!"),
    ("%%wb sql\nSELECT nope FROM trades", 'Binder Error: Referenced column "nope" not found'),
    ("%%wb sql\nSELECT 'a'::INTEGER", "Conversion Error: Could not convert string 'a'"),
    ("%%wb sql\nSELECT $x, $y", "uses $x, $y but no value was bound: add -p x -p y"),
    ("%%wb sql -p x\nSELECT 1", "-p binds $x, which the SQL does not use"),
    ("%%wb sql -p x -p x\nSELECT $x", "-p x is given twice"),
    ("%%wb sql -p q=missing\nSELECT $q", "no variable named 'missing'"),
    ("%%wb sql -p 'bad name'\nSELECT 1", "a parameter name is letters, digits and _"),
    ("%%wb sql\nSELECT ?", "use named parameters"),
    ("%%wb sql -o 1st\nSELECT 1", "-o takes a Python variable name, not '1st'"),
    ("%%wb sql -o class\nSELECT 1", "-o takes a Python variable name"),
]


@pytest.mark.parametrize(("cell", "expected"), MISTAKES, ids=[c for c, _ in MISTAKES])
def test_a_mistake_shows_one_usage_error_line_and_no_traceback(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], cell: str, expected: str
) -> None:
    shell.user_ns["x"] = 1
    result = shell.run_cell(cell)
    assert isinstance(result.error_in_exec or result.error_before_exec, UsageError)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("UsageError: ") and captured.err.count("\n") == 1
    assert expected in captured.err, captured.err
    assert "Traceback" not in captured.err


# -- help ----------------------------------------------------------------------------------


def test_help_lists_every_subcommand_with_examples(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_cell("%wb?")
    text = capsys.readouterr().out
    for entry in (
        "feed start VENUE SYMBOL...",
        "feed stop [NAME | --all]",
        "feeds ",
        "clean [--kind trades]",
        "bars SYMBOL INTERVAL",
        "book SYMBOL",
        "price SYMBOL",
        "%%wb sql [-o VAR] [-p NAME[=VARIABLE] ...] [--write] [--files]",
        "%wb feed start sim BTC-USD ETH-USD",
        "%wb price BTC-USD --sma 20,50",
        "%config WorkbenchMagics",
    ):
        assert entry in text, entry
    subcommands = magics(shell)._parser()._subparsers
    assert subcommands is not None
    (action,) = subcommands._group_actions
    assert action.choices is not None
    for name in action.choices:
        assert f"\n  {name} " in text, name  # every parser subcommand has a help line


@pytest.mark.parametrize(
    ("line", "usage"),
    [
        ("--help", "usage: %wb [-h] SUBCOMMAND"),
        ("feed start --help", "usage: %wb feed start [-h] [--redundant]"),
        ("feed stop -h", "usage: %wb feed stop [-h] [--all] [NAME]"),
        ("book --help", "usage: %wb book [-h] [--feed NAME] [--depth N] [--levels N] symbol"),
        ("price --help", "--sma N,M"),
        ("bars --help", "usage: %wb bars [-h] [--exchange EXCHANGE] symbol interval"),
        ("clean --help", "{trades,"),
        ("sql --help", "-p NAME[=VARIABLE]"),
    ],
)
def test_subcommand_help_prints_usage_and_returns(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str], line: str, usage: str
) -> None:
    assert wb(shell, line) is None  # no SystemExit
    captured = capsys.readouterr()
    assert usage in captured.out and captured.err == ""
    assert not magics(shell).session.is_open  # help opens nothing


def test_help_shows_the_current_settings(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_line_magic("config", "WorkbenchMagics.depth = 9")
    shell.run_line_magic("config", "WorkbenchMagics.levels = 6")
    wb(shell, "book --help")
    out = capsys.readouterr().out
    assert "the depth chart shows (default 9)" in out and "the ladder lists (default 6)" in out


# -- settings ------------------------------------------------------------------------------


def test_config_lists_the_settings(
    shell: InteractiveShell, capsys: pytest.CaptureFixture[str]
) -> None:
    shell.run_line_magic("config", "WorkbenchMagics")
    text = capsys.readouterr().out
    traits = ("db", "pump_rate", "status_rate", "depth", "levels", "window", "sim_rate", "sim_seed")
    for trait in traits:
        assert f"WorkbenchMagics.{trait}=" in text, trait
    assert magics(shell).pump_rate == 10.0 and magics(shell).depth == 20


def test_the_database_opens_on_first_use_at_the_configured_path(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    session = magics(shell).session
    assert not session.is_open and not (tmp_path / "wb.duckdb").exists()
    sql(shell, "sql", "SELECT 1")
    assert session.workbench.store.path == (tmp_path / "wb.duckdb").resolve()


def test_the_default_database_is_data_workbench_duckdb_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    ip = fresh_shell()
    try:
        sql(ip, "sql", "SELECT 1")
        path = magics(ip).session.workbench.store.path
        assert path == (tmp_path / "data" / "workbench.duckdb").resolve()
    finally:
        unload_ipython_extension(ip)


def test_db_cannot_change_while_a_feed_records_but_switches_once_stopped(
    shell: InteractiveShell, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wb(shell, f"feed start sim {SYM}")
    other = tmp_path / "other.duckdb"
    with caplog.at_level(logging.ERROR):
        shell.run_line_magic("config", f"WorkbenchMagics.db = {str(other)!r}")
    assert (
        "cannot change while feeds record" in caplog.text and "%wb feed stop --all" in caplog.text
    )
    assert magics(shell).db == str(tmp_path / "wb.duckdb")  # refused: the setting kept its value
    assert magics(shell).session.workbench.store.path == (tmp_path / "wb.duckdb").resolve()
    wb(shell, "feed stop")
    shell.run_line_magic("config", f"WorkbenchMagics.db = {str(other)!r}")
    assert not magics(shell).session.is_open  # the old file was closed
    sql(shell, "sql --write", "CREATE TABLE marker AS SELECT 1 AS x")
    assert magics(shell).session.workbench.store.path == other.resolve()


def test_rates_out_of_range_are_refused(
    shell: InteractiveShell, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR):
        shell.run_line_magic("config", "WorkbenchMagics.pump_rate = 500.0")
    assert "pump_rate" in caplog.text
    assert magics(shell).pump_rate == 10.0


def test_a_writer_failure_caused_by_a_cell_shows_in_the_feed_status(
    shell: InteractiveShell,
) -> None:
    wb(shell, f"feed start sim {SYM}")
    assert wait_for(lambda: trades(shell) > 0, 15)
    sql(shell, "sql --write", "DROP TABLE book_deltas")
    session = magics(shell).session
    assert wait_for(lambda: session.workbench.status()[0].failed is not None, 10)
    failed = session.workbench.status()[0].failed
    assert failed is not None and "cannot write book_deltas" in failed
    assert not session.running_feeds()
    sql(shell, "sql --write", TABLES["book_deltas"].ddl)  # back: the held rows are stored
    session.workbench.flush()
    assert sql(shell, "sql", "SELECT count(*) AS n FROM book_deltas")["n"][0] > 0


def test_attach_reads_another_processs_export_read_only(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    lake = tmp_path / "lake"
    assert "holds no Parquet export" in usage_error(shell, f"attach {lake}")
    with Store.open(tmp_path / "recorder.duckdb") as recorder:  # the owning process's store
        recorder.writer.submit("trades", trade_rows([("BTC-USD", T0, "1"), ("BTC-USD", T0, "2")]))
        export_parquet(recorder, lake)
        wb(shell, f"attach {lake}")
        assert trades(shell) == 2
        recorder.writer.submit("trades", trade_rows([("BTC-USD", T0, "3")]))
        export_parquet(recorder, lake)
        assert trades(shell) == 3  # each query sees what was exported so far
    assert "read-only: --write is refused" in usage_error(
        shell, "sql --write", "DELETE FROM trades"
    )
    assert "--write" in usage_error(shell, "sql", "DROP VIEW trades")
    assert not magics(shell).session.is_open  # the kernel never opened a database file


def test_attach_is_refused_in_a_kernel_with_its_own_database_open(
    shell: InteractiveShell, tmp_path: Path
) -> None:
    sql(shell, "sql", "SELECT 1 AS one")  # opens the kernel's own database
    message = usage_error(shell, f"attach {tmp_path}")
    assert "attach in a kernel that has not opened a database" in message
