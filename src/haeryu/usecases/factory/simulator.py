"""A simulated factory: plants, lines and machines whose sensors behave like real ones.

Every machine has five sensors (temperature, vibration, pressure, current, rpm) driven
by its load: current follows load, temperature follows current with a lag, vibration
follows speed.  Machines run operating cycles with idle periods, warm up after a start,
wear slowly and change load at shift changes.  Labeled anomalies of seven kinds are
injected at ``anomaly_rate`` episodes per machine-second, after a warm-up during which
the factory runs clean (the detectors learn each machine from it).

Generation is vectorized: :meth:`FactorySimulator.tick` makes every reading of every
machine for a slice of time with numpy, as one frame.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl

from haeryu.usecases.factory.arrays import ewm

TYPES: tuple[str, ...] = ("cnc", "press", "pump", "compressor", "conveyor")
SENSORS: tuple[str, ...] = ("temperature", "vibration", "pressure", "current", "rpm")
KINDS: tuple[str, ...] = (
    "spike",
    "level_shift",
    "degradation",
    "stuck",
    "noise",
    "correlation",
    "missing",
)
TYPE_KO = {
    "cnc": "CNC",
    "press": "프레스",
    "pump": "펌프",
    "compressor": "컴프레서",
    "conveyor": "컨베이어",
}
SENSOR_KO = {
    "temperature": "온도",
    "vibration": "진동",
    "pressure": "압력",
    "current": "전류",
    "rpm": "회전수",
}

# Per type: value at zero load and at full load of (temperature, vibration, pressure,
# current, rpm), and the noise of each sensor (standard deviation).
_IDLE = {
    "cnc": (30.0, 0.4, 5.5, 2.0, 0.0),
    "press": (35.0, 0.8, 40.0, 5.0, 0.0),
    "pump": (28.0, 0.3, 1.0, 3.0, 0.0),
    "compressor": (40.0, 0.7, 6.0, 10.0, 0.0),
    "conveyor": (25.0, 0.2, 1.0, 1.0, 0.0),
}
_FULL = {
    "cnc": (60.0, 3.0, 6.5, 20.0, 8000.0),
    "press": (60.0, 5.0, 190.0, 45.0, 30.0),
    "pump": (55.0, 1.8, 6.0, 15.0, 2900.0),
    "compressor": (85.0, 2.7, 8.0, 70.0, 3000.0),
    "conveyor": (40.0, 1.0, 1.2, 7.0, 1500.0),
}
_NOISE_SHARE = 0.01  # noise, as a share of the sensor's idle-to-full range
_THERMAL_ALPHA = 0.02  # per reading at 100 Hz: temperature lags current by ~0.5 s


@dataclass(frozen=True)
class Machine:
    """One machine of the topology."""

    machine: str
    plant: str
    line: str
    type: str


def topology(machines: int) -> list[Machine]:
    """Plants of 5 lines; each line holds machines of every type in turn."""
    out = []
    for i in range(machines):
        plant, line = i // 50 + 1, (i // 10) % 5 + 1
        kind = TYPES[i % len(TYPES)]
        out.append(Machine(f"{kind}-{i + 1:04d}", f"plant-{plant}", f"line-{plant}-{line}", kind))
    return out


@dataclass(frozen=True)
class Episode:
    """A labeled anomaly: what happens to which sensor of which machine, and when."""

    machine: str
    sensor: str
    kind: str
    start_ms: int
    end_ms: int
    magnitude: float


class FactorySimulator:
    """Readings, ground truth and machine logs of a simulated factory.

    Parameters
    ----------
    machines, rate
        Machines, and readings per second over all of them (each machine reports at
        ``rate / machines`` Hz).
    anomaly_rate
        Anomaly episodes started per machine-second, after ``warmup_s``.
    start_ms
        Event time of the first reading (epoch ms).
    """

    def __init__(
        self,
        machines: int = 200,
        rate: int = 20_000,
        *,
        seed: int = 0,
        anomaly_rate: float = 0.005,
        duration_s: float = 600.0,
        warmup_s: float = 30.0,
        start_ms: int = 1_767_225_600_000,
    ) -> None:
        if machines < 1 or rate < machines:
            raise ValueError("need at least one machine and one reading per machine-second")
        self.machines = topology(machines)
        self.hz = rate / machines
        self.period_ms = 1000.0 / self.hz
        self.rng = np.random.default_rng(seed)
        self.start_ms = start_ms
        self.warmup_s = warmup_s
        m = len(self.machines)
        types = [x.type for x in self.machines]
        self.idle = np.array([_IDLE[t] for t in types])
        self.full = np.array([_FULL[t] for t in types])
        self.noise = np.maximum((self.full - self.idle) * _NOISE_SHARE, 1e-3)
        self.noise[:, 0] = 0.15  # thermometers: 0.15 degC
        self.cycle_s = self.rng.uniform(12, 25, m)
        self.phase = self.rng.uniform(0, 1, m)
        self.level = self.rng.uniform(0.6, 0.9, m)
        self.thermal = self.idle[:, 0] + (self.full[:, 0] - self.idle[:, 0]) * 0.3
        self.episodes = self._schedule(anomaly_rate, duration_s)
        self._n = 0  # readings per machine made so far
        self._frozen: dict[Episode, float] = {}  # value of each stuck episode

    # -- ground truth --------------------------------------------------------------

    def _schedule(self, rate: float, duration_s: float) -> list[Episode]:
        """Non-overlapping episodes per machine, at least 10 s apart, after the warm-up,
        starting early enough to end before the run does (up to 15 s before its end)."""
        out: list[Episode] = []
        after = max(duration_s - self.warmup_s, 0.0)
        span = after - min(15.0, 0.25 * after)
        for machine in self.machines:
            count = self.rng.poisson(rate * max(span, 0.0))
            t = self.warmup_s
            starts = np.sort(self.rng.uniform(self.warmup_s, self.warmup_s + max(span, 0.0), count))
            for s in starts:
                if s < t:
                    continue
                kind = KINDS[int(self.rng.integers(len(KINDS)))]
                length = 0.2 if kind == "spike" else float(self.rng.uniform(5, 15))
                sensor = SENSORS[int(self.rng.integers(len(SENSORS)))]
                if kind == "correlation":
                    sensor = "current"  # current stops following the load
                magnitude = float(self.rng.uniform(0.8, 1.2))
                start = self.start_ms + int(s * 1000)
                out.append(
                    Episode(
                        machine.machine, sensor, kind, start, start + int(length * 1000), magnitude
                    )
                )
                t = s + length + 10.0
        return sorted(out, key=lambda e: e.start_ms)

    def truth(self) -> pl.DataFrame:
        """Every scheduled episode: machine, sensor, kind, start and end (epoch ms)."""
        return pl.DataFrame(
            [e.__dict__ for e in self.episodes],
            schema={
                "machine": pl.String,
                "sensor": pl.String,
                "kind": pl.String,
                "start_ms": pl.Int64,
                "end_ms": pl.Int64,
                "magnitude": pl.Float64,
            },
        )

    # -- readings ------------------------------------------------------------------

    def _load(self, t_s: np.ndarray) -> np.ndarray:
        """Load per machine (rows) and time (columns): cycles with idle periods, shifts."""
        cycle = ((t_s[None, :] / self.cycle_s[:, None]) + self.phase[:, None]) % 1.0
        # Run for 85 % of a cycle, idle for the rest, with 1.5 s ramps between.
        ramp = 1.5 / self.cycle_s[:, None]
        up = np.clip(cycle / ramp, 0, 1) * np.clip((0.85 - cycle) / ramp, 0, 1)
        # Shift changes every 8 minutes: every machine idles for 10 s.
        handover = ((t_s % 480.0) > 470.0)[None, :]
        up = np.where(handover, 0.0, up)
        wear = 1.0 + 0.0005 * t_s[None, :] / 60.0  # slow wear: +0.05 % load per minute
        return 0.1 + (self.level[:, None] - 0.1) * up * wear

    def tick(self, seconds: float) -> pl.DataFrame:
        """The next ``seconds`` of readings of every machine, in event-time order."""
        n = max(round(seconds * self.hz), 1)
        m = len(self.machines)
        idx = self._n + np.arange(n)
        self._n += n
        t_s = idx * self.period_ms / 1000.0
        load = self._load(t_s)  # m x n
        # Warm-up after a cold start: the first minute runs hotter as oil thins.
        load = load * (1.0 + 0.05 * np.exp(-t_s / 60.0))[None, :]
        span = self.full - self.idle  # m x 5
        values = self.idle[:, None, :] + span[:, None, :] * load[:, :, None]  # m x n x 5
        heat = self.idle[:, 0:1] + span[:, 0:1] * load
        thermal = ewm(heat, _THERMAL_ALPHA, self.thermal)
        self.thermal = thermal[:, -1]
        values[:, :, 0] = thermal
        values += self.rng.normal(size=values.shape) * self.noise[:, None, :]
        ts = (self.start_ms + idx * self.period_ms).astype(np.int64)
        values = self._inject(values, ts, load)
        frame = pl.DataFrame(
            {
                "machine": np.repeat([x.machine for x in self.machines], n),
                "plant": np.repeat([x.plant for x in self.machines], n),
                "line": np.repeat([x.line for x in self.machines], n),
                "type": np.repeat([x.type for x in self.machines], n),
                "ts": np.tile(ts, m),
                **{s: values[:, :, i].reshape(-1) for i, s in enumerate(SENSORS)},
            }
        )
        return frame.with_columns(pl.col(SENSORS).fill_nan(None)).sort("ts", maintain_order=True)

    def _inject(self, values: np.ndarray, ts: np.ndarray, load: np.ndarray) -> np.ndarray:
        """Apply the episodes that overlap this slice of time (one numpy step per episode)."""
        lo, hi = int(ts[0]), int(ts[-1])
        index = {x.machine: i for i, x in enumerate(self.machines)}
        for e in self.episodes:
            if e.end_ms < lo:
                continue
            if e.start_ms > hi:
                break
            mi, si = index[e.machine], SENSORS.index(e.sensor)
            cols = np.flatnonzero((ts >= e.start_ms) & (ts <= e.end_ms))
            if cols.size == 0:
                continue
            span = self.full[mi, si] - self.idle[mi, si] or 1.0
            noise = self.noise[mi, si]
            seg = values[mi, cols, si]
            frac = (ts[cols] - e.start_ms) / max(e.end_ms - e.start_ms, 1)
            if e.kind == "spike":
                seg = seg + 0.3 * span * e.magnitude
            elif e.kind == "level_shift":
                seg = seg + 0.2 * span * e.magnitude
            elif e.kind == "degradation":
                seg = seg + (0.05 + 0.35 * frac) * span * e.magnitude
            elif e.kind == "stuck":
                # Frozen at the value of the episode's first reading, across slices.
                frozen = self._frozen.setdefault(e, float(values[mi, cols[0], si]))
                seg = np.full_like(seg, frozen)
            elif e.kind == "noise":
                seg = seg + self.rng.normal(size=seg.shape) * noise * 8 * e.magnitude
            elif e.kind == "correlation":
                # The sensor follows a load that is not the machine's.
                other = np.clip(1.1 - load[mi, cols], 0.1, 1.0)
                seg = self.idle[mi, si] + span * other + self.rng.normal(size=seg.shape) * noise
            elif e.kind == "missing":
                seg = np.full_like(seg, np.nan)
            values[mi, cols, si] = seg
        return values

    # -- logs ----------------------------------------------------------------------

    def logs(self, frame: pl.DataFrame, truth: pl.DataFrame) -> pl.DataFrame:
        """Machine logs for a slice: a status line per machine and one per episode start."""
        first = frame.group_by("machine", maintain_order=True).agg(
            pl.col("ts").first(),
            pl.col("line").first(),
            pl.col("type").first(),
            pl.col("temperature").mean(),
        )
        status = first.sample(fraction=0.05, seed=int(self.rng.integers(1 << 31))).select(
            "ts",
            "machine",
            pl.lit("INFO").alias("level"),
            pl.format(
                "{} {} running normally, temperature {} C",
                pl.col("line"),
                pl.col("type"),
                pl.col("temperature").round(1),
            ).alias("message"),
        )
        lines = []
        by_machine = {x.machine: x for x in self.machines}
        for e in truth.iter_rows(named=True):
            x = by_machine[e["machine"]]
            line_no = x.line.rsplit("-", 1)[-1]
            ko = f"{line_no}번 라인 {TYPE_KO[x.type]} {SENSOR_KO[e['sensor']]} 이상이 감지되었습니다 ({e['kind']})"
            en = f"line {line_no} {x.type} {x.machine}: {e['sensor']} abnormal ({e['kind']})"
            lines.append((e["start_ms"], x.machine, "WARN", ko))
            lines.append((e["start_ms"], x.machine, "WARN", en))
        events = pl.DataFrame(lines, schema=status.schema, orient="row")
        return pl.concat([status, events]).sort("ts")

    def deliver(self, frame: pl.DataFrame, max_delay_ms: int = 200) -> pl.DataFrame:
        """Rows as gateways deliver them: in bursts per line, slightly out of order."""
        delay = self.rng.integers(0, max_delay_ms, frame.height)
        return (
            frame.with_columns(pl.Series("_arrive", frame["ts"].to_numpy() + delay))
            .sort("_arrive")
            .drop("_arrive")
        )
