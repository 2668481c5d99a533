"""Syslog messages: RFC 5424 and the BSD format of RFC 3164, as sent over the network or
written to files.

Shared by the file connector (``/var/log/syslog`` lines) and the syslog server (UDP/TCP).
:func:`parse_syslog` tells the formats apart by the version after the priority
(``<34>1 ...`` is RFC 5424).  No I/O here: bytes in, :class:`SyslogMessage` out, or
:class:`~haeryu.connectors.parsers.ParseError` saying what was wrong.

RFC 3164 timestamps carry no year and no zone: the year is the one that puts the time
closest to ``now`` (so December lines read in January belong to last year) and the zone
is ``tz`` (UTC unless told).  A line without ``<PRI>`` -- as rsyslog writes its files -- is
accepted with ``facility`` and ``severity`` ``None``.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from haeryu.connectors.parsers.errors import ParseError

FACILITIES = [
    "kern",
    "user",
    "mail",
    "daemon",
    "auth",
    "syslog",
    "lpr",
    "news",
    "uucp",
    "cron",
    "authpriv",
    "ftp",
    "ntp",
    "security",
    "console",
    "solaris-cron",
    "local0",
    "local1",
    "local2",
    "local3",
    "local4",
    "local5",
    "local6",
    "local7",
]
SEVERITIES = ["emerg", "alert", "crit", "err", "warning", "notice", "info", "debug"]

_PRI = re.compile(rb"<(\d{1,3})>")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"], 1
    )
}
_BSD = re.compile(
    r"(?P<mon>[A-Z][a-z]{2}) +(?P<day>\d{1,2}) (?P<h>\d\d):(?P<m>\d\d):(?P<s>\d\d)"
    r"(?:\.(?P<frac>\d{1,6}))?"
    r"(?: (?P<host>[^ \[\]:]+(?= )))?"
    r" (?P<rest>.*)",
    re.DOTALL,
)
_TAG = re.compile(r"(?P<tag>[^ \[:]{1,48})(?:\[(?P<pid>[^\]]*)\])?: ?(?P<msg>.*)", re.DOTALL)
_SD_NAME = re.compile(r'[^ =\]"]{1,32}')
NIL = "-"


@dataclass(frozen=True, slots=True)
class SyslogMessage:
    """One parsed syslog message (RFC 5424 field names; ``version`` 0 for RFC 3164)."""

    message: str
    facility: int | None = None
    severity: int | None = None
    version: int = 0
    timestamp_ms: int | None = None
    hostname: str | None = None
    app_name: str | None = None
    procid: str | None = None
    msgid: str | None = None
    structured_data: dict[str, dict[str, str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict, with ``facility_name`` and ``severity_name`` added."""
        out = asdict(self)
        if self.facility is not None:
            out["facility_name"] = FACILITIES[self.facility]
        if self.severity is not None:
            out["severity_name"] = SEVERITIES[self.severity]
        return out


def parse_syslog(data: bytes, *, now: datetime | None = None, tz: tzinfo = UTC) -> SyslogMessage:
    """Parse one message of either format (trailing newlines ignored)."""
    pri, rest = _priority(data)
    if rest[:2] == b"1 ":
        return _parse_5424(pri, rest[2:])
    return _parse_3164(pri, rest, now=now, tz=tz)


def parse_rfc5424(data: bytes) -> SyslogMessage:
    """Parse an RFC 5424 message: ``<PRI>1 TIMESTAMP HOST APP PROCID MSGID SD [MSG]``."""
    pri, rest = _priority(data)
    if pri is None:
        raise ParseError("RFC 5424 message without <PRI>")
    if rest[:2] != b"1 ":
        raise ParseError("RFC 5424 message without version 1 after <PRI>")
    return _parse_5424(pri, rest[2:])


def parse_rfc3164(data: bytes, *, now: datetime | None = None, tz: tzinfo = UTC) -> SyslogMessage:
    """Parse a BSD syslog line: ``[<PRI>]Mmm dd hh:mm:ss HOST TAG[PID]: MSG``."""
    pri, rest = _priority(data)
    return _parse_3164(pri, rest, now=now, tz=tz)


def _priority(data: bytes) -> tuple[int | None, bytes]:
    data = data.rstrip(b"\r\n\x00")
    match = _PRI.match(data)
    if match is None:
        if data.startswith(b"<"):
            raise ParseError("bad <PRI>: expected '<' then 1-3 digits then '>'")
        return None, data
    pri = int(match.group(1))
    if pri > 191:
        raise ParseError(f"priority {pri} out of range 0-191")
    return pri, data[match.end() :]


def _split_pri(pri: int | None) -> tuple[int | None, int | None]:
    return (None, None) if pri is None else (pri >> 3, pri & 7)


