"""Fuzzing the sans-IO request path: parse it, or raise the error the server handles.

h11's invariant, applied to each step the server takes with a client's bytes:

* :class:`FrameDecoder` and :func:`parse_header_prefix` / :func:`skip_header_tags`
  either parse or raise :class:`FramingError` -- nothing else, whatever the bytes and
  however they are split;
* kio's request readers (``codec(key, version).read``), for every API version the
  registry dispatches, either parse or raise an ``Exception`` (which the server catches
  and answers by closing the connection). Anything else -- a ``BaseException``, or a
  native crash that takes the process down -- is a bug.

The kio half runs in a child process with a 4 GiB address-space limit, because a native
crash would otherwise take pytest down with it (and because the limit makes "reserves
tens of GiB" fail the same way on every machine). The child records each input before
parsing it, so a crash is reported with the input that caused it.
"""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import struct
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from haeryu.broker.protocol.framing import (
    MAX_FRAME_BYTES,
    FrameDecoder,
    FramingError,
    parse_header_prefix,
    skip_header_tags,
)

# -- framing: in process ---------------------------------------------------------------------

#: Same examples on every run, and no example database written into the tree.
DETERMINISTIC = {"derandomize": True, "database": None, "deadline": None}


def _split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points)]


@settings(max_examples=400, **DETERMINISTIC)
@given(st.binary(max_size=600), st.lists(st.integers(0, 1000), max_size=8))
def test_frame_decoder_parses_or_raises_framing_error(data: bytes, cuts: list[int]) -> None:
    decoder = FrameDecoder()
    got: list[bytes] = []
    try:
        for chunk in _split(data, cuts):
            decoder.feed(chunk)
            got.extend(decoder.frames())
    except FramingError:
        return
    # What came out is exactly the start of the stream, and the rest is buffered.
    consumed = b"".join(struct.pack(">i", len(f)) + f for f in got)
    assert data.startswith(consumed)
    assert decoder.buffered == len(data) - len(consumed)
    assert all(8 <= len(f) <= MAX_FRAME_BYTES for f in got)


_payloads = st.lists(st.binary(min_size=8, max_size=120), min_size=1, max_size=6)


