"""What a source connector produces: :class:`SourceRecord`, and how its key, timestamp and
origin headers are chosen by config (:class:`RecordShape`)."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

Headers = tuple[tuple[str, bytes], ...]

CONNECTOR_HEADER = "haeryu.connector"
"""Header naming the connector that produced a record."""
ORIGIN_HEADER_PREFIX = "haeryu.origin."
"""Prefix of the headers naming where a record came from (``haeryu.origin.file``, ...)."""
ERROR_HEADER = "haeryu.error"
"""Header of a dead letter: why the input could not be turned into a record."""


class SourceRecord(NamedTuple):
    """One record for Kafka.

    ``timestamp_ms`` ``None`` lets Kafka's producer stamp it (ingestion time);
    ``partition`` ``None`` lets the partitioner place it by key.  A named tuple, not a
    dataclass: connectors make hundreds of thousands per second.
    """

    topic: str
    value: bytes
    key: bytes | None = None
    timestamp_ms: int | None = None
    headers: Headers = ()
    partition: int | None = None


def origin_headers(connector: str, origin: Mapping[str, str]) -> Headers:
    """Headers naming the connector and the origin (``{"file": "/var/log/a.log"}``)."""
    extra = ((ORIGIN_HEADER_PREFIX + k, v.encode()) for k, v in origin.items())
    return ((CONNECTOR_HEADER, connector.encode()), *extra)


def now_ms() -> int:
    """Ingestion time: milliseconds since the epoch."""
    return time.time_ns() // 1_000_000


TimestampFormat = Literal["ms", "s", "us", "ns", "iso8601"]


class RecordShape(BaseModel):
    """Config shared by connectors with structured payloads: which field is the key and
    which the event time.

    ``key_field`` and ``timestamp_field`` are dotted paths into the parsed payload
    (``device.id``).  Without ``timestamp_field``, or when the payload lacks it, the
    record gets the ingestion time.
    """

    model_config = ConfigDict(extra="forbid")

    key_field: str | None = None
    timestamp_field: str | None = None
    timestamp_format: TimestampFormat = "ms"

    def key_getter(self) -> Callable[[Any], bytes | None] | None:
        """:meth:`key_of` compiled for a hot loop; ``None`` when no key is configured."""
        if self.key_field is None:
            return None
        get = field_getter(self.key_field)

        def key(payload: Any) -> bytes | None:
            found = get(payload)
            if found is None or type(found) is bytes:
                return found
            return str(found).encode()

        return key

    def key_of(self, payload: Any) -> bytes | None:
        """The key from ``payload`` (``None`` when unset or missing)."""
        if self.key_field is None:
            return None
        found = lookup(payload, self.key_field)
        if found is None:
            return None
        if isinstance(found, bytes):
            return found
        return str(found).encode()

    def timestamp_of(self, payload: Any) -> int | None:
        """Event time in ms from ``payload``, ``None`` when not configured or missing.

        Raises ``ValueError`` when the field is there but not a time of the format.
        """
        if self.timestamp_field is None:
            return None
        found = lookup(payload, self.timestamp_field)
        if found is None:
            return None
        return to_epoch_ms(found, self.timestamp_format)


def field_getter(dotted: str) -> Callable[[Any], Any]:
    """A fast ``lambda payload: lookup(payload, dotted)`` for hot loops."""
    if "." in dotted:
        return lambda payload: lookup(payload, dotted)

    def get(payload: Any) -> Any:
        if type(payload) is dict:
            return payload.get(dotted)
        return lookup(payload, dotted)

    return get


def lookup(payload: Any, dotted: str) -> Any:
    """``payload["a"]["b"]`` for ``"a.b"``; ``None`` when any step is missing."""
    node = payload
    for part in dotted.split("."):
        # dict first: the ABC check of Mapping costs more than the lookup itself.
        if type(node) is dict or isinstance(node, Mapping):
            if part not in node:
                return None
            node = node[part]
        else:
            return None
    return node


_SCALE = {"s": 1000.0, "ms": 1.0, "us": 1e-3, "ns": 1e-6}


def to_epoch_ms(value: Any, fmt: TimestampFormat) -> int:
    """Milliseconds since the epoch from a number of ``fmt`` units or an ISO 8601 string."""
    if fmt == "iso8601" or (isinstance(value, str) and not _numeric(value)):
        if not isinstance(value, str):
            raise ValueError(f"expected an ISO 8601 time, got {value!r}")
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(f"expected an ISO 8601 time, got {value!r}") from None
        if parsed.tzinfo is None:
            raise ValueError(f"ISO 8601 time without a zone: {value!r}")
        return int(parsed.timestamp() * 1000)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"expected a number of {fmt}, got {value!r}")
    return int(float(value) * _SCALE[fmt])


def _numeric(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
