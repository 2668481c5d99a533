"""Per-key state carried across micro-batches, updated by frame-level functions.

State is a frame per input partition with one row per key.  For each partition in a
batch, the user function gets that partition's rows and the current state rows of their
keys, and returns the output rows and the new state of those keys; a key of the batch
that is missing from the new state is deleted.
:func:`~haeryu.stream.api.state_functions.ewm_update` is a built-in function of that shape.
"""

from __future__ import annotations

from collections.abc import Sequence

import polars as pl

from haeryu.stream.api.state_functions import StateFn
from haeryu.stream.columns import PARTITION
from haeryu.stream.errors import StreamError
from haeryu.stream.runtime.operator import OperatorOutput, Progress, Snapshot, no_output

_NOTHING_LATE = pl.DataFrame()


class StatefulOperator:
    """Runs a :data:`StateFn` per partition and keeps the state it returns.

    Notes
    -----
    Not thread-safe; one worker owns it.
    """

    def __init__(
        self, fn: StateFn, keys: Sequence[str], state_schema: pl.Schema | None, name: str
    ) -> None:
        self.fn = fn
        self.keys = list(keys)
        self.name = name
        self.state: dict[int, pl.DataFrame] = {}
        self.state_schema = state_schema
        self.dirty: set[int] = set()

    def _empty_state(self, batch: pl.DataFrame) -> pl.DataFrame:
        schema = {k: batch.schema[k] for k in self.keys}
        if self.state_schema is not None:
            schema.update(self.state_schema)
        return pl.Schema(schema).to_frame()

    def process(
        self,
        frame: pl.DataFrame,
        now: float = 0.0,
        busy: frozenset[int] = frozenset(),
        progress: Progress = (),
    ) -> OperatorOutput:
        """Update state with ``frame``; the results are the function's output rows.

        Untimed: ``now``, ``busy`` and ``progress`` do not matter to it.
        """
        return OperatorOutput(self._update(frame), _NOTHING_LATE)

    def _update(self, frame: pl.DataFrame) -> pl.DataFrame:
        if frame.height == 0:
            return frame
        outputs: list[pl.DataFrame] = []
        parts = (
            frame.partition_by(PARTITION, as_dict=True, maintain_order=True)
            if PARTITION in frame.columns
            else {(0,): frame}
        )
        for (partition, *_), batch in parts.items():
            p = int(partition) if partition is not None else 0
            current = self.state.get(p)
            keys = batch.select(self.keys).unique()
            if current is None or current.height == 0:
                relevant = current if current is not None else self._empty_state(batch)
            else:
                relevant = current.join(keys, on=self.keys, how="semi", nulls_equal=True)
            try:
                out, new_state = self.fn(batch, relevant)
            except Exception as exc:
                raise StreamError(f"update_state function {self.name} failed: {exc}") from exc
            missing = [k for k in self.keys if k not in new_state.columns]
            if missing:
                raise StreamError(
                    f"update_state function {self.name} returned state without key "
                    f"columns {missing}"
                )
            if current is None or current.height == 0:
                self.state[p] = new_state
            else:
                kept = current.join(keys, on=self.keys, how="anti", nulls_equal=True)
                self.state[p] = pl.concat([kept, new_state], how="diagonal_relaxed")
            self.dirty.add(p)
            if PARTITION not in out.columns and out.height:
                out = out.with_columns(pl.lit(p, pl.Int32).alias(PARTITION))
            outputs.append(out)
        return outputs[0] if len(outputs) == 1 else pl.concat(outputs, how="diagonal_relaxed")

    def tick(self, now: float, busy: frozenset[int]) -> OperatorOutput:
        """Nothing happens with time alone."""
        return no_output()

    def close(self) -> OperatorOutput:
        """Nothing is held back: every output was emitted with its batch."""
        return no_output()

    def closed_through(self) -> dict[int, int]:
        """Untimed: no event-time progress."""
        return {}

    def snapshot(self, partition: int) -> Snapshot:
        """The state of ``partition`` (for the changelog)."""
        return {"state": self.state.get(partition)}, {}

    def restore(self, partition: int, snapshot: Snapshot | None, now: float) -> None:
        """Take over ``partition`` with state read back from the changelog."""
        state = snapshot[0].get("state") if snapshot is not None else None
        if state is None:
            self.state.pop(partition, None)
        else:
            self.state[partition] = state

    def forget(self, partition: int) -> None:
        """Drop the state of a revoked partition."""
        self.state.pop(partition, None)
        self.dirty.discard(partition)
