"""The syslog parsers on the RFCs' own examples, rsyslog file lines and broken input."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from haeryu.connectors.parsers import ParseError
from haeryu.connectors.parsers.syslog import parse_rfc3164, parse_rfc5424, parse_syslog

NOW = datetime(2026, 12, 1, 5, 0, tzinfo=UTC)


def ms(*args: int) -> int:
    return int(datetime(*args, tzinfo=UTC).timestamp() * 1000)  # type: ignore[arg-type,misc]


def test_rfc3164_example_with_priority_host_and_tag() -> None:
    m = parse_syslog(b"<34>Oct 11 22:14:15 mymachine su: 'su root' failed on /dev/pts/8\n", now=NOW)
    assert (m.facility, m.severity, m.version) == (4, 2, 0)
    assert m.timestamp_ms == ms(2026, 10, 11, 22, 14, 15)
    assert (m.hostname, m.app_name, m.procid) == ("mymachine", "su", None)
    assert m.message == "'su root' failed on /dev/pts/8"
    assert m.to_dict()["severity_name"] == "crit"


def test_rsyslog_file_line_without_priority_has_pid() -> None:
    m = parse_rfc3164(b"Nov 30 23:59:58 web-1 sshd[4123]: Accepted publickey for ops", now=NOW)
    assert m.facility is None and m.severity is None
    assert (m.hostname, m.app_name, m.procid) == ("web-1", "sshd", "4123")
    assert m.message == "Accepted publickey for ops"


def test_december_lines_read_in_january_belong_to_last_year() -> None:
    january = datetime(2027, 1, 1, 0, 5, tzinfo=UTC)
    m = parse_syslog(b"<13>Dec 31 23:59:00 h app: bye", now=january)
    assert m.timestamp_ms == ms(2026, 12, 31, 23, 59)


def test_rfc5424_example_with_structured_data_and_bom() -> None:
    raw = (
        b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 "
        b'[exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"]'
        b'[examplePriority@32473 class="high" note="a \\"quoted\\" \\] bracket"] '
        b"\xef\xbb\xbfAn application event log entry..."
    )
    m = parse_rfc5424(raw)
    assert (m.facility, m.severity, m.version) == (20, 5, 1)
    assert m.timestamp_ms == ms(2003, 10, 11, 22, 14, 15) + 3
    assert (m.hostname, m.app_name, m.procid, m.msgid) == (
        "mymachine.example.com",
        "evntslog",
        None,
        "ID47",
    )
    assert m.structured_data == {
        "exampleSDID@32473": {"iut": "3", "eventSource": "Application", "eventID": "1011"},
        "examplePriority@32473": {"class": "high", "note": 'a "quoted" ] bracket'},
    }
    assert m.message == "An application event log entry..."


def test_rfc5424_all_nil_and_offset_time() -> None:
    assert parse_syslog(b"<13>1 - - - - - -").timestamp_ms is None
    m = parse_syslog(b"<13>1 2026-12-01T14:00:00+09:00 h a 77 - - hello world")
    assert m.timestamp_ms == ms(2026, 12, 1, 5, 0)
    assert (m.procid, m.message) == ("77", "hello world")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"<999>Oct 11 22:14:15 h a: x", "priority 999 out of range"),
        (b"<ab>Oct 11 22:14:15 h a: x", "bad <PRI>"),
        (b"hello world", "not RFC 3164"),
        (b"<13>Foo 11 22:14:15 h a: x", "not RFC 3164"),
        (b"<13>Feb 30 22:14:15 h a: x", "bad RFC 3164 time"),
        (b"<13>1 yesterday h a - - - x", "bad RFC 5424 timestamp"),
        (b"<13>1 2026-12-01T00:00:00Z h a - - [sd x=1] m", 'PARAM-NAME="VALUE"'),
        (b'<13>1 2026-12-01T00:00:00Z h a - - [sd x="1', "not closed"),
        (b'<13>1 2026-12-01T00:00:00Z h a - - [sd x="1"', "not closed by ']'"),
        (b"<13>1 2026-12-01T00:00:00Z h", "expected TIMESTAMP HOSTNAME"),
    ],
)
def test_broken_messages_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason.replace("[", r"\[")):
        parse_syslog(raw, now=NOW)


@given(st.binary(max_size=200))
def test_any_bytes_parse_or_raise_parse_error(raw: bytes) -> None:
    with contextlib.suppress(ParseError):
        parse_syslog(raw, now=NOW)


@given(st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=80))
def test_any_5424_message_text_comes_back(text: str) -> None:
    raw = b"<14>1 2026-12-01T00:00:00Z h a - - - " + text.encode()
    assert parse_syslog(raw).message == text.rstrip("\r\n\x00")