@settings(max_examples=200, **DETERMINISTIC)
@given(_payloads, st.lists(st.integers(0, 1000), max_size=10))
def test_valid_frames_come_out_whole_however_the_stream_is_cut(
    payloads: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(struct.pack(">i", len(p)) + p for p in payloads)
    for chunks in (_split(stream, cuts), [stream[i : i + 1] for i in range(len(stream))]):
        decoder = FrameDecoder()
        got: list[bytes] = []
        for chunk in chunks:
            decoder.feed(chunk)
            got.extend(decoder.frames())
        assert got == payloads
        assert decoder.buffered == 0


@settings(max_examples=600, **DETERMINISTIC)
@given(st.binary(max_size=80))
def test_header_parsing_parses_or_raises_framing_error(frame: bytes) -> None:
    try:
        header, pos = parse_header_prefix(frame)
    except FramingError:
        return
    assert 10 <= pos <= len(frame)
    assert header.client_id is None or isinstance(header.client_id, str)
    try:
        end = skip_header_tags(frame, pos)
    except FramingError:
        return
    assert pos < end <= len(frame)


@settings(max_examples=300, **DETERMINISTIC)
@given(
    st.integers(-(2**15), 2**15 - 1),
    st.integers(-(2**15), 2**15 - 1),
    st.integers(-(2**31), 2**31 - 1),
    st.one_of(st.none(), st.text(max_size=20)),
    st.binary(max_size=20),
)
def test_header_round_trips(
    key: int, version: int, corr: int, client_id: str | None, rest: bytes
) -> None:
    raw = client_id.encode() if client_id is not None else None
    frame = struct.pack(">hhi", key, version, corr)
    frame += struct.pack(">h", -1) if raw is None else struct.pack(">h", len(raw)) + raw
    header, pos = parse_header_prefix(frame + rest)
    assert (header.api_key, header.api_version, header.correlation_id) == (key, version, corr)
    assert header.client_id == client_id
    assert (frame + rest)[pos:] == rest


# -- kio request readers: in a child process ----------------------------------------------------------

CHILD_EXAMPLES = 3000
CHILD_ADDRESS_SPACE = 4 << 30


def _kio_fuzz_child(record_path: str) -> None:  # pragma: no cover - runs in the child
    """Hypothesis over every dispatched (API key, version): full frames through the
    server's parsing steps. Each input is written to ``record_path`` before it is parsed."""
    import resource

    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
    from kio.serial import entity_writer

    from haeryu.broker import handlers
    from haeryu.broker.handlers._registry import REGISTRY, codec
    from support.raw_client import build_entity

    _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (CHILD_ADDRESS_SPACE, hard))
    handlers.load_all()
    pairs = sorted(
        (spec.key, v)
        for spec in REGISTRY.values()
        for v in range(spec.min_version, spec.max_version + 1)
    )

    def default_body(pair: tuple[int, int]) -> bytes:
        # The broker's own request classes: kio's, or protocol/legacy.py's old versions.
        request_cls = codec(*pair).request_cls
        out = io.BytesIO()
        entity_writer(request_cls)(out, build_entity(request_cls, {}))
        return out.getvalue()

    # A valid (all-defaults) body of every version, to mutate.
    seeds = {pair: default_body(pair) for pair in pairs}
    fd = os.open(record_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)

    edge_ints = st.sampled_from(
        [
            struct.pack(">i", 0x7FFFFFFF),
            struct.pack(">i", 0x40000000),
            struct.pack(">i", -2),
            struct.pack(">h", 0x7FFF),
            b"\xff\xff\xff\xff\x0f",
            b"\xff\xff\xff\xff\x07",
            b"\x80\x80\x80\x80\x04",
            b"\xff",
            b"\x00",
        ]
    )

    @st.composite
    def bodies(draw: st.DrawFn, pair: tuple[int, int]) -> bytes:
        if draw(st.booleans()):
            return draw(st.binary(max_size=200))
        body = bytearray(seeds[pair])
        for _ in range(draw(st.integers(1, 3))):
            at = draw(st.integers(0, len(body)))
            if draw(st.booleans()):
                patch = draw(edge_ints)
                body[at : at + len(patch)] = patch
            else:
                body[at:at] = draw(st.binary(min_size=1, max_size=8))
        return bytes(body)

    @st.composite
    def requests(draw: st.DrawFn) -> tuple[tuple[int, int], bytes]:
        pair = draw(st.sampled_from(pairs))
        return pair, draw(bodies(pair))

    @settings(
        max_examples=CHILD_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(requests())
    def every_reader_parses_or_raises_an_exception(request: tuple[tuple[int, int], bytes]) -> None:
        (key, version), body = request
        c = codec(key, version)
        frame = struct.pack(">hhih", key, version, 1, 1) + b"x" + (b"\x00" if c.flexible else b"")
        note = f"key={key} version={version} frame={(frame + body).hex()}\n".encode()
        os.pwrite(fd, note, 0)
        os.ftruncate(fd, len(note))
        _header, pos = parse_header_prefix(frame + body)
        if c.flexible:
            pos = skip_header_tags(frame + body, pos)
        # Exception is what the server catches (it closes the connection); anything
        # else propagates and fails the property.
        with contextlib.suppress(Exception):
            c.read(frame + body, pos)

    every_reader_parses_or_raises_an_exception()
    os.ftruncate(fd, 0)


def test_kio_request_readers_parse_or_raise_an_exception(tmp_path: Path) -> None:
    record = tmp_path / "last-input"
    tests_dir = Path(__file__).resolve().parents[2]
    code = (
        "import runpy, sys\n"
        f"sys.path.insert(0, {str(tests_dir)!r})\n"
        f"runpy.run_path({__file__!r})['_kio_fuzz_child']({str(record)!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240)
    last = record.read_text() if record.exists() else ""
    lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith(("  ", "\t"))]
    assert proc.returncode == 0, (
        f"the kio fuzz child exited with {proc.returncode} "
        f"(negative = killed by that signal; -6 is an abort)\n"
        f"input being parsed: {last or '(none recorded)'}\n" + "\n".join(lines[-30:])
    )
