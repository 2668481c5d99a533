"""What went wrong with a table's store, said so that the user knows what to do.

Three kinds: an outage (retried: the store comes back), a table whose log cannot be
read (a corrupt or foreign ``_delta_log`` entry: retrying cannot help) and a store that
refuses the credentials.
"""

from __future__ import annotations

import errno
import json
import re
from pathlib import Path

from haeryu.stream.sinks import SinkError


class StoreUnavailableError(SinkError):
    """The table's store did not answer within ``commit_timeout`` (retried by the worker)."""


class BrokenTableError(SinkError):
    """The table's Delta log cannot be read: nothing is written until it is repaired."""


class StoreRefusedError(SinkError):
    """The store refused the credentials or the bucket: fix the configuration."""


_BROKEN_LOG = ("Json error", "Unsupported", "Invalid table", "InvalidTableLocation")
_REFUSED = (
    "403",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "NoSuchBucket",
    "Forbidden",
)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_FRAME = re.compile(r"^\s*(\d+: |at )")


def first_line(exc: BaseException) -> str:
    """The message without deltalake's backtrace: its first line and its root cause."""
    lines = [
        _ANSI.sub("", line).replace("\u21b3", "").strip()
        for line in str(exc).splitlines()
        if line.strip() and not _FRAME.match(line)
    ]
    if not lines:
        return type(exc).__name__
    return lines[0] if len(lines) == 1 else f"{lines[0]}: {lines[-1]}"


def classify(uri: str, exc: BaseException, what: str) -> SinkError | None:
    """A non-retryable error for ``exc``, or ``None`` when it may be an outage."""
    text = str(exc)
    if any(marker in text for marker in _BROKEN_LOG):
        entry = _bad_log_entry(uri, foreign="Json error" not in text)
        where = f" (entry {entry})" if entry else ""
        return BrokenTableError(
            f"{uri}: cannot {what}: its Delta log{where} is corrupt or was written with "
            f"table features haeryu's deltalake does not support: {first_line(exc)}. "
            "Nothing was committed and the rows stay in the input topic; restore the entry "
            "from a backup or move the table aside, then restart the pipeline."
        )
    if "://" in uri and any(marker in text for marker in _REFUSED):
        return StoreRefusedError(
            f"{uri}: the store refused access ({first_line(exc)}): check AWS_ACCESS_KEY_ID "
            "and AWS_SECRET_ACCESS_KEY in storage_options, and that the bucket exists"
        )
    return None


def outage_hint(uri: str, exc: BaseException) -> str:
    """What the user can do about an error that outlasted the retries."""
    if (isinstance(exc, OSError) and exc.errno == errno.ENOSPC) or (
        "No space left" in str(exc) or "os error 28" in str(exc)
    ):
        return (
            " (the disk holding the table is full: free space there; the rows stay "
            "buffered and the checkpoint waits, nothing is committed half)"
        )
    if "://" in uri and any(
        marker in str(exc) for marker in ("Connection refused", "tcp connect", "dns error")
    ):
        return (
            " (nothing answers at AWS_ENDPOINT_URL: start the store or correct the "
            "endpoint in storage_options)"
        )
    if "://" in uri:
        return (
            " (check that the store runs and AWS_ENDPOINT_URL, the credentials and "
            "AWS_REGION in storage_options)"
        )
    return ""


def _bad_log_entry(uri: str, foreign: bool) -> str | None:
    """The newest local log entry that is not JSON lines, or (``foreign``) that changes
    the protocol; ``None`` when not found."""
    if "://" in uri:
        return None
    log = Path(uri, "_delta_log")
    try:
        entries = sorted(log.glob("*.json"), reverse=True)
    except OSError:
        return None
    for entry in entries:
        try:
            actions = [json.loads(line) for line in entry.read_text().splitlines() if line.strip()]
        except (OSError, ValueError):
            return str(entry)
        if foreign and any("protocol" in action for action in actions):
            return str(entry)
    return None
