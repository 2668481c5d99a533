"""Tables read from compacted topics (latest value per key) and stream-table joins.

Every worker reads the whole table topic, all partitions, from the beginning: the
table is small reference data (machine metadata, card holder profiles), and a full
copy per worker keeps the join local whatever the stream's partitioning.  Updates keep
arriving while the pipeline runs; a batch is joined against the table as it is when the
batch is processed.  A record with an empty value (tombstone) deletes its key.
"""

from __future__ import annotations

import polars as pl

from haeryu.stream.api.choices import JoinHow
from haeryu.stream.api.nodes import Table
from haeryu.stream.columns import JOIN_KEY
from haeryu.stream.formats.base import RawBatch


class TableState:
    """The latest row per key of one compacted topic.

    Notes
    -----
    Not thread-safe; one worker owns it.
    """

    def __init__(self, spec: Table) -> None:
        self.spec = spec
        self.key = spec.key_name
        self.frame: pl.DataFrame | None = None
        self.rows_applied = 0
        self.rejected = 0

    def apply(self, batch: RawBatch) -> None:
        """Fold a batch of table records into the table (upserts and deletes)."""
        if len(batch) == 0:
            return
        # Only the last record of each key in the batch matters, as after compaction.
        last: dict[bytes | None, int] = {}
        for i, key in enumerate(batch.keys):
            last[key] = i
        keep = sorted(i for k, i in last.items() if k is not None)
        upserts = [i for i in keep if batch.values[i]]
        deletes = [batch.keys[i] for i in keep if not batch.values[i]]
        changed = [_text(batch.keys[i]) for i in keep]
        latest: pl.DataFrame | None = None
        if upserts:
            frame, good, errors = self.spec.format.decode([batch.values[i] for i in upserts])  # type: ignore[misc]
            self.rejected += len(errors)
            keys = [_text(batch.keys[upserts[j]]) for j in good]
            latest = frame.with_columns(pl.Series(self.key, keys, dtype=pl.String))
        if self.frame is not None and self.frame.height and (deletes or latest is not None):
            self.frame = self.frame.filter(~pl.col(self.key).is_in(pl.Series(changed).implode()))
        if latest is not None and latest.height:
            self.frame = (
                latest
                if self.frame is None or self.frame.height == 0
                else pl.concat([self.frame, latest], how="diagonal_relaxed")
            )
        self.rows_applied += len(batch)

    def join(self, frame: pl.DataFrame, on: str, how: JoinHow, prefix: str) -> pl.DataFrame:
        """Join ``frame`` (column ``on``) with the table's latest rows."""
        table = self.frame
        if table is None:
            if how == "inner":
                return frame.clear()
            return frame
        right = table.rename({c: f"{prefix}{c}" for c in table.columns if c != self.key})
        right_key = right.schema[self.key]
        clash = [c for c in right.columns if c != self.key and c in frame.columns]
        if clash:
            right = right.rename({c: f"{c}_right" for c in clash})
        left = frame.with_columns(pl.col(on).cast(right_key, strict=False).alias(JOIN_KEY))
        joined = left.join(
            right.rename({self.key: JOIN_KEY}),
            on=JOIN_KEY,
            how=how,
            maintain_order="left",
        )
        return joined.drop(JOIN_KEY)


def _text(key: bytes | None) -> str:
    return key.decode("utf-8", "replace") if key is not None else ""
