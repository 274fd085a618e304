"""How fast the simulator's burst mode delivers to one client, against a naive sender.

The server runs in a separate process (its own GIL) and a raw-socket client counts frames
with :class:`FrameDecoder`, as the feed runtime does. The baseline, measured in the same run,
sends the same N pre-encoded frames with one ``sendall`` per frame: the difference is what
coalescing frames into ~1 MiB writes buys.

    .venv/bin/python benchmarks/bench_sim_burst.py --n 500000
"""

from __future__ import annotations

import argparse
import base64
import multiprocessing
import os
import socket
import time
from collections.abc import Callable
from multiprocessing.synchronize import Event
from queue import Queue

import msgspec

from workbench.feeds.wsframe import FrameDecoder, encode_frame
from workbench.sim import SimConfig, SimServer
from workbench.sim.market import Market

TARGET = 200_000
SEED = 1
RECV_SIZE = 256 * 1024
_DATA_PREFIXES = (b'{"type":"delta"', b'{"type":"trade"')


def _serve_burst(n: int, symbols: tuple[str, ...], ports: Queue[int], done: Event) -> None:
    server = SimServer(SimConfig(seed=SEED, symbols=symbols, burst=n))
    ports.put(server.start())
    done.wait()
    server.stop()


def _serve_naive(n: int, symbols: tuple[str, ...], ports: Queue[int], done: Event) -> None:
    messages = Market(SEED, symbols).generate(n, time.time_ns() // 1000)
    frames = [encode_frame(msgspec.json.encode(m)) for m in messages]
    with socket.create_server(("127.0.0.1", 0)) as listener:
        ports.put(listener.getsockname()[1])
        conn, _ = listener.accept()
        with conn:
            for frame in frames:
                conn.sendall(frame)
            done.wait()


def _count(sock: socket.socket, n: int, pending: bytes) -> None:
    """Read until ``n`` delta/trade frames have arrived."""
    decoder = FrameDecoder()
    seen = 0
    chunk = pending
    while True:
        for _, payload in decoder.feed(chunk):
            if payload.startswith(_DATA_PREFIXES):
                seen += 1
        if seen >= n:
            return
        chunk = sock.recv(RECV_SIZE)
        if not chunk:
            raise RuntimeError(f"server closed after {seen} of {n} messages")


def _measure_sim(port: int, n: int, symbols: tuple[str, ...]) -> float:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        key = base64.b64encode(os.urandom(16)).decode()
        sock.sendall(
            (
                f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                "Sec-WebSocket-Version: 13\r\n\r\n"
            ).encode()
        )
        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += sock.recv(4096)
        _, _, rest = buf.partition(b"\r\n\r\n")
        subscribe = msgspec.json.encode({"op": "subscribe", "symbols": list(symbols)})
        start = time.perf_counter()
        sock.sendall(encode_frame(subscribe, mask=True))
        _count(sock, n, rest)
        return n / (time.perf_counter() - start)


def _measure_naive(port: int, n: int) -> float:
    start = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port)) as sock:
        _count(sock, n, b"")
    return n / (time.perf_counter() - start)


def _run(serve: Callable[..., None], n: int, symbols: tuple[str, ...], naive: bool) -> float:
    ctx = multiprocessing.get_context("spawn")
    ports = ctx.Queue()
    done = ctx.Event()
    proc = ctx.Process(target=serve, args=(n, symbols, ports, done))
    proc.start()
    try:
        port = ports.get(timeout=600)
        return _measure_naive(port, n) if naive else _measure_sim(port, n, symbols)
    finally:
        done.set()
        proc.join(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--n", type=int, default=500_000, help="messages in the burst")
    parser.add_argument("--symbols", default="BTC-USD,ETH-USD")
    args = parser.parse_args()
    symbols = tuple(args.symbols.split(","))
    burst = _run(_serve_burst, args.n, symbols, naive=False)
    print(f"sim burst: {burst:,.0f} msgs/s (target >= {TARGET:,})")
    naive = _run(_serve_naive, args.n, symbols, naive=True)
    print(f"naive baseline (one sendall per frame): {naive:,.0f} msgs/s")
    print(f"ratio: {burst / naive:.1f}x")


if __name__ == "__main__":
    main()
