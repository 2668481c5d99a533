"""TailedFile without Kafka: entries and the boundary to resume from, as a file grows in
pieces of any size, with and without multi-line joining."""

from __future__ import annotations

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from haeryu.connectors.file_tail import TailedFile

START = re.compile(rb"\d")  # entries start with a digit; other lines continue them


def drain(tailed: TailedFile, *, final: bool = False, max_bytes: int = 7) -> list[bytes]:
    out: list[bytes] = []
    while True:
        before = tailed.read_pos
        out += tailed.read(max_bytes, final=final)
        if tailed.read_pos == before:
            out += tailed.read(max_bytes, final=final)
            return out


def test_lines_are_complete_at_their_newline(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"one\ntw")
    t = TailedFile(str(log))
    assert drain(t) == [b"one"]
    assert t.boundary == 4  # "tw" is not a line yet
    with log.open("ab") as f:
        f.write(b"o\r\n\nthree\n")
    assert drain(t) == [b"two", b"three"]  # CRLF trimmed, empty line skipped
    assert t.boundary == log.stat().st_size
    t.close()


def test_last_line_without_newline_is_sent_when_the_file_is_final(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"one\nlast")
    t = TailedFile(str(log))
    assert drain(t) == [b"one"]
    assert drain(t, final=True) == [b"last"]
    assert t.boundary == 8
    t.close()


def test_multiline_entry_waits_for_the_next_start_and_boundary_stays_before_it(
    tmp_path: Path,
) -> None:
    log = tmp_path / "a.log"
    trace = b"1 ERROR boom\n  at a()\n  at b()\n"
    log.write_bytes(trace)
    t = TailedFile(str(log), multiline_start=START, flush_after_s=3600)
    assert drain(t) == []
    assert t.boundary == 0  # the trace may still grow: resume before it
    with log.open("ab") as f:
        f.write(b"2 INFO ok\n")
    assert drain(t) == [b"1 ERROR boom\n  at a()\n  at b()"]
    assert t.boundary == len(trace)
    assert drain(t, final=True) == [b"2 INFO ok"]
    assert t.boundary == log.stat().st_size
    t.close()


def test_multiline_entry_is_flushed_after_a_quiet_period(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"1 a\n b\n")
    t = TailedFile(str(log), multiline_start=START, flush_after_s=0.0)
    assert drain(t) == [b"1 a\n b"]
    assert t.boundary == 7
    t.close()


def test_truncation_is_seen_and_the_file_read_again(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"old line 1\nold line 2\n")
    t = TailedFile(str(log))
    assert len(drain(t)) == 2
    log.write_bytes(b"new\n")  # shorter than what was read
    assert t.truncated()
    t.restart_from_zero()
    assert drain(t) == [b"new"]
    t.close()


def test_a_line_longer_than_the_limit_is_cut(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"x" * 50)
    t = TailedFile(str(log), max_line_bytes=20)
    assert drain(t, max_bytes=16) == [b"x" * 32]  # cut once over 20 bytes
    assert drain(t, max_bytes=16, final=True) == [b"x" * 18]
    t.close()


lines = st.lists(
    st.tuples(st.booleans(), st.text(alphabet="ab c", max_size=6)), min_size=1, max_size=25
)


@settings(max_examples=60, deadline=None)
@given(
    content=lines,
    pieces=st.lists(st.integers(1, 9), min_size=1, max_size=40),
    crash_after=st.integers(0, 40),
    multiline=st.booleans(),
)
def test_resuming_at_any_saved_boundary_repeats_and_loses_nothing(
    tmp_path_factory: object,
    content: list[tuple[bool, str]],
    pieces: list[int],
    crash_after: int,
    multiline: bool,
) -> None:
    """Write the file in pieces, reading after each; 'crash' after some reads, then
    resume a new TailedFile from the boundary: entries before + after == all entries."""
    data = b"".join((b"1" if s else b" ") + t.encode() + b"\n" for s, t in content)
    path = Path(tmp_path_factory.mktemp("tail")) / "f.log"  # type: ignore[attr-defined]
    path.write_bytes(b"")
    start = START if multiline else None
    t = TailedFile(str(path), multiline_start=start, flush_after_s=3600)
    got: list[bytes] = []
    written = 0
    for i, size in enumerate(pieces):
        if i == crash_after:
            break
        with path.open("ab") as f:
            f.write(data[written : written + size])
        written = min(len(data), written + size)
        got += drain(t)
    saved = t.boundary
    # Everything handed out lies before the saved boundary, and nothing after it.
    t.close()
    with path.open("ab") as f:
        f.write(data[written:])
    resumed = TailedFile(str(path), saved, multiline_start=start, flush_after_s=3600)
    rest = drain(resumed, final=True)
    resumed.close()
    whole = TailedFile(str(path), 0, multiline_start=start, flush_after_s=3600)
    expected = drain(whole, final=True)
    whole.close()
    assert got + rest == expected
