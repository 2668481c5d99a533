"""nginx and Apache access logs: the combined format (and common, its prefix).

``%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-agent}i"``, e.g.::

    127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /a.gif HTTP/1.0" 200 2326 "-" "curl/8"

:func:`parse_access_log` returns a JSON-ready dict with the event time in
``timestamp_ms``; ``-`` becomes ``None``.  Anything after the user agent (nginx
``log_format`` extensions) is kept in ``extra``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from haeryu.connectors.parsers.errors import ParseError

_LINE = re.compile(
    r"(?P<remote_addr>\S+) (?P<ident>\S+) (?P<user>\S+) \[(?P<time>[^\]]+)\] "
    r'"(?P<request>(?:[^"\\]|\\.)*)" (?P<status>\d{3}) (?P<bytes>\d+|-)'
    r'(?: "(?P<referer>(?:[^"\\]|\\.)*)" "(?P<user_agent>(?:[^"\\]|\\.)*)")?'
    r"(?: (?P<extra>.*))?"
)
_TIME_FORMAT = "%d/%b/%Y:%H:%M:%S %z"


def parse_access_log(line: bytes) -> dict[str, Any]:
    """Parse one combined (or common) log line; :class:`ParseError` says why not."""
    text = line.rstrip(b"\r\n").decode("utf-8", errors="replace")
    match = _LINE.fullmatch(text)
    if match is None:
        raise ParseError(
            "not an access log line: expected "
            '\'HOST IDENT USER [TIME] "REQUEST" STATUS BYTES "REFERER" "USER-AGENT"\''
        )
    try:
        stamp = datetime.strptime(match["time"], _TIME_FORMAT)
    except ValueError:
        raise ParseError(
            f"bad time {match['time']!r}: expected 10/Oct/2000:13:55:36 -0700"
        ) from None
    request = _unescape(match["request"])
    parts = request.split(" ")
    # "GET /x HTTP/1.1"; a junk request line ("-", binary probes) leaves these None.
    method, path, protocol = parts if len(parts) == 3 else (None, None, None)
    return {
        "remote_addr": match["remote_addr"],
        "ident": _nil(match["ident"]),
        "user": _nil(match["user"]),
        "timestamp_ms": int(stamp.timestamp() * 1000),
        "request": request,
        "method": method,
        "path": path,
        "protocol": protocol,
        "status": int(match["status"]),
        "bytes": 0 if match["bytes"] == "-" else int(match["bytes"]),
        "referer": _nil(_unescape(match["referer"])) if match["referer"] is not None else None,
        "user_agent": _nil(_unescape(match["user_agent"]))
        if match["user_agent"] is not None
        else None,
        "extra": match["extra"],
    }


def _nil(text: str) -> str | None:
    return None if text == "-" else text


def _unescape(text: str) -> str:
    return text.replace('\\"', '"').replace("\\\\", "\\") if "\\" in text else text
