"""Idempotent producer state: the last five batches per (producer id, partition).

Kafka's idempotence contract, per partition: a retried batch whose sequence range is
among the last five gets the offset it got the first time and no error; a batch that
skips sequences gets OUT_OF_ORDER_SEQUENCE_NUMBER; an older epoch is fenced.

The state is derived from the log itself (every batch carries producer id, epoch and
base sequence), so after a crash it is rebuilt by replaying batch headers from the last
snapshot; the snapshot only shortens that replay. Producer ids are handed out in
blocks whose upper bound is written durably before use, so an id is never reused after
kill -9.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from haeryu.broker.errors import ErrorCode
from haeryu.broker.files import make_dirs, write_atomic
from haeryu.broker.protocol.records import BatchHeader

WINDOW = 5
_SEQ_MODULUS = 1 << 31
_ID_BLOCK = 1000


TopicPartition = tuple[str, int]


@dataclass(slots=True)
class _Entry:
    epoch: int
    # (first_seq, last_seq, base_offset) of the most recent batches, oldest first.
    batches: deque[tuple[int, int, int]] = field(default_factory=lambda: deque(maxlen=WINDOW))


@dataclass(frozen=True, slots=True)
class Verdict:
    """What to do with a produced batch: append it, answer a duplicate, or reject."""

    error_code: int = 0
    duplicate_offset: int = -1

    @property
    def append(self) -> bool:
        return self.error_code == 0 and self.duplicate_offset < 0


APPEND = Verdict()


class ProducerStates:
    """Sequence windows of every idempotent producer, and producer id allocation."""

    def __init__(self, meta_dir: Path) -> None:
        self._dir = meta_dir
        self._ids_file = meta_dir / "producer-ids"
        self._snapshot_file = meta_dir / "producer-state.json"
        self._states: dict[TopicPartition, dict[int, _Entry]] = {}
        self._next_id = 0
        self._id_limit = 0

    # -- producer ids ---------------------------------------------------------------

    def load_ids(self) -> None:
        if self._ids_file.exists():
            self._next_id = int(self._ids_file.read_text().strip() or 0)
        self._id_limit = self._next_id

    def allocate_id(self) -> int:
        if self._next_id >= self._id_limit:
            self._id_limit = self._next_id + _ID_BLOCK
            _write_atomic(self._ids_file, str(self._id_limit))
        pid = self._next_id
        self._next_id += 1
        return pid

    # -- the sequence check -----------------------------------------------------------

    def check(self, tp: TopicPartition, h: BatchHeader) -> Verdict:
        if h.producer_id < 0:
            return APPEND
        entry = self._states.get(tp, {}).get(h.producer_id)
        if entry is None:
            return APPEND
        if h.producer_epoch < entry.epoch:
            return Verdict(ErrorCode.invalid_producer_epoch)
        if h.producer_epoch > entry.epoch:
            return (
                APPEND if h.base_sequence == 0 else Verdict(ErrorCode.out_of_order_sequence_number)
            )
        last_seq = (h.base_sequence + h.last_offset_delta) % _SEQ_MODULUS
        for first, last, offset in entry.batches:
            if first == h.base_sequence and last == last_seq:
                return Verdict(duplicate_offset=offset)
        if entry.batches:
            expected = (entry.batches[-1][1] + 1) % _SEQ_MODULUS
            if h.base_sequence != expected:
                return Verdict(ErrorCode.out_of_order_sequence_number)
        return APPEND

    def record(self, tp: TopicPartition, h: BatchHeader, base_offset: int) -> None:
        if h.producer_id < 0:
            return
        per_tp = self._states.setdefault(tp, {})
        entry = per_tp.get(h.producer_id)
        if entry is None or h.producer_epoch != entry.epoch:
            entry = per_tp[h.producer_id] = _Entry(h.producer_epoch)
        last_seq = (h.base_sequence + h.last_offset_delta) % _SEQ_MODULUS
        entry.batches.append((h.base_sequence, last_seq, base_offset))

    def forget_partition(self, tp: TopicPartition) -> None:
        self._states.pop(tp, None)

    # -- persistence --------------------------------------------------------------------

    def snapshot(self, end_offsets: dict[TopicPartition, int]) -> None:
        """Write the state, tagged with each partition's end offset, atomically."""
        self.write_snapshot(self.snapshot_text(end_offsets))

    def write_snapshot(self, text: str) -> None:
        """Write what :meth:`snapshot_text` returned (blocking I/O: any thread)."""
        _write_atomic(self._snapshot_file, text)

    def snapshot_text(self, end_offsets: dict[TopicPartition, int]) -> str:
        """The state as the snapshot file holds it (owning thread: reads live state)."""
        doc = {
            f"{t}\x00{p}": {
                "end": end_offsets.get((t, p), 0),
                "producers": {
                    str(pid): [e.epoch, [list(b) for b in e.batches]] for pid, e in states.items()
                },
            }
            for (t, p), states in self._states.items()
        }
        return json.dumps(doc)

    def load_snapshot(self) -> dict[TopicPartition, int]:
        """Load the snapshot; return the end offset it covers for each partition."""
        if not self._snapshot_file.exists():
            return {}
        try:
            doc = json.loads(self._snapshot_file.read_text())
        except ValueError:
            return {}
        covered: dict[TopicPartition, int] = {}
        for key, value in doc.items():
            topic, _, part = key.partition("\x00")
            tp = (topic, int(part))
            covered[tp] = int(value["end"])
            per_tp = self._states.setdefault(tp, {})
            for pid, (epoch, batches) in value["producers"].items():
                entry = _Entry(int(epoch))
                entry.batches.extend(tuple(b) for b in batches)
                per_tp[int(pid)] = entry
        return covered


def _write_atomic(path: Path, text: str) -> None:
    make_dirs(path.parent)
    write_atomic(path, text)
