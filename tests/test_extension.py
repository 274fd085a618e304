"""%load_ext, %unload_ext and kernel shutdown: no thread keeps running, the database is released."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from jupyter_client.blocking.client import BlockingKernelClient
from jupyter_client.manager import KernelManager

import workbench
from tests.e2e import query, wait_for
from workbench.notebook.extension import loaded_magics
from workbench.notebook.magics import WorkbenchMagics

SYM = "BTC-USD"
THREAD_PREFIXES = ("wb-", "workbench-", "sim-")


@pytest.fixture
def ip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[InteractiveShell]:
    """The testing shell, configured for a database in ``tmp_path``; unloaded afterwards."""
    monkeypatch.chdir(tmp_path)
    shell = InteractiveShell.instance()
    shell.config.pop("WorkbenchMagics", None)  # %config from earlier tests lives here
    try:
        yield shell
    finally:
        shell.run_line_magic("unload_ext", "workbench")  # forgets it in IPython's loaded set
        workbench.unload_ipython_extension(shell)  # in case a test loaded it directly


def registered(shell: InteractiveShell) -> WorkbenchMagics:
    magics = loaded_magics(shell)
    assert magics is not None
    return magics


def workbench_threads() -> list[str]:
    return sorted(t.name for t in threading.enumerate() if t.name.startswith(THREAD_PREFIXES))


def count_in_another_process(db: Path, sql: str) -> int:
    """Open ``db`` read-write from a new process: only possible once this one let go of it."""
    code = (
        "import duckdb, sys; print(duckdb.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(db), sql], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


def test_loading_twice_keeps_one_registration_and_the_same_session(
    ip: InteractiveShell, tmp_path: Path
) -> None:
    ip.run_line_magic("load_ext", "workbench")
    magics = registered(ip)
    ip.run_line_magic("config", f"WorkbenchMagics.db = {str(tmp_path / 'a.duckdb')!r}")
    ip.run_cell_magic("wb", "sql --write", "CREATE TABLE kept AS SELECT 1 AS x")
    workbench.load_ipython_extension(ip)  # e.g. a second %load_ext under another module name
    ip.run_line_magic("load_ext", "workbench")
    assert registered(ip) is magics
    assert ip.configurables.count(magics) == 1  # type: ignore[arg-type]
    assert ip.magics_manager.magics["line"]["wb"] == magics.wb
    assert magics.session.is_open
    frame = ip.run_cell_magic("wb", "sql", "SELECT x FROM kept")  # same cursor, same file
    assert frame["x"].tolist() == [1]


def test_unload_closes_widgets_stops_feeds_and_simulators_and_releases_the_database(
    ip: InteractiveShell, tmp_path: Path
) -> None:
    before = workbench_threads()
    db = tmp_path / "unload.duckdb"
    ip.run_line_magic("load_ext", "workbench")
    magics = registered(ip)
    ip.run_line_magic("config", f"WorkbenchMagics.db = {str(db)!r}")
    ip.run_line_magic("config", "WorkbenchMagics.sim_rate = 400.0")
    ip.run_line_magic("wb", f"feed start sim {SYM} --name one")
    ip.run_line_magic("wb", f"feed start sim {SYM} ETH-USD --name two")
    lines = (f"book {SYM} --feed one", f"price {SYM} --feed two", "feeds")
    widgets = [ip.run_line_magic("wb", line) for line in lines]
    feeds = magics.session.running_feeds()
    assert wait_for(lambda: all(feed.status().trades > 0 for feed in feeds), 15)
    ip.run_cell_magic("wb", "sql", "SELECT count(*) FROM trades")  # the notebook cursor is open
    assert any(name.startswith("wb-pump-") for name in workbench_threads())

    ip.run_line_magic("unload_ext", "workbench")

    assert workbench_threads() == before
    assert not any(widget.pump.alive for widget in widgets)
    assert all(not feed.running and feed.threads_alive() == [] for feed in feeds)
    assert count_in_another_process(db, "SELECT count(*) FROM trades") > 0
    assert loaded_magics(ip) is None and magics not in ip.configurables
    with pytest.raises(UsageError, match="not found"):
        ip.run_line_magic("wb", "feeds")


def test_unloading_what_was_never_loaded_does_nothing(ip: InteractiveShell) -> None:
    workbench.unload_ipython_extension(ip)
    assert loaded_magics(ip) is None


def test_reload_gives_a_fresh_session_that_keeps_the_config(
    ip: InteractiveShell, tmp_path: Path
) -> None:
    ip.run_line_magic("load_ext", "workbench")
    first = registered(ip)
    ip.run_line_magic("config", f"WorkbenchMagics.db = {str(tmp_path / 'r.duckdb')!r}")
    ip.run_line_magic("config", "WorkbenchMagics.depth = 7")
    ip.run_cell_magic("wb", "sql", "SELECT 1")
    ip.run_line_magic("reload_ext", "workbench")
    second = registered(ip)
    assert second is not first and not first.session.is_open
    assert second.depth == 7 and second.db == str(tmp_path / "r.duckdb")


def test_importing_workbench_loads_no_notebook_machinery() -> None:
    code = (
        "import sys, workbench; "
        "print(sorted(m for m in ('IPython', 'ipywidgets', 'bqplot') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    assert callable(workbench.load_ipython_extension) and "load_ipython_extension" not in (
        workbench.__all__
    )


# -- a real kernel -------------------------------------------------------------------------


def execute(client: BlockingKernelClient, code: str) -> str:
    """Run ``code`` in the kernel; its stdout (the reply must be ok)."""
    out: list[str] = []

    def hook(msg: dict[str, Any]) -> None:
        if msg["msg_type"] == "stream" and msg["content"]["name"] == "stdout":
            out.append(msg["content"]["text"])

    reply = client.execute_interactive(code, timeout=60, output_hook=hook)
    assert reply["content"]["status"] == "ok", reply["content"]
    return "".join(out)


@contextmanager
def workbench_kernel(
    cwd: Path, db: Path, shutdown_wait: float | None = None
) -> Iterator[tuple[KernelManager, BlockingKernelClient]]:
    """A real kernel in ``cwd`` with the extension loaded on ``db``; shut down afterwards
    unless the test already did."""
    manager = KernelManager(kernel_name="python3")
    if shutdown_wait is not None:
        manager.shutdown_wait_time = shutdown_wait
    manager.start_kernel(cwd=str(cwd))
    client = manager.blocking_client()
    client.start_channels()
    try:
        client.wait_for_ready(timeout=60)
        execute(client, "%load_ext workbench")
        execute(client, f"%config WorkbenchMagics.db = {str(db)!r}")
        yield manager, client
    finally:
        client.stop_channels()
        if manager.has_kernel:
            manager.shutdown_kernel(now=True)


COUNT_ROWS = (
    "print(get_ipython().run_cell_magic('wb', 'sql', "
    "'SELECT least((SELECT count(*) FROM trades), (SELECT count(*) FROM book_snapshots)) AS n'"
    ").n[0])"
)


@pytest.mark.parametrize("how", ["shutdown_request", "sigterm"])
def test_kernel_shutdown_stops_the_feeds_and_closes_the_database(tmp_path: Path, how: str) -> None:
    db = tmp_path / "kernel.duckdb"
    # SIGTERM after half of the shutdown wait: far beyond a clean exit
    with workbench_kernel(tmp_path, db, shutdown_wait=60.0) as (manager, client):
        execute(client, "%config WorkbenchMagics.sim_rate = 400.0")
        assert "recording BTC-USD" in execute(client, f"%wb feed start sim {SYM}")
        # trades and a periodic book snapshot are committed: the feed is mid-stream
        assert wait_for(lambda: int(execute(client, COUNT_ROWS)) > 0, 20)
        process = manager.provisioner.process  # type: ignore[union-attr]
        if how == "sigterm":  # what supervisors send, and a kernel manager after a slow shutdown
            process.send_signal(signal.SIGTERM)
            process.wait(60)
        else:
            manager.shutdown_kernel(now=False)
    # exited by itself (or by the SIGTERM we sent), not killed after a shutdown that hung
    assert process.returncode == (-signal.SIGTERM if how == "sigterm" else 0)
    # The database was checkpointed and closed (no WAL left), which releases DuckDB's lock ...
    assert not Path(f"{db}.wal").exists()
    # ... after the feed stopped: stopping writes a final book snapshot newer than every trade,
    # which the periodic (1 s) snapshots of a feed cut off mid-stream are not.
    ((trades, last_trade, last_snapshot),) = query(
        db,
        "SELECT (SELECT count(*) FROM trades), (SELECT max(recv_ts) FROM trades), "
        "(SELECT max(recv_ts) FROM book_snapshots)",
    )
    assert trades > 0
    assert last_snapshot >= last_trade
