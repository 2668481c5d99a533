"""RFC 6587 framing, fed whole and one byte at a time (the socket may split anywhere)."""

from __future__ import annotations

import pytest

from haeryu.connectors.syslog_framing import BadFrame, Frame, FrameDecoder


def decode(data: bytes, *, bytewise: bool, max_size: int = 64) -> list[Frame | BadFrame]:
    dec = FrameDecoder(max_size)
    out: list[Frame | BadFrame] = []
    if bytewise:
        for i in range(len(data)):
            out += dec.feed(data[i : i + 1])
    else:
        out += dec.feed(data)
    return out + dec.close()


def counted(msg: bytes) -> bytes:
    return b"%d " % len(msg) + msg


@pytest.fixture(params=[False, True], ids=["whole", "bytewise"])
def bytewise(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


def test_octet_counting_and_lf_framing_mixed_on_one_connection(bytewise: bool) -> None:
    stream = (
        counted(b"<13>hello\n")
        + counted(b"<14>two\nlines 15")
        + b"\r\n<15>lf framed\r\n\n<16>nul\x00<17>last"
    )
    assert decode(stream, bytewise=bytewise) == [
        Frame(b"<13>hello\n"),
        Frame(b"<14>two\nlines 15"),
        Frame(b"<15>lf framed"),
        Frame(b"<16>nul"),
        Frame(b"<17>last"),
    ]


def test_counted_frame_over_the_limit_is_bad_and_the_stream_goes_on(bytewise: bool) -> None:
    big = b"<13>" + b"x" * 96
    stream = counted(big) + counted(b"<1>a")
    assert decode(stream, bytewise=bytewise, max_size=64) == [
        BadFrame(big[:64], "frame of 100 bytes exceeds the limit of 64"),
        Frame(b"<1>a"),
    ]


def test_line_over_the_limit_is_bad_and_the_stream_goes_on(bytewise: bool) -> None:
    long = b"<13>" + b"y" * 200
    got = decode(long + b"\n<14>next\n", bytewise=bytewise, max_size=64)
    assert got == [
        BadFrame(long[:64], "line longer than the limit of 64 bytes"),
        Frame(b"<14>next"),
    ]


def test_connection_closed_inside_a_counted_frame_is_a_bad_frame() -> None:
    assert decode(b"50 <13>cut", bytewise=False) == [
        BadFrame(b"50 <13>cut", "connection closed inside an octet-counted frame")
    ]


def test_digits_without_a_length_field_are_a_line(bytewise: bool) -> None:
    assert decode(b"2024-01-01 not syslog\n", bytewise=bytewise) == [
        Frame(b"2024-01-01 not syslog")
    ]
