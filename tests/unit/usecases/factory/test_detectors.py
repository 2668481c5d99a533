"""Each detector fires on the anomaly it is for, and state carries across batches."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from haeryu.usecases.factory import DetectorBank, DetectorConfig, Limits

SENSORS = ["current", "temperature", "vibration"]
TRAIN = 200


def readings(n: int = 600, seed: int = 1) -> np.ndarray:
    """Current and temperature move together (temperature follows current); vibration is noise."""
    rng = np.random.default_rng(seed)
    load = np.sin(np.arange(n) / 15.0)
    current = 10 + 3 * load + rng.normal(0, 0.1, n)
    temperature = 50 + 6 * load + rng.normal(0, 0.2, n)
    vibration = 1 + rng.normal(0, 0.05, n)
    return np.stack([current, temperature, vibration], axis=1)


def run(x: np.ndarray, config: DetectorConfig, batch: int | None = None) -> pl.DataFrame:
    bank = DetectorBank(SENSORS, config)
    ts = np.arange(len(x), dtype=np.int64) * 100
    keys = np.array(["m1"] * len(x))
    step = batch or len(x)
    parts = [
        bank.process(keys[i : i + step], ts[i : i + step], x[i : i + step])[0]
        for i in range(0, len(x), step)
    ]
    return pl.concat(parts)


def only(detector: str, **kw: object) -> DetectorConfig:
    return DetectorConfig(train_rows=TRAIN, detectors=(detector,), **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "detector", ["zscore", "ewma", "roc", "stuck", "missing", "correlation", "learned"]
)
def test_quiet_on_normal_readings(detector: str) -> None:
    # The learned model's alarm level is the training p99, so a few of its rows may
    # cross it on clean data; the others stay silent.
    alerts = run(readings(), only(detector, model_factor=1.5))
    assert alerts.height <= (3 if detector == "learned" else 0), alerts


def injected(kind: str) -> tuple[np.ndarray, int, int]:
    x = readings()
    start, end = 400, 440
    if kind == "spike":
        x[start, 2] += 3.0
        end = start + 1
    elif kind == "shift":
        x[start:end, 2] += 0.6
    elif kind == "rate_of_change":
        x[start:end, 2] += np.linspace(0, 8, end - start)
    elif kind == "stuck":
        x[start:end, 1] = x[start, 1]
    elif kind == "missing":
        x[start:end, 0] = np.nan
    elif kind == "correlation":
        x[start:end, 1] = 50 + np.random.default_rng(5).normal(0, 0.2, end - start)
    elif kind == "multivariate":
        x[start:end, 0] += 2.0
    return x, start, end


@pytest.mark.parametrize(
    ("detector", "kind", "sensor"),
    [
        ("zscore", "spike", "vibration"),
        ("ewma", "shift", "vibration"),
        ("roc", "rate_of_change", "vibration"),
        ("stuck", "stuck", "temperature"),
        ("missing", "missing", "current"),
        ("correlation", "correlation", "current|temperature"),
        ("learned", "multivariate", "current"),
    ],
)
def test_fires_inside_its_anomaly(detector: str, kind: str, sensor: str) -> None:
    x, start, end = injected(kind)
    alerts = run(x, only(detector, model_factor=1.5))
    ts_start, ts_end = start * 100, (end + 20) * 100
    inside = alerts.filter(pl.col("ts").is_between(ts_start, ts_end))
    assert inside.height > 0, f"{detector} missed the {kind}"
    assert set(inside["kind"]) == {kind}
    assert sensor in set(inside["sensor"])
    assert inside["reason_en"].null_count() == 0 and inside["reason_ko"].null_count() == 0


def test_limits_fire_from_the_first_reading() -> None:
    x = readings()
    x[5, 1] = 120.0
    alerts = run(x, only("limit", limits={"temperature": Limits(high=100.0)}))
    assert alerts.select("ts", "sensor", "severity").rows() == [(500, "temperature", "warning")]
    assert "운전 한계" in alerts["reason_ko"][0]


def test_batches_of_any_size_give_the_same_alerts() -> None:
    x, _, _ = injected("shift")
    x[450:470, 1] = x[450, 1]
    config = DetectorConfig(train_rows=TRAIN)
    whole = run(x, config)
    assert whole.height > 0
    for batch in (1, 7, 64):
        cut = run(x, config, batch=batch)
        assert cut.select("ts", "detector", "sensor").equals(
            whole.select("ts", "detector", "sensor")
        )
        assert np.allclose(cut["score"].to_numpy(), whole["score"].to_numpy())


def test_keys_keep_separate_state() -> None:
    bank = DetectorBank(SENSORS, DetectorConfig(train_rows=TRAIN, detectors=("stuck",)))
    x = readings()
    stuck = x.copy()
    stuck[TRAIN + 10 :, 1] = stuck[TRAIN + 10, 1]
    both = np.empty((2 * len(x), 3))
    both[0::2], both[1::2] = x, stuck  # interleaved as a stream delivers them
    keys = np.array(["ok", "bad"] * len(x))
    ts = np.repeat(np.arange(len(x)) * 100, 2)
    alerts, flagged = bank.process(keys, ts, both)
    assert set(alerts["key"]) == {"bad"}
    assert flagged[1::2].any() and not flagged[0::2].any()


def test_unknown_detector_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown detector"):
        DetectorConfig(detectors=("zscore", "magic"))


def test_a_restored_key_raises_what_the_original_would() -> None:
    x, _, _ = injected("shift")
    config = DetectorConfig(train_rows=TRAIN)
    ts = np.arange(len(x), dtype=np.int64) * 100
    keys = np.array(["m1"] * len(x))
    original = DetectorBank(SENSORS, config)
    original.process(keys[:300], ts[:300], x[:300])
    expected, _ = original.process(keys[300:], ts[300:], x[300:])
    before = DetectorBank(SENSORS, config)
    before.process(keys[:300], ts[:300], x[:300])
    restored = DetectorBank(SENSORS, config)
    restored.restore("m1", before.snapshot("m1"))
    got, _ = restored.process(keys[300:], ts[300:], x[300:])
    assert expected.height > 0
    assert got.select("ts", "detector", "sensor").equals(
        expected.select("ts", "detector", "sensor")
    )
    # A key still in training snapshots as untrained: it learns again after a restore.
    young = DetectorBank(SENSORS, config)
    young.process(keys[:50], ts[:50], x[:50])
    assert young.snapshot("m1") == b""


def test_fits_per_batch_stay_under_the_bound_and_waiting_keys_still_detect() -> None:
    # Ten machines finish their training rows in the same batch; with max_fits=3 no
    # batch fits more than three, the others wait (holding their rows) and fit later.
    keys = [f"m{i}" for i in range(10)]
    data = {k: readings(seed=i + 1) for i, k in enumerate(keys)}
    for x in data.values():
        x[400, 2] += 3.0  # a spike on every machine, after all of them have fitted
    bank = DetectorBank(SENSORS, DetectorConfig(train_rows=TRAIN), max_fits=3)
    step, per_batch, found = 20, [], []
    for lo in range(0, 600, step):
        before = bank.fits
        part = np.vstack([data[k][lo : lo + step] for k in keys])
        ts = np.tile(np.arange(lo, lo + step, dtype=np.int64) * 100, len(keys))
        found.append(bank.process(np.repeat(np.array(keys), step), ts, part)[0])
        per_batch.append(bank.fits - before)
    assert max(per_batch) == 3
    assert sum(per_batch) == len(keys)
    assert per_batch[TRAIN // step - 1 : TRAIN // step + 3] == [3, 3, 3, 1]
    alerts = pl.concat(found)
    spikes = alerts.filter(pl.col("detector") == "zscore")
    assert set(spikes["key"]) == set(keys)
    first = spikes.group_by("key").agg(pl.col("ts").min())
    assert set(first["ts"]) == {400 * 100}
    # The machines that waited start their levels from the rows they held: no alarm
    # at the fit nor before the spike but the learned model's few training-p99 crossings.
    early = alerts.filter((pl.col("detector") != "learned") & (pl.col("ts") < 400 * 100))
    assert early.is_empty(), early


def test_max_fits_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_fits"):
        DetectorBank(SENSORS, max_fits=0)


def test_a_key_waiting_too_long_in_event_time_fits_anyway() -> None:
    # One fit per batch for ten keys would leave the last waiting ten batches; with
    # max_wait_ms of 3 batches' event time, the rest fit once they have waited that long.
    keys = [f"m{i}" for i in range(10)]
    data = {k: readings(seed=i + 1) for i, k in enumerate(keys)}
    bank = DetectorBank(SENSORS, DetectorConfig(train_rows=TRAIN), max_fits=1, max_wait_ms=6_000)
    step, per_batch = 20, []
    for lo in range(0, 400, step):
        before = bank.fits
        part = np.vstack([data[k][lo : lo + step] for k in keys])
        ts = np.tile(np.arange(lo, lo + step, dtype=np.int64) * 100, len(keys))
        bank.process(np.repeat(np.array(keys), step), ts, part)
        per_batch.append(bank.fits - before)
    first = TRAIN // step - 1
    # Training ends at ts 19,900; a batch later the newest row is 21,900 (2 s), two
    # batches 23,900, three 25,900 (6 s): the seven still waiting fit then.
    assert per_batch[first : first + 5] == [1, 1, 1, 7, 0]
