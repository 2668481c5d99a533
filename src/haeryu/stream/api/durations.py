"""Durations as users write them ("10s", "1m30s", a timedelta) turned into milliseconds.

A bare number is refused (is 10 ten seconds or ten milliseconds?), except 0.  Settings
that take a plain number say their unit in their name (``max_wait_ms``).
"""

from __future__ import annotations

import re
from datetime import timedelta

from haeryu.stream.errors import PlanError

Duration = str | int | float | timedelta
"""A duration: ``"10s"``, ``"1m30s"``, ``"250ms"``, a :class:`timedelta`, or ``0``."""

_UNITS_MS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def to_ms(value: Duration, *, what: str = "duration") -> int:
    """Return ``value`` in whole milliseconds.

    Parameters
    ----------
    value
        ``"10s"``, ``"1m30s"``, ``"250ms"``, ``"2h"``, a :class:`~datetime.timedelta`,
        or ``0``.
    what
        Name used in the error message.

    Examples
    --------
    >>> to_ms("1m30s")
    90000
    >>> to_ms("250ms")
    250
    >>> to_ms(timedelta(seconds=2))
    2000
    """
    if isinstance(value, bool):
        raise PlanError(f"{what}: expected a duration such as '10s', got {value!r}")
    if isinstance(value, timedelta):
        return round(value.total_seconds() * 1000)
    if isinstance(value, int | float):
        if value < 0:
            raise PlanError(f"{what} must not be negative, got {value!r}")
        if value != 0:
            raise PlanError(
                f"{what}: a bare number has no unit; write '{value}ms' or '{value}s' "
                "(or a timedelta)"
            )
        return 0
    text = value.strip().replace(" ", "")
    total = 0.0
    pos = 0
    for match in _PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS_MS[match.group(2)]
        pos = match.end()
    if pos != len(text) or not text:
        raise PlanError(
            f"{what}: cannot read {value!r}; write it like '500ms', '10s', '5m', '1h' or '1m30s'"
        )
    return round(total)
