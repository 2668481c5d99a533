"""Errors of the warehouse, each saying what went wrong and what to do."""

from __future__ import annotations


class WarehouseError(Exception):
    """Base class of warehouse errors; the message is meant for the user as is."""


class QueryError(WarehouseError):
    """A query failed: the message points at the wrong part of the SQL."""

    def __init__(self, message: str, *, sql: str, position: int | None = None) -> None:
        super().__init__(message)
        self.sql = sql
        self.position = position


DAMAGED_LOG_ADVICE = (
    "the table's _delta_log holds a commit file that is damaged or was not written by a"
    " Delta writer. Restore that file from a backup or a replica; if it is the newest"
    " commit and was never completed, move it out of _delta_log (the table then reads as"
    " of the commit before)."
)
MISSING_FILE_ADVICE = (
    "the table's current version lists data files that are gone (deleted by hand, or by"
    " a vacuum run with a retention shorter than a reader needed). Restore them from a"
    " backup; or, accepting that their rows are lost, drop them from the table with"
    " deltalake's repair: DeltaTable(PATH).repair()."
)


class TableError(WarehouseError):
    """A lake table cannot be read (a corrupt or foreign ``_delta_log`` entry)."""

    def __init__(self, table: str, path: str, reason: str, advice: str | None = None) -> None:
        super().__init__(
            f"lake table {table!r} ({path}) cannot be read: {reason}\n"
            f"  What to do: {advice or DAMAGED_LOG_ADVICE} Other tables are not affected."
        )
        self.table = table
        self.path = path
        self.reason = reason
