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


class TableError(WarehouseError):
    """A lake table cannot be read (a corrupt or foreign ``_delta_log`` entry)."""

    def __init__(self, table: str, path: str, reason: str) -> None:
        super().__init__(
            f"lake table {table!r} ({path}) cannot be read: {reason}\n"
            "  What to do: the table's _delta_log holds a commit file that is damaged or was"
            " not written by a Delta writer. Restore that file from a backup or a replica;"
            " if it is the newest commit and was never completed, move it out of _delta_log"
            " (the table then reads as of the commit before). Other tables are not affected."
        )
        self.table = table
        self.path = path
        self.reason = reason
