"""Fetches parked until data arrives (Fetch's ``max_wait`` / ``min_bytes``)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable

TopicPartition = tuple[str, int]


class DataWaiters:
    """Fetches parked until data arrives on one of their partitions. Event loop only."""

    def __init__(self) -> None:
        self._waiters: dict[TopicPartition, list[asyncio.Future[None]]] = {}

    def notify(self, tp: TopicPartition) -> None:
        waiters = self._waiters.pop(tp, None)
        if waiters:
            for fut in waiters:
                if not fut.done():
                    fut.set_result(None)

    async def wait(self, tps: Iterable[TopicPartition], timeout_s: float) -> None:
        """Return when any of ``tps`` gets data, or after ``timeout_s``."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        keys = list(tps)
        for tp in keys:
            self._waiters.setdefault(tp, []).append(fut)
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(fut, timeout_s)
        finally:
            for tp in keys:
                waiters = self._waiters.get(tp)
                if waiters is not None:
                    with contextlib.suppress(ValueError):
                        waiters.remove(fut)
                    if not waiters:
                        del self._waiters[tp]
