"""Event-time window specifications and the assignment of records to windows.

>>> from haeryu.stream import windows
>>> windows.tumbling("10s")
Tumbling(size_ms=10000, offset_ms=0)
>>> windows.hopping("1m", every="10s").size_ms
60000
>>> windows.session(gap="30s").gap_ms
30000

Windows are half-open intervals ``[start, end)`` in epoch milliseconds.  Tumbling and
hopping windows are aligned to the epoch (plus ``offset``); a session window of a key
grows while records keep arriving within ``gap`` of each other.
"""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from haeryu.stream.api.durations import Duration, to_ms
from haeryu.stream.errors import PlanError

WINDOW_START = "window_start"
"""Output column holding the window start (Datetime, ms, UTC)."""
WINDOW_END = "window_end"
"""Output column holding the window end, exclusive (Datetime, ms, UTC)."""


@dataclass(frozen=True, slots=True)
class Tumbling:
    """Fixed-size, non-overlapping windows."""

    size_ms: int
    offset_ms: int = 0

    def assign(self, time: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
        """Start and end of the one window holding each event time."""
        start = ((time - self.offset_ms) // self.size_ms) * self.size_ms + self.offset_ms
        return start, start + self.size_ms


@dataclass(frozen=True, slots=True)
class Hopping:
    """Fixed-size windows starting every ``hop_ms``; a record falls into several."""

    size_ms: int
    hop_ms: int
    offset_ms: int = 0

    @property
    def per_record(self) -> int:
        """How many windows hold each record (at most)."""
        return -(-self.size_ms // self.hop_ms)

    def assign_all(self, time: pl.Expr) -> pl.Expr:
        """List of the starts of every window holding each event time."""
        last = ((time - self.offset_ms) // self.hop_ms) * self.hop_ms + self.offset_ms
        first = last - (self.per_record - 1) * self.hop_ms
        return pl.int_ranges(first, last + 1, self.hop_ms, dtype=pl.Int64)


@dataclass(frozen=True, slots=True)
class Session:
    """Per-key windows closed by ``gap_ms`` without records."""

    gap_ms: int


WindowSpec = Tumbling | Hopping | Session
"""Any window specification."""


def tumbling(size: Duration, *, offset: Duration = 0) -> Tumbling:
    """Fixed windows of ``size`` that do not overlap.

    Parameters
    ----------
    size
        Window length, e.g. ``"10s"``.
    offset
        Shift of the window boundaries from the epoch, e.g. ``"9h"`` for local days.
    """
    size_ms = to_ms(size, what="window size")
    if size_ms <= 0:
        raise PlanError("a tumbling window needs a positive size, e.g. tumbling('10s')")
    return Tumbling(size_ms, to_ms(offset, what="window offset") % size_ms)


def hopping(size: Duration, *, every: Duration, offset: Duration = 0) -> Hopping:
    """Windows of ``size`` starting ``every`` interval; they overlap when every < size.

    Parameters
    ----------
    size
        Window length, e.g. ``"1m"``.
    every
        Distance between window starts, e.g. ``"10s"``.
    offset
        Shift of the window boundaries from the epoch.
    """
    size_ms, hop_ms = to_ms(size, what="window size"), to_ms(every, what="hop")
    if size_ms <= 0 or hop_ms <= 0:
        raise PlanError("a hopping window needs a positive size and hop")
    if hop_ms > size_ms:
        raise PlanError(f"hop ({every}) is longer than the window ({size}): records would be lost")
    return Hopping(size_ms, hop_ms, to_ms(offset, what="window offset") % hop_ms)


def session(gap: Duration) -> Session:
    """Windows per key that stay open while records arrive less than ``gap`` apart.

    A session covers ``[first event time, last event time + gap)``.
    """
    gap_ms = to_ms(gap, what="session gap")
    if gap_ms <= 0:
        raise PlanError("a session window needs a positive gap, e.g. session('30s')")
    return Session(gap_ms)
