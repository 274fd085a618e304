"""A real JupyterLab server on 127.0.0.1 for browser tests, started and fully stopped by the test.

The server runs from the project's venv on a free port with a random token, serves a scratch
root directory, and keeps its config, runtime and settings files in a scratch directory too,
so a test neither reads nor writes the user's Jupyter state. :meth:`JupyterLab.stop` asks the
server to shut down over the REST API (which shuts its kernels down first) and then checks
that neither the server nor any process it started is still alive.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO, Any

JUPYTER = Path(sys.executable).with_name("jupyter")

# Settings a first-time user would dismiss by hand: no news or update checks (the test runs
# offline), and every cell kept in the DOM so the test can address cells by position.
LAB_SETTINGS: dict[str, dict[str, Any]] = {
    "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
        "fetchNews": "false",
        "checkForUpdates": False,
    },
    "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (kernels run in their own session, so the process
    group would miss them; the parent links do not)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:  # the process exited while we looked
            continue
        # "pid (comm) state ppid ...": comm may contain spaces, so split after the last ')'
        ppid = int(text.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie, i.e. exited but not yet reaped, counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


class JupyterLab:
    """``jupyter lab`` serving ``root``; use as a context manager or call start/stop."""

    def __init__(self, root: Path, state: Path, log: Path) -> None:
        self.root = root.resolve()
        self.state = state.resolve()
        self.log = log.resolve()
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.pid = 0
        self._proc: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self.started: set[int] = set()

    def start(self, timeout: float = 60.0) -> JupyterLab:
        env = dict(os.environ)
        env.update(
            JUPYTER_CONFIG_DIR=str(self.state / "config"),
            JUPYTER_RUNTIME_DIR=str(self.state / "runtime"),
            JUPYTERLAB_SETTINGS_DIR=str(self.state / "settings"),
            JUPYTERLAB_WORKSPACES_DIR=str(self.state / "workspaces"),
        )
        for name, values in LAB_SETTINGS.items():
            path = self.state / "settings" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(values))
        self._log_file = self.log.open("wb")
        self._proc = subprocess.Popen(
            [
                str(JUPYTER),
                "lab",
                "--no-browser",
                "--allow-root",
                "--ip=127.0.0.1",
                f"--port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={self.root}",
            ],
            cwd=self.root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.pid = self._proc.pid
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early, see {self.log}")
            try:
                self.api("GET", "/api/status")
                return self
            except OSError:  # not listening yet (URLError is an OSError)
                if time.monotonic() > deadline:
                    raise TimeoutError(f"jupyter lab not up after {timeout} s") from None
                time.sleep(0.2)

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}?token={self.token}"

    def api(self, method: str, path: str) -> Any:
        request = urllib.request.Request(
            self.base_url + path,
            method=method,
            headers={"Authorization": f"token {self.token}"},
            data=b"" if method == "POST" else None,
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read()
        return json.loads(body) if body else None

    def stop(self, timeout: float = 30.0) -> list[int]:
        """Shut the server and its kernels down; returns the pids that survived (and were then
        killed), which a test asserts to be empty."""
        if self._proc is None:
            return []
        proc, self._proc = self._proc, None
        self.started = descendants(proc.pid)
        # The server may stop its loop before the reply is out: the wait below decides.
        with contextlib.suppress(OSError):
            self.api("POST", "/api/shutdown")
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        deadline = time.monotonic() + 5.0
        while (survivors := [p for p in self.started if alive(p)]) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
        if self._log_file is not None:
            self._log_file.close()
        return survivors

    def __enter__(self) -> JupyterLab:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
