"""One fake clock for every test: time moves only when the test says so."""

from __future__ import annotations

T0_MS = 1_700_000_000_000


class FakeClock:
    """A clock kept in milliseconds, read in the unit the code under test wants.

    Pass :meth:`ms` where the code takes wall-clock milliseconds (the log) and
    :meth:`seconds` where it takes a monotonic clock in seconds (the group coordinator).
    """

    def __init__(self, now_ms: int = T0_MS) -> None:
        self.now_ms = now_ms

    def ms(self) -> int:
        """The current time in whole milliseconds."""
        return self.now_ms

    def seconds(self) -> float:
        """The current time in seconds."""
        return self.now_ms / 1000

    def advance(self, *, ms: int = 0, seconds: float = 0.0) -> None:
        """Move time forward by ``ms`` milliseconds plus ``seconds`` seconds."""
        self.now_ms += ms + round(seconds * 1000)
