"""RFC 6455 framing without I/O: bytes in, whole messages out; payloads in, frame bytes out.

Why our own decoder: websocket-client reads every frame with two ``recv`` calls and builds an
object per frame, which caps a loopback feed near 150k msgs/s before any parsing. The feed
runtime keeps websocket-client for the handshake and for sending, and reads the socket in
256 KiB chunks through :class:`FrameDecoder`, which splits a chunk into messages in one loop.
The embedded simulator uses the same module to speak the server side.
"""

from __future__ import annotations

import os
import struct
from typing import Final

OP_CONT: Final = 0x0
OP_TEXT: Final = 0x1
OP_BINARY: Final = 0x2
OP_CLOSE: Final = 0x8
OP_PING: Final = 0x9
OP_PONG: Final = 0xA

_U16 = struct.Struct("!H")
_U64 = struct.Struct("!Q")


def encode_frame(payload: bytes, opcode: int = OP_TEXT, *, mask: bool = False) -> bytes:
    """One final frame. Clients must mask (RFC 6455 §5.3); servers must not."""
    n = len(payload)
    head = bytes([0x80 | opcode])
    mask_bit = 0x80 if mask else 0
    if n < 126:
        head += bytes([mask_bit | n])
    elif n < 65536:
        head += bytes([mask_bit | 126]) + _U16.pack(n)
    else:
        head += bytes([mask_bit | 127]) + _U64.pack(n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + _apply_mask(payload, key)


def _apply_mask(data: bytes, key: bytes) -> bytes:
    # XOR as one big integer: C speed without numpy, fine for client-sized frames.
    n = len(data)
    if n == 0:
        return b""
    repeated = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")


OP_OVERSIZED: Final = -1
"""Pseudo-opcode: a message over the size limit; its payload is the first ``PREFIX`` bytes."""
PREFIX: Final = 4096


class FrameDecoder:
    """Incremental decoder: ``feed(chunk)`` returns the complete messages it finished.

    Each message is ``(opcode, payload)``; fragmented messages are reassembled and reported
    with the opcode of their first frame. Control frames (ping, pong, close) come out in the
    order they arrived, even between fragments. A frame longer than ``max_size`` is skipped
    and reported as ``(OP_OVERSIZED, first PREFIX bytes)`` so it can be quarantined while the
    stream stays in sync. A framing violation sets :attr:`error` and stops decoding: the
    messages before it are still returned, and the connection must be dropped.
    """

    def __init__(self, max_size: int = 4 * 1024 * 1024) -> None:
        self.max_size = max_size
        self.error: str | None = None
        self._buf = b""
        self._frag_opcode: int | None = None
        self._frag_parts: list[bytes] = []
        self._frag_len = 0
        self._skip = 0  # bytes still to discard of an oversized frame

    def feed(self, chunk: bytes) -> list[tuple[int, bytes]]:
        if self.error is not None:
            return []
        if self._skip:
            if len(chunk) <= self._skip:
                self._skip -= len(chunk)
                return []
            chunk = chunk[self._skip :]
            self._skip = 0
        buf = self._buf + chunk if self._buf else chunk
        out: list[tuple[int, bytes]] = []
        append = out.append
        i = 0
        end = len(buf)
        while end - i >= 2:
            b0 = buf[i]
            b1 = buf[i + 1]
            length = b1 & 0x7F
            head = 2
            if length == 126:
                if end - i < 4:
                    break
                length = _U16.unpack_from(buf, i + 2)[0]
                head = 4
            elif length == 127:
                if end - i < 10:
                    break
                length = _U64.unpack_from(buf, i + 2)[0]
                head = 10
            masked = b1 & 0x80
            if masked:
                head += 4
            if end - i < head:
                break
            if b0 & 0x70:
                self.error = "frame sets reserved bits without a negotiated extension"
                break
            if length > self.max_size:
                start = i + head
                prefix = buf[start : start + min(length, PREFIX)]
                if masked:
                    prefix = _apply_mask(prefix, buf[start - 4 : start])
                append((OP_OVERSIZED, prefix))
                self._reset_fragments()
                stop = start + length
                if stop > end:
                    self._skip = stop - end
                    i = end
                    break
                i = stop
                continue
            stop = i + head + length
            if stop > end:
                break
            payload = buf[i + head : stop]
            if masked:
                payload = _apply_mask(payload, buf[i + head - 4 : i + head])
            i = stop
            opcode = b0 & 0x0F
            if b0 & 0x80 and opcode != OP_CONT and (opcode & 0x8 or self._frag_opcode is None):
                append((opcode, payload))
            elif not self._add_fragment(opcode, payload, final=bool(b0 & 0x80), out=out):
                break
        self._buf = buf[i:] if i < end else b""
        return out

    def _add_fragment(
        self, opcode: int, payload: bytes, *, final: bool, out: list[tuple[int, bytes]]
    ) -> bool:
        if opcode != OP_CONT:
            if self._frag_opcode is not None:
                self.error = "a new message started while a fragmented one was open"
                return False
            self._frag_opcode = opcode
        elif self._frag_opcode is None:
            self.error = "continuation frame without a message to continue"
            return False
        self._frag_parts.append(payload)
        self._frag_len += len(payload)
        if self._frag_len > self.max_size:
            out.append((OP_OVERSIZED, b"".join(self._frag_parts)[:PREFIX]))
            self._reset_fragments()
        elif final:
            out.append((self._frag_opcode, b"".join(self._frag_parts)))
            self._reset_fragments()
        return True

    def _reset_fragments(self) -> None:
        self._frag_opcode = None
        self._frag_parts = []
        self._frag_len = 0
