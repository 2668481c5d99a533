"""A sink posting incident events as JSON to a webhook (chat, paging, ticketing)."""

from __future__ import annotations

import httpx
import polars as pl

from haeryu.stream.sinks import Sink, SinkError


class WebhookSink(Sink):
    """POST each batch's rows to ``url`` as a JSON array; a failing endpoint fails the
    checkpoint (the rows come again after the restart: at-least-once).
    """

    def __init__(self, url: str, *, timeout_s: float = 5.0) -> None:
        self.url = url
        self.timeout_s = timeout_s
        self._pending: list[pl.DataFrame] = []
        self._client: httpx.Client | None = None

    def write(self, batch: pl.DataFrame) -> None:
        """Buffer the rows until the next flush."""
        if batch.height:
            self._pending.append(batch)

    def flush(self) -> None:
        """Send the buffered rows in one request."""
        if not self._pending:
            return
        rows = pl.concat(self._pending, how="diagonal_relaxed").write_json()
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout_s)
        try:
            response = self._client.post(
                self.url, content=rows, headers={"content-type": "application/json"}
            )
            response.raise_for_status()
        except httpx.HTTPError as e:
            raise SinkError(f"webhook {self.url}: {e}") from e
        self._pending.clear()
