"""Test your pipelines, recovery included, in any pytest.

- :func:`embedded_broker` runs haeryu's Kafka-compatible broker in-process on a free
  port (``with embedded_broker() as broker:`` then give ``broker.bootstrap`` to any Kafka
  client or to :func:`haeryu.stream.run`).
- :func:`run_local` runs a pipeline over Python lists and returns what it wrote.
- :class:`MemorySink` collects the frames a custom-sink step receives.
- Crash injection: give :func:`run_local` a :class:`LocalCluster` and a crash point --
  :func:`crash_after_checkpoint_step` (right after step 1-4 of the k-th checkpoint) or
  :func:`crash_mid_batch` (part of a batch's output written) -- and it raises
  :class:`Crashed` there.  Run it again with the same cluster and inputs: it restores the
  last complete checkpoint and resumes, as a worker restarted on a real cluster would.
  The cluster's topics then show what your pipeline guarantees across the crash.

>>> from haeryu.stream import Pipeline, col
>>> p = Pipeline("orders")
>>> p.source("orders").filter(col("qty") > 0).to_topic("valid")
>>> orders = [{"id": i, "qty": i % 3} for i in range(30)]
>>> cluster = LocalCluster()
>>> try:
...     run_local(p, {"orders": orders}, batch_size=5, cluster=cluster,
...               crash=crash_mid_batch(3, after_records=2))
... except Crashed:
...     pass
>>> out = run_local(p, {"orders": orders}, batch_size=5, cluster=cluster)
>>> sorted(out.topic("valid")["id"].to_list()) == [i for i in range(30) if i % 3]
True
"""

from __future__ import annotations

from haeryu.broker.embedded import EmbeddedBroker, embedded_broker
from haeryu.stream.local import (
    Crash,
    CrashAfterCheckpointStep,
    Crashed,
    CrashMidBatch,
    LocalCluster,
    LocalResult,
    run_local,
)
from haeryu.stream.sinks import MemorySink

__all__ = [
    "Crash",
    "Crashed",
    "EmbeddedBroker",
    "LocalCluster",
    "LocalResult",
    "MemorySink",
    "crash_after_checkpoint_step",
    "crash_mid_batch",
    "embedded_broker",
    "run_local",
]


def crash_after_checkpoint_step(step: int, *, checkpoint: int = 1) -> Crash:
    """Crash right after checkpoint step ``step`` of the ``checkpoint``-th checkpoint.

    Steps: 1 sinks flushed, 2 output ends noted, 3 changelog written, 4 offsets
    committed.  A crash after step 3 but before 4 leaves the changelog ahead of the
    group's offsets; after 1 or 2, the outputs ahead of the changelog.
    """
    return CrashAfterCheckpointStep(step, checkpoint)


def crash_mid_batch(batch: int, *, after_records: int = 1) -> Crash:
    """Crash while input batch ``batch`` (0-based) writes its output.

    ``after_records`` of its output records are written, the rest are not, and its
    offsets are not noted: the replay must write the rest and none of the others twice.
    """
    return CrashMidBatch(batch, after_records)