def _decode(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def _parse_3164(pri: int | None, rest: bytes, *, now: datetime | None, tz: tzinfo) -> SyslogMessage:
    text = _decode(rest)
    match = _BSD.match(text)
    if match is None or match["mon"] not in _MONTHS:
        raise ParseError("not RFC 3164: expected 'Mmm dd hh:mm:ss' after the priority")
    facility, severity = _split_pri(pri)
    stamp = _bsd_time(match, now or datetime.now(tz), tz)
    body = match["rest"]
    tag = _TAG.match(body)
    if tag is not None:
        app, pid, message = tag["tag"], tag["pid"], tag["msg"]
    else:
        app, pid, message = None, None, body
    return SyslogMessage(
        message=message,
        facility=facility,
        severity=severity,
        version=0,
        timestamp_ms=stamp,
        hostname=match["host"],
        app_name=app,
        procid=pid,
    )


def _bsd_time(match: re.Match[str], now: datetime, tz: tzinfo) -> int:
    frac = match["frac"] or "0"
    try:
        parts = dict(
            month=_MONTHS[match["mon"]],
            day=int(match["day"]),
            hour=int(match["h"]),
            minute=int(match["m"]),
            second=int(match["s"]),
            microsecond=int(frac.ljust(6, "0")),
            tzinfo=tz,
        )
        local_now = now.astimezone(tz)
        candidates = []
        for year in (local_now.year - 1, local_now.year, local_now.year + 1):
            try:
                candidates.append(datetime(year, **parts))  # type: ignore[arg-type]
            except ValueError:
                continue  # 29 Feb in a common year
        if not candidates:
            raise ValueError("no such day")
    except ValueError as exc:
        raise ParseError(f"bad RFC 3164 time: {exc}") from None
    best = min(candidates, key=lambda c: abs(c - local_now - timedelta(0)))
    return int(best.timestamp() * 1000)


def _parse_5424(pri: int | None, rest: bytes) -> SyslogMessage:
    fields = rest.split(b" ", 5)
    if len(fields) < 6:
        # SD may end the message without a trailing space.
        if len(fields) == 5:
            fields.append(b"")
        else:
            raise ParseError(
                "not RFC 5424: expected TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA"
            )
    stamp_raw, host, app, procid, msgid, tail = fields
    facility, severity = _split_pri(pri)
    stamp = None if stamp_raw == b"-" else _iso_time(_decode(stamp_raw))
    sd, message = _structured_data(tail)
    if message.startswith(b"\xef\xbb\xbf"):
        message = message[3:]
    return SyslogMessage(
        message=_decode(message),
        facility=facility,
        severity=severity,
        version=1,
        timestamp_ms=stamp,
        hostname=_nil(host),
        app_name=_nil(app),
        procid=_nil(procid),
        msgid=_nil(msgid),
        structured_data=sd,
    )


def _nil(raw: bytes) -> str | None:
    text = _decode(raw)
    return None if text == NIL else text


def _iso_time(text: str) -> int:
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ParseError(f"bad RFC 5424 timestamp {text!r}") from None
    if parsed.tzinfo is None:
        raise ParseError(f"RFC 5424 timestamp without a zone: {text!r}")
    return int(parsed.timestamp() * 1000)


def _structured_data(tail: bytes) -> tuple[dict[str, dict[str, str]], bytes]:
    """Parse ``-`` or ``[id k="v" ...]...`` at the start of ``tail``; return it and the MSG."""
    if tail == b"-" or tail.startswith(b"- "):
        return {}, tail[2:]
    if not tail.startswith(b"["):
        raise ParseError("not RFC 5424: STRUCTURED-DATA must be '-' or start with '['")
    text = _decode(tail)
    out: dict[str, dict[str, str]] = {}
    i = 0
    while i < len(text) and text[i] == "[":
        i, sd_id, params = _sd_element(text, i + 1)
        out[sd_id] = params
    if i < len(text):
        if text[i] != " ":
            raise ParseError("not RFC 5424: expected a space after STRUCTURED-DATA")
        i += 1
    return out, text[i:].encode()


def _sd_element(text: str, i: int) -> tuple[int, str, dict[str, str]]:
    match = _SD_NAME.match(text, i)
    if match is None:
        raise ParseError("not RFC 5424: SD-ELEMENT without an SD-ID")
    sd_id = match.group()
    i = match.end()
    params: dict[str, str] = {}
    while True:
        if i >= len(text):
            raise ParseError("not RFC 5424: SD-ELEMENT not closed by ']'")
        if text[i] == "]":
            return i + 1, sd_id, params
        if text[i] != " ":
            raise ParseError(f"not RFC 5424: unexpected {text[i]!r} in SD-ELEMENT {sd_id}")
        name = _SD_NAME.match(text, i + 1)
        if name is None or text[name.end() : name.end() + 2] != '="':
            raise ParseError(f'not RFC 5424: expected PARAM-NAME="VALUE" in {sd_id}')
        i = name.end() + 2
        value: list[str] = []
        while True:
            if i >= len(text):
                raise ParseError(f"not RFC 5424: PARAM-VALUE of {sd_id} not closed by '\"'")
            ch = text[i]
            if ch == "\\" and i + 1 < len(text) and text[i + 1] in '"\\]':
                value.append(text[i + 1])
                i += 2
                continue
            if ch == '"':
                i += 1
                break
            value.append(ch)
            i += 1
        params[name.group()] = "".join(value)
