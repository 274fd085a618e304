"""A small blocking HTTP GET client whose in-flight request can be aborted from another thread.

Feeds fetch snapshots and backfill pages from their maintenance thread; ``stop()`` must return
within a second even while such a request waits on a slow server, so the socket is reachable
for ``abort()``. Plain http.client keeps the dependency list short.
"""

from __future__ import annotations

import contextlib
import http.client
import socket
import threading
from urllib.parse import urlsplit

from workbench.errors import FeedError

MAX_BODY = 64 * 1024 * 1024


class RestClient:
    def __init__(self, base_url: str, *, timeout: float = 5.0) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FeedError(f"REST URL must be http(s)://host[:port][/prefix], got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port
        self._prefix = parts.path.rstrip("/")
        self.timeout = timeout
        self._lock = threading.Lock()
        self._active: http.client.HTTPConnection | None = None
        self._aborted = False

    def get(self, path: str) -> bytes:
        """GET ``path`` (relative to the base URL); raises FeedError unless HTTP 200."""
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        conn = cls(self._host, self._port, timeout=self.timeout)
        with self._lock:
            if self._aborted:
                raise FeedError("REST client was stopped")
            self._active = conn
        try:
            conn.request("GET", self._prefix + path, headers={"Accept": "application/json"})
            resp = conn.getresponse()
            body = resp.read(MAX_BODY + 1)
        except (OSError, http.client.HTTPException) as exc:
            raise FeedError(f"GET {self.base_url}{path} failed: {exc}") from None
        finally:
            with self._lock:
                self._active = None
            conn.close()
        if len(body) > MAX_BODY:
            raise FeedError(f"GET {self.base_url}{path}: body larger than {MAX_BODY} bytes")
        if resp.status != 200:
            snippet = body[:200].decode("utf-8", "replace")
            raise FeedError(f"GET {self.base_url}{path}: HTTP {resp.status} {snippet}")
        return body

    def abort(self) -> None:
        """Fail the request in flight (if any) and every later one."""
        with self._lock:
            self._aborted = True
            conn = self._active
        if conn is not None and conn.sock is not None:
            with contextlib.suppress(OSError):
                conn.sock.shutdown(socket.SHUT_RDWR)
