"""The detector bank and the incident tracker as one ``update_state`` function.

The engine hands the function a partition's rows and the state rows of their keys; the
state row of a machine holds its detector state and open incidents as bytes, plus a
version.  The banks stay in memory between batches: a state row is only unpickled when
its version is not the one in memory (after a restart or a rebalance), so the common
path pays one snapshot per machine and batch, not a restore.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Mapping, Sequence

import polars as pl

from haeryu.stream.api.state_functions import StateFn
from haeryu.usecases.factory.config import DetectorConfig
from haeryu.usecases.factory.detectors import ALERT_SCHEMA, DetectorBank
from haeryu.usecases.factory.incidents import INCIDENT_SCHEMA, Incident, IncidentTracker

STATE_SCHEMA = pl.Schema({"version": pl.Int64, "blob": pl.Binary})

OUTPUT_SCHEMA = pl.Schema(
    {  # type: ignore[arg-type]
        "record": pl.String,  # "alert" or "incident"
        **{("machine" if k == "key" else k): v for k, v in ALERT_SCHEMA.items()},
        **{k: v for k, v in INCIDENT_SCHEMA.items() if k not in ALERT_SCHEMA},
    }
)
"""Rows the function emits: alerts and incident events, told apart by ``record``."""


class FactoryState:
    """Detectors per equipment type and incidents per machine, for ``update_state``.

    Parameters
    ----------
    sensors
        Value columns of the readings.
    configs
        Detector settings per equipment type (the ``type`` column); ``default`` for the
        others.
    max_fits
        At most this many machines (per equipment type) fit their baseline and model in
        one call (see :class:`DetectorBank`): machines started together finish their
        training together, and fitting them all at once stalls the stream for seconds.
    max_wait_ms
        ... but a machine that waited this long in event time fits anyway.
    """

    def __init__(
        self,
        sensors: Sequence[str],
        configs: Mapping[str, DetectorConfig] | None = None,
        *,
        default: DetectorConfig | None = None,
        key: str = "machine",
        time_col: str = "ts",
        close_after_ms: int = 5_000,
        update_every_ms: int = 5_000,
        snapshot_every_s: float = 0.0,
        max_fits: int | None = 8,
        max_wait_ms: float | None = 3_000,
    ) -> None:
        self.max_fits, self.max_wait_ms = max_fits, max_wait_ms
        self.sensors = list(sensors)
        self.configs = dict(configs or {})
        self.default = default or DetectorConfig()
        self.key, self.time_col = key, time_col
        self.banks: dict[str, DetectorBank] = {}
        self.bank_of: dict[str, str] = {}
        self.tracker = IncidentTracker(close_after_ms, update_every_ms)
        self.versions: dict[str, int] = {}
        self.snapshot_every_s = snapshot_every_s
        self.restored = 0  # machines whose state came back from the changelog
        self._blobs: dict[str, tuple[bytes, float]] = {}

    def _bank(self, kind: str) -> DetectorBank:
        bank = self.banks.get(kind)
        if bank is None:
            bank = self.banks[kind] = DetectorBank(
                self.sensors,
                self.configs.get(kind, self.default),
                max_fits=self.max_fits,
                max_wait_ms=self.max_wait_ms,
            )
        return bank

    def __call__(
        self, batch: pl.DataFrame, state: pl.DataFrame
    ) -> tuple[pl.DataFrame, pl.DataFrame]:
        """Score the batch; returns (alerts and incident events, new state rows)."""
        self._restore(state)
        # (The bank itself takes each machine's rows in event-time order.)
        # One bank for every type unless some type has settings of its own.
        by_type = bool(self.configs) and "type" in batch.columns
        groups = batch.partition_by("type", as_dict=True) if by_type else {("*",): batch}
        alerts = []
        now: dict[str, int] = {}
        for (kind, *_), rows in groups.items():
            kind = str(kind)
            machines = rows[self.key].cast(pl.String).to_numpy()
            bank = self._bank(kind)
            found, _ = bank.process(
                machines,
                rows[self.time_col].to_numpy(),
                rows.select(pl.col(self.sensors).cast(pl.Float64)).to_numpy(),
            )
            for m in set(machines.tolist()):
                self.bank_of[m] = kind
                now[m] = int(bank.latest(m))
            alerts.append(found)
        found = (
            pl.concat(alerts)
            if len(alerts) > 1
            else alerts[0]
            if alerts
            else ALERT_SCHEMA.to_frame()
        )
        incidents = self.tracker.process(found, now)
        # Most batches carry no incident event: one select then, not two and a concat.
        parts = [_shape(f, r) for f, r in ((found, "alert"), (incidents, "incident")) if f.height]
        out = (
            parts[0]
            if len(parts) == 1
            else pl.concat(parts, how="vertical")
            if parts
            else OUTPUT_SCHEMA.to_frame()
        )
        return out, self._snapshot(list(now), batch.schema[self.key])

    def _snapshot(self, machines: list[str], key_type: pl.DataType) -> pl.DataFrame:
        # With snapshot_every_s > 0 a machine's state is pickled at most that often and
        # its last snapshot stands for it in between: cheaper, but a restore then
        # resumes from up to that much earlier.  The default (0) is exact.
        versions, blobs = [], []
        wall = time.monotonic()
        # Open incidents grouped by machine once, not searched once per machine.
        by_machine: dict[str, dict[tuple[str, str, str], Incident]] = {}
        for ident, inc in self.tracker.open.items():
            by_machine.setdefault(ident[0], {})[ident] = inc
        for m in machines:
            cached = self._blobs.get(m)
            if cached is None or wall - cached[1] >= self.snapshot_every_s:
                self.versions[m] = self.versions.get(m, 0) + 1
                kind = self.bank_of[m]
                open_incidents = by_machine.get(m, {})
                blob = pickle.dumps((kind, self.banks[kind].snapshot(m), open_incidents))
                cached = self._blobs[m] = (blob, wall)
            versions.append(self.versions[m])
            blobs.append(cached[0])
        return pl.DataFrame(
            {self.key: pl.Series(machines).cast(key_type), "version": versions, "blob": blobs},
            schema_overrides={"blob": pl.Binary},
        )

    def _restore(self, state: pl.DataFrame) -> None:
        if state.is_empty() or "blob" not in state.columns:
            return
        for machine, version, blob in state.select(
            pl.col(self.key).cast(pl.String), "version", "blob"
        ).iter_rows():
            if blob is None or self.versions.get(machine) == version:
                continue
            kind, snapshot, open_incidents = pickle.loads(blob)
            self._bank(kind).restore(machine, snapshot)
            self.restored += 1
            self.bank_of[machine] = kind
            for ident in [i for i in self.tracker.open if i[0] == machine]:
                del self.tracker.open[ident]
            incidents: dict[tuple[str, str, str], Incident] = open_incidents
            self.tracker.open.update(incidents)
            self.versions[machine] = version
            self._blobs.pop(machine, None)


def _shape(frame: pl.DataFrame, record: str) -> pl.DataFrame:
    """``frame`` with the columns of OUTPUT_SCHEMA, in its order, in one select."""
    have = set(frame.columns)
    exprs = []
    for name, dtype in OUTPUT_SCHEMA.items():
        source = "key" if name == "machine" else name
        if name == "record":
            exprs.append(pl.lit(record, dtype).alias(name))
        elif source in have:
            exprs.append(pl.col(source).cast(dtype).alias(name))
        else:
            exprs.append(pl.lit(None, dtype).alias(name))
    return frame.select(exprs)


def factory_state_fn(sensors: Sequence[str], **kwargs: object) -> StateFn:
    """A :data:`StateFn` running :class:`FactoryState` (same arguments)."""
    return FactoryState(sensors, **kwargs)  # type: ignore[arg-type]
