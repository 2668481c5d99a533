"""Run each connector as a task; restart a failed one with back-off, logging why."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from haeryu.connectors.runtime.context import ConnectorContext, SourceConnector

log = logging.getLogger("haeryu.connect")

State = Literal["starting", "running", "backoff", "finished", "stopped"]

INITIAL_BACKOFF_S = 0.5
# A connector that ran this long before failing starts its back-off from the beginning.
HEALTHY_AFTER_S = 60.0


@dataclass
class ConnectorStatus:
    """What the status line shows of one connector."""

    name: str
    state: State = "starting"
    last_error: str | None = None
    retry_in_s: float | None = None


@dataclass(frozen=True)
class Supervised:
    """A connector to supervise: ``make`` builds a fresh instance for each (re)start."""

    context: ConnectorContext
    make: Callable[[], SourceConnector]
    backoff_max_s: float = 30.0


class Supervisor:
    """Runs connectors until :meth:`stop`; each failure is logged, then retried.

    Back-off doubles from 0.5 s up to the connector's ``restart_backoff_max_s``.
    """

    def __init__(self, connectors: list[Supervised], stopping: asyncio.Event) -> None:
        self.connectors = connectors
        self.stopping = stopping
        self.status = {c.context.name: ConnectorStatus(c.context.name) for c in connectors}

    async def run(self) -> None:
        """Run every connector until all finished or :meth:`stop` was called."""
        tasks = [
            asyncio.create_task(self._supervise(c), name=f"connector-{c.context.name}")
            for c in self.connectors
        ]
        try:
            await asyncio.gather(*tasks)
        finally:
            for t in tasks:
                t.cancel()
            for t in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await t

    def stop(self) -> None:
        """Ask every connector to return."""
        self.stopping.set()

    async def _supervise(self, item: Supervised) -> None:
        ctx = item.context
        status = self.status[ctx.name]
        first_backoff = min(INITIAL_BACKOFF_S, item.backoff_max_s)
        backoff = first_backoff
        while not self.stopping.is_set():
            status.state = "running"
            status.retry_in_s = None
            started = time.monotonic()
            try:
                connector = item.make()
                await connector.run(ctx)
            except asyncio.CancelledError:
                raise
            except (Exception, SystemExit) as exc:  # any failure is logged and retried
                if self.stopping.is_set():
                    break
                if time.monotonic() - started > HEALTHY_AFTER_S:
                    backoff = first_backoff
                status.state = "backoff"
                status.last_error = f"{type(exc).__name__}: {exc}"
                status.retry_in_s = backoff
                ctx.metrics.failed()
                ctx.metrics.restarted()
                log.warning(
                    "connector %s failed (%s); restarting in %.2f s",
                    ctx.name,
                    status.last_error,
                    backoff,
                    exc_info=log.isEnabledFor(logging.DEBUG),
                )
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.stopping.wait(), backoff)
                backoff = min(backoff * 2, item.backoff_max_s)
                continue
            if not self.stopping.is_set():
                status.state = "finished"
                log.info("connector %s finished", ctx.name)
                return
        status.state = "stopped"
