"""Turn one log entry (a line, or lines joined) into a record's value, key and event time,
by the format a file connector is configured with."""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import orjson

from haeryu.connectors.parsers.access_log import parse_access_log
from haeryu.connectors.parsers.errors import ParseError
from haeryu.connectors.parsers.syslog import parse_syslog

LineFormat = Literal["raw", "json", "syslog", "combined"]
"""``raw``: the line as it is; ``json``: JSON lines, checked and kept as written;
``syslog``: RFC 3164/5424 lines to JSON; ``combined``: nginx/Apache access logs to JSON."""

Parsed = tuple[bytes, bytes | None, int | None]
"""(value, key, event time in ms) -- key and time ``None`` when not known."""

KeyOf = Callable[[object], bytes | None]
TimeOf = Callable[[object], int | None]


def line_parser(fmt: LineFormat, key_of: KeyOf, time_of: TimeOf) -> Callable[[bytes], Parsed]:
    """A function from an entry to (value, key, time); it raises :class:`ParseError`.

    ``key_of`` and ``time_of`` pick the key and event time from the parsed document
    (JSON, syslog and combined formats; see ``RecordShape``).  For syslog and combined
    lines the time parsed from the line is the event time unless ``time_of`` finds one.
    """
    if fmt == "raw":
        return _raw
    if fmt == "json":

        def parse_json(line: bytes) -> Parsed:
            try:
                doc = orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise ParseError(f"not JSON: {exc}") from None
            try:
                return line, key_of(doc), time_of(doc)
            except ValueError as exc:
                raise ParseError(str(exc)) from None

        return parse_json

    def parse_structured(line: bytes) -> Parsed:
        doc = parse_syslog(line).to_dict() if fmt == "syslog" else parse_access_log(line)
        try:
            stamp = time_of(doc)
        except ValueError as exc:
            raise ParseError(str(exc)) from None
        if stamp is None:
            stamp = doc.get("timestamp_ms")
        return orjson.dumps(doc), key_of(doc), stamp

    return parse_structured


def _raw(line: bytes) -> Parsed:
    return line, None, None
