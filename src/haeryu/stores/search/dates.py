"""Dates as Elasticsearch reads them: ISO 8601 strings, epoch milliseconds, date math."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from haeryu.stores.search.errors import SearchError

_UNITS = {
    "y": timedelta(days=365),
    "M": timedelta(days=30),
    "w": timedelta(weeks=1),
    "d": timedelta(days=1),
    "h": timedelta(hours=1),
    "H": timedelta(hours=1),
    "m": timedelta(minutes=1),
    "s": timedelta(seconds=1),
}
_MATH = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")


def parse_date(value: object, *, now: datetime | None = None, field: str = "") -> datetime:
    """A UTC datetime from an ISO string, epoch millis (number or digits) or date math.

    Raises a 400 :class:`SearchError` (``parse_exception``) for anything else.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if isinstance(value, bool):
        raise _bad(value, field)
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value / 1000, UTC)
    if not isinstance(value, str) or not value:
        raise _bad(value, field)
    text = value.strip()
    if text.startswith("now"):
        return _math(now or datetime.now(UTC), text[3:], value, field)
    if "||" in text:
        base, _, math = text.partition("||")
        return _math(parse_date(base, field=field), math, value, field)
    if text.lstrip("-").isdigit():
        return datetime.fromtimestamp(int(text) / 1000, UTC)
    try:
        parsed = datetime.fromisoformat(text.replace("z", "Z"))
    except ValueError:
        raise _bad(value, field) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _math(base: datetime, math: str, original: object, field: str) -> datetime:
    position = 0
    result = base
    for m in _MATH.finditer(math):
        if m.start() != position:
            raise _bad(original, field)
        position = m.end()
        if m.group(4):
            result = _round(result, m.group(4))
        else:
            delta = _UNITS[m.group(3)] * int(m.group(2))
            result = result + delta if m.group(1) == "+" else result - delta
    if position != len(math):
        raise _bad(original, field)
    return result


def _round(value: datetime, unit: str) -> datetime:
    value = value.astimezone(UTC)
    if unit == "y":
        return value.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return value.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit in ("d", "w"):
        day = value.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday()) if unit == "w" else day
    if unit in ("h", "H"):
        return value.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return value.replace(second=0, microsecond=0)
    return value.replace(microsecond=0)


def iso(value: datetime) -> str:
    """``2026-01-01T00:00:00.000Z``: how dates are stored and shown."""
    if value.utcoffset():
        value = value.astimezone(UTC)
    return value.isoformat(timespec="milliseconds")[:23] + "Z"


def epoch_millis(value: datetime) -> int:
    """Milliseconds since the epoch."""
    return int(value.timestamp() * 1000)


def _bad(value: object, field: str) -> SearchError:
    where = f" for field [{field}]" if field else ""
    return SearchError(
        400,
        "parse_exception",
        f"failed to parse date [{value}]{where}: expected an ISO 8601 date, epoch "
        "milliseconds or date math like now-1h",
    )
