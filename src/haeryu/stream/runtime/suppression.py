"""Ids of records a lost checkpoint interval already wrote, kept per input partition.

After a crash, the worker that restores input partition ``p`` reads the output tails
written since the last checkpoint and collects the ids originating from ``p``
(:mod:`haeryu.stream.state.checkpoint`).  The replay produces each of them again exactly once,
so an id is dropped as soon as it suppressed its record.  Whatever is left (ids a
non-deterministic operator will not produce again) goes once *every* restored partition's
position has passed the end its input had when it was restored: every record of the lost
interval lies before those ends, so nothing later can repeat one.  Not per partition: a
window holding partition 0's records closes when the watermark, a minimum over all
partitions, moves, which may happen while partition 1 is replayed after partition 0 has
caught up.  Revoking a partition drops its ids too.  Memory is therefore bounded by one
checkpoint interval of output, and only until the replay has caught up.
"""

from __future__ import annotations

from collections.abc import Iterable

import polars as pl

from haeryu.stream.columns import HEADER_ID, PARTITION

TP = tuple[str, int]
_DUPLICATE = "__dup"


class Suppression:
    """The ids to drop, per (input topic, partition), each until its replay passes ``until``.

    Notes
    -----
    Not thread-safe; one worker thread owns it.
    """

    def __init__(self) -> None:
        self.ids: dict[TP, set[str]] = {}
        self.until: dict[TP, int] = {}
        self.caught_up: set[TP] = set()

    def __len__(self) -> int:
        return sum(len(ids) for ids in self.ids.values())

    def add(self, tp: TP, ids: Iterable[str], until: int) -> None:
        """Suppress ``ids`` of ``tp`` until its position reaches ``until``."""
        self.ids.setdefault(tp, set()).update(ids)
        self.until[tp] = max(self.until.get(tp, until), until)
        self.caught_up.discard(tp)

    def passed(self, tp: TP, position: int) -> None:
        """The partition's next offset is ``position``; all ids go once all caught up."""
        until = self.until.get(tp)
        if until is not None and position >= until:
            self.caught_up.add(tp)
            self._drop_if_caught_up()

    def forget(self, tp: TP) -> None:
        """Drop everything about ``tp`` (revoked)."""
        self.ids.pop(tp, None)
        self.until.pop(tp, None)
        self.caught_up.discard(tp)
        self._drop_if_caught_up()

    def _drop_if_caught_up(self) -> None:
        if self.caught_up >= self.until.keys():
            self.clear()

    def clear(self) -> None:
        """Drop everything (the worker rewinds to its last checkpoint)."""
        self.ids.clear()
        self.until.clear()
        self.caught_up.clear()

    def filter(self, frame: pl.DataFrame, topic: str) -> pl.DataFrame:
        """Drop rows whose ``__hid`` a lost interval already wrote; forget those ids."""
        if not self.ids or frame.height == 0:
            return frame
        partitions = frame[PARTITION].unique().to_list() if PARTITION in frame.columns else [0]
        wanted: list[str] = []
        for p in partitions:
            wanted.extend(self.ids.get((topic, p), ()))
        if not wanted:
            return frame
        hit = pl.col(HEADER_ID).is_in(pl.Series(wanted, dtype=pl.String).implode()).fill_null(False)
        flagged = frame.with_columns(hit.alias(_DUPLICATE))
        dropped = flagged.filter(pl.col(_DUPLICATE))
        if dropped.height == 0:
            return frame
        for hid in dropped[HEADER_ID].to_list():
            self.take(hid, topic)
        return flagged.filter(~pl.col(_DUPLICATE)).drop(_DUPLICATE)

    def take(self, hid: str, topic: str) -> bool:
        """Whether ``hid`` is to be suppressed (then it is forgotten: it comes once)."""
        if not self.ids:
            return False
        for tp, ids in self.ids.items():
            if tp[0] == topic and hid in ids:
                ids.discard(hid)
                return True
        return False
