"""The one error every parser raises."""

from __future__ import annotations


class ParseError(ValueError):
    """The input is not of the parser's format; the message says why."""
