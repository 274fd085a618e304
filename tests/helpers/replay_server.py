"""A scripted WebSocket + REST server on 127.0.0.1 for feed tests.

Each accepted WebSocket connection waits for the client's first message (the subscribe), then
sends the frames of the next script in ``scripts`` (the last script repeats for later
connections) — once ``after`` scripts went to other connections, if it says so — and either
keeps the connection open or closes it. While it stays open, a later
client message containing a ``replies`` key (e.g. a resubscribe) is answered with that key's
frames, the first time only; ``push`` sends frames to every open WebSocket connection at a
moment the test chooses (e.g. after the client fetched its REST snapshot). ``settled`` says
when every script was sent and every reply of the open connections too; ``barrier`` then pings
the open connections and waits for the pongs, which workbench's client sends only after it has
handled every frame before the ping. REST answers GETs
from a path (with its query string) → body mapping; a list of bodies is served in turn, the
last one repeating. Frames are raw payload bytes; binary and ping frames are marked with a
tuple (``("binary", payload)``, ``("ping", payload)``).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import itertools
import socket
import threading
from dataclasses import dataclass, field

from workbench.feeds.wsframe import OP_BINARY, OP_PING, OP_PONG, OP_TEXT, FrameDecoder, encode_frame

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

Frame = bytes | tuple[str, bytes]  # ("binary" or "ping", payload)
_OPCODES = {"binary": OP_BINARY, "ping": OP_PING}


@dataclass
class Script:
    frames: list[Frame]
    close_after: bool = False
    delay: float = 0.0
    after: int = 0
    """Send only once this many scripts were sent (to other connections): orders two streams."""
    close_after_rest: str | None = None
    """With ``close_after``: close only once this REST path was answered, then ``linger``
    seconds more, so the client acts on this session (e.g. applies its snapshot) however
    loaded the machine is."""
    linger: float = 0.0
    replies: dict[bytes, list[Frame]] = field(default_factory=dict)


@dataclass
class ReplayServer:
    scripts: list[Script]
    rest: dict[str, bytes | list[bytes]] = field(default_factory=dict)
    received: list[bytes] = field(default_factory=list)
    rest_requests: list[str] = field(default_factory=list)
    rest_answered: list[str] = field(default_factory=list)
    connections: int = 0

    def __post_init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._clients: list[socket.socket] = []
        self._websockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._served = 0
        self._open: dict[socket.socket, dict[bytes, list[Frame]]] = {}
        """Connections reading client messages → their replies not sent yet."""
        self._pongs: dict[socket.socket, set[bytes]] = {}
        self._tokens = itertools.count(1)

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ReplayServer:
        self._spawn(self._accept)
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._changed:
            self._changed.notify_all()  # a script still waiting for its ``after``
        with contextlib.suppress(OSError):
            self._sock.close()
        with self._lock:
            clients = list(self._clients)
        for c in clients:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
        for t in self._threads:
            t.join(2)

    def push(self, frames: list[Frame]) -> int:
        """Send ``frames`` to every WebSocket connection that has subscribed and is still
        open; returns how many got them."""
        with self._lock:
            targets = list(self._websockets)
        sent = 0
        for client in targets:
            with contextlib.suppress(OSError):
                client.sendall(_encode(frames))
                sent += 1
        return sent

    @property
    def settled(self) -> bool:
        """Every script was sent, and every reply of the connections still open."""
        with self._lock:
            return self._served >= len(self.scripts) and not any(self._open.values())

    def barrier(self, timeout: float = 10.0) -> bool:
        """Ping every open WebSocket connection and wait for its pong (or its end): on True
        the client has handled every frame sent before. Call it once ``settled``."""
        token = b"barrier-%d" % next(self._tokens)
        with self._lock:
            targets = list(self._open)
        for client in targets:
            with contextlib.suppress(OSError):
                client.sendall(encode_frame(token, OP_PING))
        with self._changed:
            return self._changed.wait_for(
                lambda: all(
                    c not in self._open or token in self._pongs.get(c, ()) for c in targets
                ),
                timeout,
            )

    def pongs(self) -> list[bytes]:
        """The payloads of the pongs received so far, from every connection."""
        with self._lock:
            return [payload for got in self._pongs.values() for payload in got]

    def _spawn(self, target: object, *args: object) -> None:
        t = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]
        self._threads.append(t)
        t.start()

    def _accept(self) -> None:
        self._sock.settimeout(0.05)  # closing a socket does not wake a blocked accept()
        while not self._stop.is_set():
            try:
                client, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                self._clients.append(client)
            self._spawn(self._serve, client)

    def _serve(self, client: socket.socket) -> None:
        with contextlib.suppress(OSError):
            request = b""
            while b"\r\n\r\n" not in request:
                chunk = client.recv(4096)
                if not chunk:
                    return
                request += chunk
            head, _, rest = request.partition(b"\r\n\r\n")
            lines = head.split(b"\r\n")
            path = lines[0].split(b" ")[1].decode()
            headers = {
                k.strip().lower(): v.strip()
                for k, _, v in (line.partition(b":") for line in lines[1:])
            }
            if headers.get(b"upgrade", b"").lower() != b"websocket":
                self._rest(client, path)
                return
            accept = base64.b64encode(hashlib.sha1(headers[b"sec-websocket-key"] + GUID).digest())
            client.sendall(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            with self._lock:
                index = min(self.connections, len(self.scripts) - 1)
                self.connections += 1
            decoder = FrameDecoder()
            messages = decoder.feed(rest) if rest else []
            while not messages:
                chunk = client.recv(65536)
                if not chunk:
                    return
                messages = decoder.feed(chunk)
            self.received.extend(payload for _, payload in messages)
            with self._lock:
                self._websockets.append(client)
            script = self.scripts[index]
            if script.delay:
                self._stop.wait(script.delay)
            with self._changed:
                self._changed.wait_for(lambda: self._served >= script.after or self._stop.is_set())
            client.sendall(_encode(script.frames))
            if script.close_after:
                if script.close_after_rest is not None:
                    path = script.close_after_rest
                    with self._changed:
                        self._changed.wait_for(
                            lambda: path in self.rest_answered or self._stop.is_set()
                        )
                    self._stop.wait(script.linger)
                with self._changed:
                    self._served += 1
                    self._changed.notify_all()
                # FIN, then read what the client still sends (e.g. its other subscribes):
                # closing with unread bytes would be a reset that can destroy the frames
                # already sent before the client reads them.
                client.shutdown(socket.SHUT_WR)
                client.settimeout(2.0)
                while client.recv(65536):
                    pass
                client.close()
                return
            with self._changed:
                self._served += 1
                self._open[client] = pending = dict(script.replies)
                self._changed.notify_all()
            try:
                self._answer(client, decoder, pending)
            finally:
                with self._changed:
                    self._open.pop(client, None)
                    self._changed.notify_all()

    def _answer(
        self, client: socket.socket, decoder: FrameDecoder, pending: dict[bytes, list[Frame]]
    ) -> None:
        while not self._stop.is_set():
            chunk = client.recv(65536)
            if not chunk:
                return
            for opcode, payload in decoder.feed(chunk):
                if opcode == OP_PONG:
                    with self._changed:
                        self._pongs.setdefault(client, set()).add(payload)
                        self._changed.notify_all()
                    continue
                self.received.append(payload)
                for key in [k for k in pending if k in payload]:
                    client.sendall(_encode(pending[key]))
                    with self._lock:  # only once sent: ``settled`` must not run ahead
                        del pending[key]

    def _rest(self, client: socket.socket, path: str) -> None:
        with self._lock:
            self.rest_requests.append(path)
            answer = self.rest.get(path)
            if isinstance(answer, list):
                body = answer.pop(0) if len(answer) > 1 else answer[0]
            else:
                body = answer
        status = b"200 OK" if body is not None else b"404 Not Found"
        body = body if body is not None else b'{"error":"not found"}'
        client.sendall(
            b"HTTP/1.1 "
            + status
            + b"\r\nContent-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\nConnection: close\r\n\r\n"
            + body
        )
        client.close()
        with self._changed:
            self.rest_answered.append(path)
            self._changed.notify_all()


def _encode(frames: list[Frame]) -> bytes:
    return b"".join(
        encode_frame(f[1], _OPCODES[f[0]]) if isinstance(f, tuple) else encode_frame(f, OP_TEXT)
        for f in frames
    )
