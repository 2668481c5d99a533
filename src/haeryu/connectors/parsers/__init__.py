"""Parsers turning one input (a log line, a syslog message) into a JSON-ready dict.

Each raises :class:`ParseError` with a reason when the input is not of its format; the
connector then sends the raw input to its dead-letter topic with that reason.
"""

from __future__ import annotations

from haeryu.connectors.parsers.errors import ParseError

__all__ = ["ParseError"]
