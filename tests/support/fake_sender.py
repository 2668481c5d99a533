"""A sender that keeps what connectors send, for tests of connector logic without Kafka."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from haeryu.connectors.runtime import (
    ConnectorContext,
    Delivery,
    MemoryPositions,
    PositionStore,
    RuntimeMetrics,
    SourceRecord,
)


class FakeSender:
    """Keeps what was sent; answers offsets 0, 1, 2, ... per topic."""

    def __init__(self) -> None:
        self.sent: list[SourceRecord] = []

    async def send(
        self, records: Sequence[SourceRecord], *, offsets: bool = True
    ) -> list[Delivery]:
        out = []
        for r in records:
            n = sum(1 for s in self.sent if s.topic == r.topic)
            self.sent.append(r)
            out.append(Delivery(r.topic, 0, n))
        return out if offsets else []

    async def send_values(
        self,
        topic: str,
        values: Sequence[bytes],
        headers: Sequence[tuple[str, bytes]] = (),
        keys: Sequence[bytes | None] | None = None,
    ) -> None:
        ks = keys if keys is not None else [None] * len(values)
        await self.send(
            [
                SourceRecord(topic, v, k, None, tuple(headers))
                for v, k in zip(values, ks, strict=True)
            ]
        )


def context(
    sender: FakeSender,
    stopping: asyncio.Event | None = None,
    positions: PositionStore | None = None,
) -> ConnectorContext:
    """A context for connector ``c1`` sending to ``sender``."""
    return ConnectorContext(
        "c1",
        sender,
        dead_letter_topic="c1.dead-letters",
        positions=positions if positions is not None else MemoryPositions(),
        metrics=RuntimeMetrics().for_connector("c1"),
        stopping=stopping or asyncio.Event(),
    )
