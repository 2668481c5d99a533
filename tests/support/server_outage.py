"""Stop a server at a fixed point of a stream and bring it back once a sink has stalled.

Used as a ``map_batches`` step: the batch that first holds a row with ``column >=
at`` stops the server before the sink sees that batch, so the outage always starts at
the same place in the stream, however fast the pipeline runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import polars as pl


class Restartable(Protocol):
    def stop(self, timeout: float = 30.0) -> None: ...
    def start(self, timeout: float = 30.0) -> None: ...


class Outage:
    """``map_batches`` function that stops ``server`` once; restarts it when ``stalled()``."""

    def __init__(
        self,
        server: Restartable,
        *,
        column: str,
        at: int,
        stalled: Callable[[], bool],
        timeout: float = 60.0,
    ) -> None:
        self.server = server
        self.column = column
        self.at = at
        self.stalled = stalled
        self.timeout = timeout
        self.thread: threading.Thread | None = None
        self.restarted = threading.Event()
        self.error: BaseException | None = None

    def __call__(self, frame: pl.DataFrame) -> pl.DataFrame:
        if self.thread is None and frame.height and frame[self.column].max() >= self.at:  # type: ignore[operator]
            self.server.stop()
            self.thread = threading.Thread(target=self._restart_when_stalled, daemon=True)
            self.thread.start()
        return frame

    def _restart_when_stalled(self) -> None:
        deadline = time.monotonic() + self.timeout
        try:
            while not self.stalled():
                if time.monotonic() > deadline:
                    raise TimeoutError("the sink never stalled during the outage")
                time.sleep(0.01)
        except BaseException as exc:  # reported by finish(), not lost in the thread
            self.error = exc
        finally:
            self.server.start()
            self.restarted.set()

    def finish(self) -> None:
        """Wait for the restart; fail if the outage never happened or never stalled."""
        assert self.thread is not None, "the stream never reached the outage point"
        self.thread.join(self.timeout)
        assert self.restarted.is_set(), "the server was not restarted"
        if self.error is not None:
            raise self.error
