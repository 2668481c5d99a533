"""Access-log and line parsers: what a file connector turns each entry into."""

from __future__ import annotations

import json

import pytest

from haeryu.connectors.parsers import ParseError
from haeryu.connectors.parsers.access_log import parse_access_log
from haeryu.connectors.parsers.lines import line_parser
from haeryu.connectors.runtime import RecordShape

APACHE = (
    b'127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 '
    b'"http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)"'
)


def test_combined_line() -> None:
    doc = parse_access_log(APACHE)
    assert doc["timestamp_ms"] == 971_211_336_000
    assert (doc["method"], doc["path"], doc["protocol"], doc["status"], doc["bytes"]) == (
        "GET",
        "/apache_pb.gif",
        "HTTP/1.0",
        200,
        2326,
    )
    assert (doc["user"], doc["ident"], doc["referer"]) == (
        "frank",
        None,
        "http://www.example.com/start.html",
    )
    assert doc["user_agent"] == "Mozilla/4.08 [en] (Win98; I ;Nav)"


def test_common_line_escaped_quotes_and_nginx_extras() -> None:
    assert parse_access_log(b'::1 - - [01/Dec/2026:05:00:00 +0000] "-" 400 -')["bytes"] == 0
    doc = parse_access_log(
        b'10.0.0.1 - - [01/Dec/2026:05:00:00 +0900] "GET /q?a=\\"x\\" HTTP/1.1" 200 5 "-" "ua \\"v\\"" 0.003 upstream'
    )
    assert doc["path"] == '/q?a="x"' and doc["user_agent"] == 'ua "v"' and doc["referer"] is None
    assert doc["extra"] == "0.003 upstream"


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        (b"hello", "not an access log line"),
        (b'1.2.3.4 - - [32/Foo/2000:13:55:36 -0700] "GET / HTTP/1.0" 200 1', "bad time"),
    ],
)
def test_bad_access_lines_say_why(line: bytes, reason: str) -> None:
    with pytest.raises(ParseError, match=reason):
        parse_access_log(line)


def test_line_formats_give_value_key_and_event_time() -> None:
    shape = RecordShape(key_field="host", timestamp_field="at", timestamp_format="iso8601")
    parse = line_parser("json", shape.key_of, shape.timestamp_of)
    raw = b'{"host": "h1", "at": "2026-12-01T00:00:00Z", "x": 1}'
    assert parse(raw) == (raw, b"h1", 1_796_083_200_000)  # the line is kept as written
    with pytest.raises(ParseError, match="not JSON"):
        parse(b'{"host": ')
    with pytest.raises(ParseError, match="ISO 8601"):
        parse(b'{"at": "soon"}')

    by_host = RecordShape(key_field="hostname")
    value, key, stamp = line_parser("syslog", by_host.key_of, by_host.timestamp_of)(
        b"<13>1 2026-12-01T00:00:00Z web-1 app - - - hello"
    )
    assert key == b"web-1" and stamp == 1_796_083_200_000
    assert json.loads(value)["message"] == "hello"

    value, key, stamp = line_parser("combined", RecordShape().key_of, RecordShape().timestamp_of)(
        APACHE
    )
    assert key is None and stamp == 971_211_336_000 and json.loads(value)["status"] == 200
    assert line_parser("raw", shape.key_of, shape.timestamp_of)(b"{x") == (b"{x", None, None)
