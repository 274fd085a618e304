"""RFC 6455 framing: split chunks anywhere, unmask, reassemble, survive oversized frames."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from workbench.feeds.wsframe import (
    OP_BINARY,
    OP_CONT,
    OP_OVERSIZED,
    OP_PING,
    OP_TEXT,
    FrameDecoder,
    encode_frame,
)


def feed_all(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
    out: list[tuple[int, bytes]] = []
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        out += decoder.feed(data[start:cut])
        start = cut
    return out


@given(
    st.lists(st.binary(max_size=70_000), min_size=1, max_size=6),
    st.lists(st.integers(min_value=0), max_size=12),
    st.booleans(),
)
def test_messages_survive_any_chunking(payloads: list[bytes], cuts: list[int], mask: bool) -> None:
    data = b"".join(encode_frame(p, OP_BINARY, mask=mask) for p in payloads)
    assert feed_all(FrameDecoder(), data, cuts) == [(OP_BINARY, p) for p in payloads]


def test_fragments_are_reassembled_around_a_control_frame() -> None:
    first = bytes([OP_TEXT, 3]) + b"abc"  # FIN clear
    ping = encode_frame(b"hi", OP_PING)
    last = bytes([0x80 | OP_CONT, 3]) + b"def"
    assert FrameDecoder().feed(first + ping + last) == [(OP_PING, b"hi"), (OP_TEXT, b"abcdef")]


def test_oversized_frame_is_reported_and_stream_continues() -> None:
    decoder = FrameDecoder(max_size=100)
    data = encode_frame(b"a") + encode_frame(b"x" * 5000) + encode_frame(b"b")
    out = feed_all(decoder, data, [1, 50, 2000, 4000])
    assert [op for op, _ in out] == [OP_TEXT, OP_OVERSIZED, OP_TEXT]
    assert out[1][1].startswith(b"xxx") and out[2][1] == b"b"


def test_reserved_bits_stop_decoding_but_keep_earlier_messages() -> None:
    decoder = FrameDecoder()
    out = decoder.feed(encode_frame(b"ok") + bytes([0xC1, 0]))
    assert out == [(OP_TEXT, b"ok")]
    assert decoder.error is not None


def test_continuation_without_start_is_an_error() -> None:
    decoder = FrameDecoder()
    decoder.feed(bytes([0x80 | OP_CONT, 1]) + b"x")
    assert decoder.error is not None
