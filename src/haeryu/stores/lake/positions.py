"""Input positions kept as Delta application transactions (``txn`` actions).

One app id per pipeline and input partition; its version is the next input offset the
table covers.  Versions are written in the same atomic commit as the rows.
"""

from __future__ import annotations

from deltalake import DeltaTable, Transaction

TopicPartition = tuple[str, int]


def app_id(pipeline: str, tp: TopicPartition) -> str:
    """The app id of one input partition of one pipeline."""
    return f"haeryu|{pipeline}|{tp[0]}|{tp[1]}"


def committed(table: DeltaTable | None, pipeline: str, tp: TopicPartition) -> int:
    """Next offset of ``tp`` the table already holds (0 when none)."""
    if table is None:
        return 0
    version = table.transaction_version(app_id(pipeline, tp))
    return int(version) if version is not None else 0


def transactions(pipeline: str, versions: dict[TopicPartition, int]) -> list[Transaction]:
    """The txn actions that record ``versions`` in a commit."""
    return [Transaction(app_id(pipeline, tp), v) for tp, v in sorted(versions.items())]
