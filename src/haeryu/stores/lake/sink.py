"""DeltaSink: append a pipeline's rows to a Delta Lake table, exactly once.

Rows are buffered between checkpoints; their Parquet data files are written in a
background thread as they arrive (``files.py``), and the checkpoint's flush commits them
as one Delta commit (only the log entry is written while the worker waits).  That commit also carries one application transaction per
input partition whose version is the next input offset the table covers, so the rows
and the positions land atomically.  On a replay (after a crash or a rewind) rows whose
offset is below what the table, or the buffer, already holds are dropped.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
from deltalake import CommitProperties, DeltaTable, write_deltalake
from deltalake import Schema as DeltaSchema
from deltalake.exceptions import CommitFailedError, TableNotFoundError
from deltalake.transaction import AddAction, RemoveAction, create_table_with_add_actions

from haeryu.stores.lake import positions as pos
from haeryu.stores.lake.files import Put, local_put, remove_quietly, store_put, write_files
from haeryu.stores.lake.frames import EVENT_DATE, EVENT_HOUR, conform, to_table_frame
from haeryu.stores.lake.maintenance import Maintenance
from haeryu.stores.lake.positions import TopicPartition
from haeryu.stores.lake.store_errors import (
    StoreUnavailableError,
    classify,
    first_line,
    outage_hint,
)
from haeryu.stream.sinks import Backpressure, Sink, SinkContext, SinkError, SourcePositions

log = logging.getLogger(__name__)

Staged = tuple[list[AddAction], list[pl.DataFrame]]
"""Data files written for some frames, and their rows that do not fit the table."""

TOPIC, PARTITION, OFFSET = "_topic", "_partition", "_offset"
ORIGIN = (TOPIC, PARTITION, OFFSET)


class FencedError(SinkError):
    """Another writer committed positions of a partition this sink was writing.

    This sink lost the partition (a rebalance moved it) and must not write it again;
    its buffered rows of that partition are dropped, the new owner writes them.
    """


class DeltaSink(Sink):
    """Append rows to a Delta Lake table, one commit per checkpoint, exactly once.

    Parameters
    ----------
    table
        A local directory or ``s3://bucket/prefix``.  A bare name is a directory under
        ``root``.
    partition_by
        ``"date"`` (default: the event date, column ``event_date``), ``"hour"`` (event
        date and hour, ``event_date`` and ``event_hour``), ``None`` (unpartitioned) or a
        list of column names of the rows.
    root
        Directory that holds tables given by a bare name (default ``$HAERYU_LAKE``, else
        ``lake``: where ``haeryu query`` finds them).
    time_column
        Column holding event time; by default ``_event_time`` (epoch milliseconds),
        else ``_timestamp``.
    storage_options
        Passed to deltalake: for S3 ``AWS_ENDPOINT_URL``, ``AWS_ACCESS_KEY_ID``,
        ``AWS_SECRET_ACCESS_KEY``, ``AWS_REGION``, ``AWS_ALLOW_HTTP``.
    max_buffer_rows
        When the buffer holds more rows than this between checkpoints, it is committed
        early (still exactly once: the commit records the offsets of its rows).
    maintain_every
        Seconds between background rounds of compaction and vacuum (``None``: none).
    stage_rows
        Rows gathered before their data files are written (in a background thread,
        ahead of the commit that adds them).
    retention_hours
        Vacuum deletes files unreferenced for this long (at least 1).
    commit_timeout
        Seconds a commit retries a failing store (back-off up to 2 s) before it fails
        the checkpoint.  Keep it below the worker's checkpoint timeout (20 s).
    """

    name = "delta"

    def __init__(
        self,
        table: str | Path,
        *,
        partition_by: str | Sequence[str] | None = "date",
        root: str | Path | None = None,
        time_column: str | None = None,
        storage_options: Mapping[str, str] | None = None,
        max_buffer_rows: int = 2_000_000,
        commit_timeout: float = 15.0,
        maintain_every: float | None = 300.0,
        retention_hours: int = 24,
        stage_rows: int = 100_000,
    ) -> None:
        text = str(table)
        if root is None:
            root = os.environ.get("HAERYU_LAKE", "lake")  # where `haeryu query` looks
        self.uri = text if "://" in text or Path(text).is_absolute() else str(Path(root) / text)
        if "://" not in self.uri:
            self.uri = str(Path(self.uri).resolve())
        self.partition_by = partition_by
        self.time_column = time_column
        self.storage_options = dict(storage_options or {})
        self.max_buffer_rows = max_buffer_rows
        self.commit_timeout = commit_timeout
        self.pipeline = "pipeline"
        self.commits = 0
        self.commit_seconds: list[float] = []
        self.commit_rows: list[int] = []
        self.dead_letters = 0
        self.retries = 0
        self.maintenance: Maintenance | None = None
        if maintain_every is not None:
            self.maintenance = Maintenance(
                self.uri, maintain_every, retention_hours, self.storage_options
            )
        self.dead_letters_uri = f"{self.uri}_dead_letters"
        self._table: DeltaTable | None = None
        self.stage_rows = stage_rows
        self._frames: list[pl.DataFrame] = []  # rows since the last commit (for their origin)
        self._pending: list[pl.DataFrame] = []  # of those, rows with no data file yet
        self._jobs: list[tuple[list[pl.DataFrame], Future[Staged]]] = []
        self._adds: list[AddAction] = []  # data files written, not committed yet
        self._dead: list[pl.DataFrame] = []  # rows that do not fit the table's types
        self._schema: dict[str, pl.DataType] | None = None  # the table's, plus new columns
        self._files: ThreadPoolExecutor | None = None
        self._putter: Put | None = None
        self._rows = 0
        self._opened = False
        self._known: dict[TopicPartition, int] = {}  # next offset the table holds
        self._taken: dict[TopicPartition, int] = {}  # next offset the table or buffer holds

    # ------------------------------------------------------------------ contract

    def open(self, context: SinkContext) -> None:
        """Reset the buffer and learn the pipeline (its name makes the app ids)."""
        self.pipeline = context.pipeline
        self._discard()
        self._check_store()
        self._known.clear()
        self._taken.clear()
        if self.maintenance is not None:
            self.maintenance.start()

    def write(self, batch: pl.DataFrame) -> None:
        """Buffer the rows not already in the table or the buffer."""
        if not batch.height:
            return
        try:
            if self._schema is None:
                self._schema = self._table_schema(self._retry(self._load, "read the table"))
            batch = self._fresh(batch)
        except StoreUnavailableError as exc:  # the table cannot be read now: the worker waits
            raise Backpressure(str(exc), retry_after=1.0) from exc
        if not batch.height:
            return
        self._frames.append(batch)
        self._pending.append(batch)
        self._rows += batch.height
        if sum(f.height for f in self._pending) >= self.stage_rows:
            self._submit()
        if self._rows > self.max_buffer_rows:
            try:
                self._write()
            except StoreUnavailableError as exc:
                raise Backpressure(str(exc), retry_after=1.0) from exc

    def flush(self) -> None:
        """Write the buffered rows, and the input offsets they cover, as one Delta commit.

        A store that does not answer is retried with back-off for ``commit_timeout``
        seconds, then :class:`Backpressure` asks the worker to call again (the
        checkpoint waits, up to its deadline); the rows stay buffered meanwhile.
        """
        try:
            self._write()
        except StoreUnavailableError as exc:
            raise Backpressure(str(exc), retry_after=1.0) from exc

    def commit(self, positions: SourcePositions) -> None:
        """Forget partitions this worker no longer owns (absent from ``positions``).

        The rows of the checkpoint were committed by :meth:`flush` with the offsets they
        came from, so a replay skips them.  A partition that comes back later is read
        afresh from the table, since another worker may have written it meanwhile.
        """
        owned = set(positions)
        for tp in [tp for tp in self._taken if tp not in owned]:
            self._known.pop(tp, None)
            self._taken.pop(tp, None)

    def close(self) -> None:
        """Drop what is buffered (it was not checkpointed, so it will be replayed)."""
        self._discard()
        if self._files is not None:
            self._files.shutdown(wait=True)
            self._files = None
        if self.maintenance is not None:
            self.maintenance.stop()

    def _check_store(self) -> None:
        """Read the table at start: a store that cannot be used is said at once.

        A broken log or refused credentials fail every open.  An unreachable store fails
        only the first (a typo in the endpoint); later opens (a worker rejoining during
        an outage) leave it to the writes, which wait for the store to come back.
        """
        first, self._opened = not self._opened, True
        try:
            self._schema = self._table_schema(self._retry(self._load, "open the table"))
        except StoreUnavailableError as exc:
            if first:
                raise StoreUnavailableError(f"at start: {exc}") from exc
            log.warning("%s", exc)

    def _discard(self) -> None:
        """Forget every row since the last commit; delete their uncommitted files."""
        for _, job in self._jobs:
            try:
                adds, _ = job.result()
            except Exception:
                continue
            remove_quietly(self.uri, adds)
        remove_quietly(self.uri, self._adds)
        self._jobs, self._adds, self._dead = [], [], []
        self._frames, self._pending = [], []
        self._rows = 0
        self._schema = None

    # ------------------------------------------------------------------ reading

    def table(self) -> DeltaTable:
        """The table at its latest version."""
        return DeltaTable(self.uri, storage_options=self.storage_options or None)

    def _load(self) -> DeltaTable | None:
        if self._table is None:
            try:
                self._table = self.table()
            except TableNotFoundError:
                return None
        else:
            self._table.update_incremental()
        return self._table

    # ------------------------------------------------------------------ replay filter

    def _fresh(self, batch: pl.DataFrame) -> pl.DataFrame:
        """Drop rows whose input offset the table or the buffer already holds."""
        if not {TOPIC, PARTITION, OFFSET} <= set(batch.columns):
            return batch  # rows without an origin (aggregates): at-least-once
        spans = _offset_spans(batch)
        unknown = [tp for tp, _, _ in spans if tp not in self._taken]
        if unknown:
            table = self._retry(self._load, "read the table")
            for tp in unknown:
                self._known[tp] = self._taken[tp] = pos.committed(table, self.pipeline, tp)
        if all(low >= self._taken[tp] for tp, low, _ in spans):
            fresh = batch  # the usual case: nothing replayed, no row to look at
            ends = [(tp, high) for tp, _, high in spans]
        else:
            floors = pl.DataFrame(
                {
                    TOPIC: [t for (t, _), _, _ in spans],
                    PARTITION: [p for (_, p), _, _ in spans],
                    "__floor": [self._taken[tp] for tp, _, _ in spans],
                },
                schema_overrides={PARTITION: batch.schema[PARTITION]},
            )
            fresh = (
                batch.join(floors, on=[TOPIC, PARTITION], how="left", maintain_order="left")
                .filter(pl.col(OFFSET) >= pl.col("__floor"))
                .drop("__floor")
            )
            ends = [(tp, high) for tp, _, high in _offset_spans(fresh)]
        for tp, high in ends:
            self._taken[tp] = max(self._taken[tp], high + 1)
        return fresh

    # ------------------------------------------------------------------ writing

    def _submit(self) -> None:
        """Write the pending frames' data files in the background (no commit yet)."""
        if not self._pending:
            return
        if self._schema is None:  # forgotten after a fence: the table may have changed
            self._schema = self._table_schema(self._retry(self._load, "read the table"))
        frames, self._pending = self._pending, []
        if self._files is None:
            self._files = ThreadPoolExecutor(1, thread_name_prefix="lake-files")
        self._jobs.append((frames, self._files.submit(self._stage, frames)))

    def _stage(self, frames: list[pl.DataFrame]) -> tuple[list[AddAction], list[pl.DataFrame]]:
        """Data files of ``frames`` in the table's types; rows that do not fit them apart.

        Runs in the background thread (one at a time, in order): a new column of one
        frame is the type the next ones are held to.
        """
        assert self._schema is not None
        goods, deads = [], []
        for frame in frames:
            shaped = to_table_frame(frame, self._partition_columns(), self.time_column)
            good, dead = conform(shaped, self._schema)
            for name, dtype in good.schema.items():
                self._schema.setdefault(name, dtype)
            goods.append(good)
            if dead.height:
                deads.append(dead)
        good = pl.concat(goods, how="diagonal") if len(goods) > 1 else goods[0]
        return write_files(good, self._partition_columns(), self._put()), deads

    def _put(self) -> Put:
        if self._putter is None:
            self._putter = (
                store_put(self.uri, self.storage_options)
                if "://" in self.uri
                else local_put(self.uri)
            )
        return self._putter

    def _collect(self) -> None:
        """Wait for the background files; a job that failed is done again here."""
        while self._jobs:
            frames, job = self._jobs[0]
            try:
                adds, dead = job.result()
            except SinkError:
                raise  # a mistake in the rows (no event time): retrying cannot help
            except Exception as exc:
                log.warning("%s: writing data files failed (%s); writing them again", self.uri, exc)
                adds, dead = self._retry(lambda f=frames: self._stage(f), "write data files")
            self._jobs.pop(0)
            self._adds.extend(adds)
            self._dead.extend(dead)

    def _write(self) -> None:
        """One Delta commit: the staged files and, per input partition, the next offset."""
        if not self._frames:
            return
        started = time.perf_counter()
        self._submit()
        self._collect()
        origins = [f.select(ORIGIN) for f in self._frames if set(ORIGIN) <= set(f.columns)]
        versions: dict[TopicPartition, int] = {}
        if origins:
            ends = pl.concat(origins).group_by(TOPIC, PARTITION).agg(pl.col(OFFSET).max())
            for t, p, end in ends.rows():
                versions[(str(t), int(p))] = int(end) + 1
        table = self._retry(self._load, "read the table")
        txns = self._check(table, versions)
        if self._dead:
            dead = pl.concat(self._dead, how="diagonal")
            self._retry(lambda: self._write_dead(dead), "write dead letters")
            self._dead = []

        attempts = 0

        def attempt() -> None:
            nonlocal attempts, txns
            attempts += 1
            # The first attempt commits from the snapshot _check read, so a commit of
            # another writer since then is a conflict deltalake rejects (the fence).
            current = table if attempts == 1 else self._load()
            if attempts > 1:
                if txns and all(
                    pos.committed(current, self.pipeline, tp) == v for tp, v in txns.items()
                ):
                    return  # an earlier attempt committed, only its answer was lost
                txns = self._check(current, versions)
            self._commit(current, self._adds, txns)

        self._retry(attempt, "commit to the table")
        for tp, version in txns.items():
            self._known[tp] = version
            self._taken[tp] = max(self._taken.get(tp, 0), version)
        self._frames.clear()
        self._adds = []
        rows, self._rows = self._rows, 0
        self.commits += 1
        self.commit_rows.append(rows)
        self.commit_seconds.append(time.perf_counter() - started)

    def _write_dead(self, dead: pl.DataFrame) -> None:
        """Rows whose types conflict with the table, to ``<table>_dead_letters``, once."""
        uri = self.dead_letters_uri
        try:
            table: DeltaTable | None = DeltaTable(uri, storage_options=self.storage_options or None)
        except TableNotFoundError:
            table = None
        payload = [c for c in dead.columns if c != "error"]
        letters = dead.select(
            pl.col(TOPIC).cast(pl.String)
            if TOPIC in dead.columns
            else pl.lit(None, pl.String).alias(TOPIC),
            pl.col(PARTITION)
            if PARTITION in dead.columns
            else pl.lit(None, pl.Int32).alias(PARTITION),
            pl.col(OFFSET) if OFFSET in dead.columns else pl.lit(None, pl.Int64).alias(OFFSET),
            pl.struct(payload).struct.json_encode().alias("value"),
            pl.col("error"),
            pl.lit(f"lake:{self.uri}").alias("stage"),
        )
        versions: dict[TopicPartition, int] = {}
        if TOPIC in dead.columns and OFFSET in dead.columns:
            floors = {
                (str(t), int(p)): pos.committed(table, self.pipeline, (str(t), int(p)))
                for t, p in letters.select(TOPIC, PARTITION).unique().rows()
            }
            keep = [
                o >= floors[(str(t), int(p))]
                for t, p, o in letters.select(TOPIC, PARTITION, OFFSET).rows()
            ]
            letters = letters.filter(pl.Series(keep, dtype=pl.Boolean))
            for t, p, end in letters.group_by(TOPIC, PARTITION).agg(pl.col(OFFSET).max()).rows():
                versions[(str(t), int(p))] = int(end) + 1
        if not letters.height:
            return
        log.warning(
            "%s: %d rows do not fit the table's types: %s",
            self.uri,
            letters.height,
            letters["error"][0],
        )
        write_deltalake(
            table if table is not None else uri,
            letters.to_arrow(),
            mode="append",
            storage_options=self.storage_options or None if table is None else None,
            commit_properties=CommitProperties(
                app_transactions=pos.transactions(self.pipeline, versions)
            ),
        )
        self.dead_letters += letters.height

    def _check(
        self, table: DeltaTable | None, versions: dict[TopicPartition, int]
    ) -> dict[TopicPartition, int]:
        """The versions to record: only those that grow; fence partitions lost to others."""
        txns: dict[TopicPartition, int] = {}
        fenced: list[TopicPartition] = []
        for tp, version in versions.items():
            current = pos.committed(table, self.pipeline, tp)
            known = self._known.get(tp)
            if known is not None and current != known:
                fenced.append(tp)
            elif version > current:
                txns[tp] = version
        if fenced:
            self._drop(fenced)
            raise FencedError(
                f"{self.uri}: partitions {sorted(fenced)} were committed by another writer "
                "since this one read them; this worker lost them and dropped their rows"
            )
        return txns

    def _commit(
        self, table: DeltaTable | None, adds: list[AddAction], txns: dict[TopicPartition, int]
    ) -> None:
        """Commit ``adds`` (files already written) and the positions ``txns`` atomically."""
        assert self._schema is not None
        schema = pl.DataFrame(schema=self._schema).to_arrow().schema
        props = CommitProperties(app_transactions=pos.transactions(self.pipeline, txns))
        if table is None:
            # The table's first commit holds its first rows (mode "error": if another
            # writer created it meanwhile, the retry reads it and commits on top).
            create_table_with_add_actions(
                self.uri,
                DeltaSchema.from_arrow(schema),
                list(adds),
                mode="error",
                partition_by=self._partition_columns() or None,
                storage_options=self.storage_options or None,
                commit_properties=props,
            )
            return
        known = set(table.schema().to_arrow().names)
        new = [field for field in DeltaSchema.from_arrow(schema).fields if field.name not in known]
        if new:
            # A new field becomes a nullable column (its own commit, before the rows).
            table.alter.add_columns(new)
            self._check(table, {tp: v for tp, v in txns.items()})
        try:
            actions: list[AddAction | RemoveAction] = list(adds)
            table.create_write_transaction(
                actions,
                "append",
                table.schema(),
                partition_by=self._partition_columns() or None,
                commit_properties=props,
            )
        except CommitFailedError as exc:
            if "Concurrent transaction" in str(exc):
                self._drop(list(txns))
                raise FencedError(
                    f"{self.uri}: another writer committed positions of "
                    f"{sorted(txns)} at the same time; this worker lost them: {exc}"
                ) from exc
            raise

    def _drop(self, fenced: list[TopicPartition]) -> None:
        """Forget partitions another writer owns; their rows here are not ours to write."""
        lost = set(fenced)
        keep = []
        for frame in self._frames:
            if {TOPIC, PARTITION} <= set(frame.columns):
                mask = pl.Series(
                    [(t, p) not in lost for t, p in frame.select(TOPIC, PARTITION).rows()]
                )
                frame = frame.filter(mask)
            keep.append(frame)
        # The written files mix partitions: write the rows that are still ours again.
        self._discard()
        self._frames = [f for f in keep if f.height]
        self._pending = list(self._frames)
        self._rows = sum(f.height for f in self._frames)
        for tp in lost:
            self._known.pop(tp, None)
            self._taken.pop(tp, None)
        self._table = None

    def _retry(self, action: Any, what: str) -> Any:
        """Run ``action``, retrying store errors with back-off until ``commit_timeout``."""
        deadline = time.monotonic() + self.commit_timeout
        delay = 0.05
        while True:
            try:
                return action()
            except (SinkError, TableNotFoundError):
                raise  # not an outage: retrying cannot help
            except Exception as exc:  # deltalake raises OSError and its own DeltaError
                refused = classify(self.uri, exc, what)
                if refused is not None:
                    raise refused from exc  # a broken log or wrong credentials stay so
                if time.monotonic() + delay > deadline:
                    hint = outage_hint(self.uri, exc)
                    raise StoreUnavailableError(
                        f"{self.uri}: cannot {what}{hint}: {first_line(exc)}"
                    ) from exc
                self.retries += 1
                log.warning(
                    "%s: cannot %s (%s); retrying in %.2fs", self.uri, what, first_line(exc), delay
                )
                time.sleep(delay)
                delay = min(delay * 2, 2.0)
                self._table = None

    @staticmethod
    def _table_schema(table: DeltaTable | None) -> dict[str, pl.DataType]:
        if table is None:
            return {}
        empty = pa.schema(table.schema().to_arrow()).empty_table()
        return dict(pl.DataFrame(pl.from_arrow(empty)).schema)

    def _partition_columns(self) -> list[str]:
        if self.partition_by is None:
            return []
        if self.partition_by == "date":
            return [EVENT_DATE]
        if self.partition_by == "hour":
            return [EVENT_DATE, EVENT_HOUR]
        if isinstance(self.partition_by, str):
            return [self.partition_by]
        return list(self.partition_by)


def _offset_spans(batch: pl.DataFrame) -> list[tuple[TopicPartition, int, int]]:
    """Per input partition of ``batch``: the lowest and highest offset."""
    if not batch.height:
        return []
    topics = batch[TOPIC]
    first = topics[0]
    if topics.null_count() == 0 and bool((topics == first).all()):
        # One topic (a source's batch): group by the integer partition only.
        rows = batch.group_by(PARTITION).agg(
            pl.col(OFFSET).min().alias("low"), pl.col(OFFSET).max().alias("high")
        )
        return [((str(first), int(p)), int(lo), int(hi)) for p, lo, hi in rows.rows()]
    rows = batch.group_by(TOPIC, PARTITION).agg(
        pl.col(OFFSET).min().alias("low"), pl.col(OFFSET).max().alias("high")
    )
    return [((str(t), int(p)), int(lo), int(hi)) for t, p, lo, hi in rows.rows()]
