"""Elasticsearch / OpenSearch sink: documents through the ``_bulk`` API with httpx.

Every row becomes one document with a deterministic ``_id``: the value of the ``id``
column, or ``topic-partition-offset`` of the record it came from.  A replay after a
crash indexes the same ids again and overwrites them, so the index never holds a record
twice (at-least-once delivery, exactly-once contents).

While the cluster is unreachable, answers 429 or 5xx, or rejects items with 429 (its
write queue is full), :meth:`ElasticsearchSink.flush` raises
:class:`~haeryu.stream.sinks.Backpressure` with a growing back-off: the checkpoint
waits, and goes on by itself when the cluster answers again.  Only the items not yet
acknowledged are sent again.  Once ``max_buffer_docs`` are held, :meth:`write`
refuses new frames the same way.  A document the cluster refuses for what it is (a
mapping conflict: a 400 item) fails the checkpoint with the cluster's reason
(``on_rejected="fail"``) or is counted and logged (``"log"``).

Tested against haeryu's own Elasticsearch-compatible API (``haeryu search serve``): no
Elasticsearch server can be installed where haeryu is developed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, NoReturn

import httpx
import polars as pl

from haeryu.stream.sinks import Backpressure, PlanError, Sink, SinkContext, SinkError

log = logging.getLogger(__name__)

# Columns the engine adds to every row; the default id is made of the first three.
TOPIC, PARTITION, OFFSET, TIMESTAMP = "_topic", "_partition", "_offset", "_timestamp"
RETRY_STATUSES = frozenset({429, 502, 503, 504})


def document_ids(frame: pl.DataFrame, id_column: str | None) -> pl.Series:
    """The ``_id`` of each row: the ``id_column`` as text, or ``topic-partition-offset``."""
    if id_column is not None:
        if id_column not in frame.columns:
            raise PlanError(f"Elasticsearch sink: id column {id_column!r} is not in the frame")
        ids = frame[id_column].cast(pl.String)
        if ids.null_count():
            raise SinkError(
                f"Elasticsearch sink: {ids.null_count()} rows have no {id_column!r}; "
                "a document needs an id so that a replay overwrites it"
            )
        return ids
    missing = [c for c in (TOPIC, PARTITION, OFFSET) if c not in frame.columns]
    if missing:
        raise PlanError(
            f"Elasticsearch sink: the frame has no {missing} to make ids from; "
            "name a column that identifies each row with `id=`"
        )
    return frame.select(
        pl.concat_str([pl.col(TOPIC), pl.col(PARTITION), pl.col(OFFSET)], separator="-")
    ).to_series()


def bulk_lines(
    frame: pl.DataFrame,
    *,
    index: str,
    ids: pl.Series,
    columns: Sequence[str],
    op_type: str = "index",
) -> list[bytes]:
    """One ``action\\ndocument\\n`` entry per row, as bytes."""
    head = json.dumps({op_type: {"_index": index}})[:-2] + ","  # '{"index": {"_index": "x",'
    action = pl.lit(head) + pl.struct(ids.alias("_id")).struct.json_encode().str.slice(1) + "}"
    source = pl.struct([pl.col(c) for c in columns]).struct.json_encode()
    entries = frame.select(pl.concat_str([action, pl.lit("\n"), source, pl.lit("\n")]))
    return [s.encode() for s in entries.to_series().to_list()]


@dataclass
class ElasticsearchSink(Sink):
    """Index frames as documents through the ``_bulk`` API of Elasticsearch or OpenSearch.

    Parameters
    ----------
    url
        Base URL of the cluster, e.g. ``http://127.0.0.1:9200``.
    index
        Index (or data stream alias) the documents go to.
    id
        Column holding each document's id; default ``topic-partition-offset``.
    columns
        Columns sent as fields; default every column not starting with ``_``.
    timestamp_field
        Field that gets the Kafka record timestamp (``_timestamp``) when the row has no
        column of that name; ``None`` leaves it out.  ``@timestamp`` is what Kibana and
        Grafana look for.
    mapping
        Create-index body (``{"mappings": ...}``) sent when the index does not exist yet.
    username, password, api_key
        Credentials (basic auth, or an API key).
    batch_docs
        Documents per bulk request.
    max_buffer_docs
        Bound of the buffer; beyond it :meth:`write` raises Backpressure while the
        cluster cannot take the documents.
    on_rejected
        What a document the cluster refuses (400 item) does: ``fail`` the checkpoint
        with the reason, or ``log`` it and go on.
    """

    url: str
    index: str
    id: str | None = None
    columns: Sequence[str] | None = None
    timestamp_field: str | None = "@timestamp"
    mapping: dict[str, Any] | None = None
    username: str | None = None
    password: str | None = None
    api_key: str | None = None
    batch_docs: int = 2_000
    max_buffer_docs: int = 100_000
    on_rejected: Literal["fail", "log"] = "fail"
    timeout: float = 30.0
    max_backoff: float = 5.0
    name: str = "elasticsearch"
    docs_written: int = 0
    docs_rejected: int = 0
    outages: int = 0
    _client: httpx.Client | None = field(default=None, repr=False)
    _buffer: list[bytes] = field(default_factory=list, repr=False)
    _backoff: float = 0.0

    def open(self, context: SinkContext) -> None:
        """Check the cluster answers; create the index with ``mapping`` if it is missing."""
        self.close()  # opened again after a worker's rewind: one client at a time
        headers = {"Content-Type": "application/x-ndjson"}
        if self.api_key:
            headers["Authorization"] = f"ApiKey {self.api_key}"
        auth = (self.username, self.password or "") if self.username else None
        self._client = httpx.Client(
            base_url=self.url, timeout=self.timeout, headers=headers, auth=auth
        )
        try:
            answer = self._client.get("/")
            if answer.status_code < 400 and self.mapping is not None:
                answer = self._create_index(self._client)
        except httpx.TransportError as exc:
            raise SinkError(
                f"cannot reach Elasticsearch at {self.url}: {exc}; start it or fix `url`"
            ) from exc
        if answer.status_code in (401, 403):
            raise SinkError(
                f"Elasticsearch at {self.url} refused the credentials ({answer.status_code}); "
                "fix username/password or api_key"
            )
        if answer.status_code >= 400:
            raise SinkError(
                f"Elasticsearch at {self.url} answered {answer.status_code}: {answer.text}"
            )

    def _create_index(self, client: httpx.Client) -> httpx.Response:
        if client.head(f"/{self.index}").status_code != 404:
            return httpx.Response(200)
        answer = client.put(
            f"/{self.index}", json=self.mapping, headers={"Content-Type": "application/json"}
        )
        if answer.status_code == 400 and "already_exists" in answer.text:
            return httpx.Response(200)  # another worker created it first
        return answer

    def _columns(self, frame: pl.DataFrame) -> list[str]:
        if self.columns is not None:
            missing = [c for c in self.columns if c not in frame.columns]
            if missing:
                raise PlanError(f"Elasticsearch sink: columns {missing} are not in the frame")
            return list(self.columns)
        return [c for c in frame.columns if not c.startswith("_")]

    def write(self, batch: pl.DataFrame) -> None:
        """Turn the rows into bulk entries and buffer them; send full batches."""
        if len(self._buffer) >= self.max_buffer_docs:
            self._drain()  # raises Backpressure while the cluster cannot take them
        if batch.height == 0:
            return
        columns = self._columns(batch)
        ts = self.timestamp_field
        if ts is not None and ts not in batch.columns and TIMESTAMP in batch.columns:
            batch = batch.with_columns(pl.col(TIMESTAMP).alias(ts))
            columns.append(ts)
        if not columns:
            raise PlanError(
                "Elasticsearch sink: no columns to send (names starting with _ are left "
                "out); name them with `columns=`"
            )
        ids = document_ids(batch, self.id)
        self._buffer.extend(bulk_lines(batch, index=self.index, ids=ids, columns=columns))
        if len(self._buffer) >= self.batch_docs:
            try:
                self._drain()
            except Backpressure as exc:  # kept; the checkpoint's flush retries
                log.warning("Elasticsearch sink: %s", exc)

    def flush(self) -> None:
        """Send every buffered document; Backpressure while the cluster cannot take them."""
        self._drain()

    def close(self) -> None:
        """Close the HTTP client."""
        if self._client is not None:
            self._client.close()
            self._client = None

    def _drain(self) -> None:
        while self._buffer:
            chunk = self._buffer[: self.batch_docs]
            retry, why = self._send(chunk)
            # acknowledged items leave the buffer; the ones to retry go first next time
            self._buffer = retry + self._buffer[len(chunk) :]
            if retry:
                self._lost(f"{len(retry)} documents not taken, e.g. {why}")
        self._backoff = 0.0

    def _send(self, chunk: list[bytes]) -> tuple[list[bytes], str]:
        """Send one bulk request; the entries to send again and why."""
        assert self._client is not None, "open() first"
        try:
            answer = self._client.post("/_bulk", content=b"".join(chunk))
        except httpx.TransportError as exc:
            self._lost(str(exc) or type(exc).__name__)
        if answer.status_code in RETRY_STATUSES or answer.status_code >= 500:
            self._lost(f"{answer.status_code}: {answer.text[:200]}")
        if answer.status_code >= 400:
            raise SinkError(
                f"Elasticsearch refused a bulk request ({answer.status_code}: "
                f"{answer.text[:500]}); the documents stay unwritten and the checkpoint fails"
            )
        items = answer.json().get("items", [])
        if len(items) != len(chunk):
            raise SinkError(f"Elasticsearch answered {len(items)} items for {len(chunk)} documents")
        retry: list[bytes] = []
        why = ""
        rejected: list[str] = []
        for entry, item in zip(chunk, items, strict=True):
            result = next(iter(item.values()))
            status = int(result.get("status", 500))
            if status < 300:
                self.docs_written += 1
            elif status in RETRY_STATUSES or status >= 500:
                retry.append(entry)
                why = why or f"{status} {_reason(result.get('error'))}"
            else:
                rejected.append(f"[{result.get('_id')}] {status} {_reason(result.get('error'))}")
        if rejected:
            self.docs_rejected += len(rejected)
            if self.on_rejected == "fail":
                self._buffer = retry + self._buffer[len(chunk) :]
                raise SinkError(
                    f"Elasticsearch rejected {len(rejected)} documents, e.g. {rejected[0]}; "
                    "fix the mapping or the data (or on_rejected='log' to skip them)"
                )
            log.warning("Elasticsearch rejected %d documents: %s", len(rejected), rejected[:3])
        return retry, why

    def _lost(self, why: str) -> NoReturn:
        self.outages += 1
        self._backoff = min(self.max_backoff, max(0.05, self._backoff * 2))
        raise Backpressure(
            f"Elasticsearch cannot take documents ({why}); holding {len(self._buffer)}",
            retry_after=self._backoff,
        )


def _reason(error: object) -> str:
    if isinstance(error, dict):
        return f"{error.get('type', 'error')}: {error.get('reason', '')}"
    return str(error)
