"""The executor end to end, in-process: operators, sinks, DLQ, state, joins."""

from __future__ import annotations

import json
from dataclasses import dataclass

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from haeryu.stream import MemorySink, Pipeline, PlanError, col, run_local, windows
from haeryu.stream.runtime.topic_output import ID_HEADER


@dataclass
class Reading:
    machine_id: str
    temperature: float
    ts: int


def readings(n: int, *, machines: int = 3, start: int = 0) -> list[dict]:
    return [
        {
            "machine_id": f"m{i % machines}",
            "temperature": 80.0 + (i * 7) % 20,
            "ts": start + i * 100,
        }
        for i in range(n)
    ]


def test_filter_and_projection_to_a_topic() -> None:
    p = Pipeline("t")
    src = p.source("in", schema=Reading, timestamp="ts")
    src.filter(col("temperature") > 90).select("machine_id", hot=col("temperature") - 90).to_topic(
        "out", key="machine_id"
    )
    out = run_local(p, {"in": readings(50)}, batch_size=7)
    frame = out.topic("out")
    want = [r for r in readings(50) if r["temperature"] > 90]
    assert frame["hot"].to_list() == [r["temperature"] - 90 for r in want]
    assert frame.columns == ["machine_id", "hot", "_key"]
    assert frame["_key"].to_list() == [r["machine_id"] for r in want]
    # every record is tagged for exactly-once replay
    assert all(any(h[0] == ID_HEADER for h in headers) for _, _, headers in out.records("out"))


def test_route_picks_the_topic_from_a_column() -> None:
    p = Pipeline("t")
    p.source("in").route("kind", {"a": "topic-a", "b": "topic-b"}, default="other")
    records = [{"kind": k, "i": i} for i, k in enumerate("abcab")]
    out = run_local(p, {"in": records})
    assert out.topic("topic-a")["i"].to_list() == [0, 3]
    assert out.topic("topic-b")["i"].to_list() == [1, 4]
    assert out.topic("other")["i"].to_list() == [2]


BAD = [
    b"not json",
    b"[1, 2]",
    None,
    b"",
    b'{"machine_id": "x", "temperature": "hot", "ts": 1}',
    b'{"machine_id": "x", "ts": 1}',
    b'{"machine_id": "x", "temperature": 1.0}',
]


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.sampled_from(BAD), st.integers(0, 1000).map(lambda i: readings(1, start=i)[0])
        ),
        max_size=40,
    ),
    st.integers(1, 10),
)
def test_every_record_is_either_processed_or_dead_lettered(records: list, batch_size: int) -> None:
    p = Pipeline("acct")
    p.source("in", schema=Reading, timestamp="ts").to_topic("out", exactly_once=False)
    out = run_local(p, {"in": records}, batch_size=batch_size)
    written = len(out.records("out"))
    dead = len(out.records("acct.dlq"))
    assert written + dead == len(records)
    for report in out.reports:
        assert report.decoded + report.dead == report.records_in


def test_dead_letters_keep_original_bytes_reason_and_origin() -> None:
    p = Pipeline("dlq")
    p.source("in", schema=Reading, timestamp="ts").to_topic("out")
    good = json.dumps(readings(1)[0]).encode()
    out = run_local(p, {"in": [good, b"{broken", good]}, keys={"in": ["a", "b", "c"]})
    dead = out.dead_letters()
    assert dead.height == 1
    row = dead.row(0, named=True)
    assert row["value"] == b"{broken" and row["key"] == b"b"
    assert row["error"].startswith("invalid JSON")
    assert (row["topic"], row["stage"]) == ("in", "decode")
    assert row["partition"] == "0" and row["offset"] == "1"


def test_a_failing_user_function_dead_letters_only_the_bad_rows() -> None:
    def boom(frame: pl.DataFrame) -> pl.DataFrame:
        if (frame["temperature"] > 98).any():
            raise ValueError("too hot to handle")
        return frame.with_columns(ok=pl.lit(True))

    p = Pipeline("iso")
    p.source("in", schema=Reading, timestamp="ts").map_batches(boom).to_topic("out")
    data = readings(40)
    out = run_local(p, {"in": data}, batch_size=16)
    hot = [r for r in data if r["temperature"] > 98]
    assert len(out.records("out")) == len(data) - len(hot)
    dead = out.dead_letters()
    assert dead.height == len(hot)
    assert set(dead["stage"]) == {"mapbatches"}
    assert all("too hot" in e for e in dead["error"])


def test_tumbling_window_per_key_matches_a_group_by() -> None:
    p = Pipeline("w")
    (
        p.source("in", schema=Reading, timestamp="ts", partitioned_by="machine_id")
        .key_by("machine_id")
        .window(windows.tumbling("1s"))
        .agg(n=pl.len(), avg=col("temperature").mean(), hi=col("temperature").max())
        .to_topic("stats")
    )
    data = readings(200)
    out = run_local(p, {"in": data}, batch_size=13)
    got = out.topic("stats").select("machine_id", "n", "avg", "hi").sort("machine_id", "n", "avg")
    want = (
        pl.DataFrame(data)
        .group_by("machine_id", (pl.col("ts") // 1000).alias("w"))
        .agg(n=pl.len(), avg=pl.col("temperature").mean(), hi=pl.col("temperature").max())
        .select("machine_id", pl.col("n").cast(pl.Int64), "avg", "hi")
        .sort("machine_id", "n", "avg")
    )
    assert got.equals(want)


def test_key_by_repartitions_through_an_internal_topic() -> None:
    p = Pipeline("rp")
    (
        p.source("in", schema=Reading, timestamp="ts")
        .key_by("machine_id")
        .window(windows.tumbling("1s"))
        .agg(n=pl.len())
        .to_topic("stats")
    )
    data = readings(120, machines=4)
    out = run_local(p, {"in": data}, batch_size=10, partitions=3)
    assert out.records("rp.repartition.machine_id")
    got = out.topic("stats").group_by("machine_id").agg(pl.col("n").sum()).sort("machine_id")
    want = (
        pl.DataFrame(data).group_by("machine_id").agg(n=pl.len().cast(pl.Int64)).sort("machine_id")
    )
    assert got.equals(want)


def test_late_records_go_to_the_side_output() -> None:
    p = Pipeline("late")
    stats = (
        p.source("in", timestamp="ts", partitioned_by="k")
        .key_by("k")
        .window(windows.tumbling("10ms"))
        .agg(n=pl.len())
    )
    stats.to_topic("stats")
    stats.late().to_topic("late")
    records = [{"k": "a", "ts": t} for t in (1, 2, 25, 3, 26, 41)]
    out = run_local(p, {"in": records}, batch_size=1)
    assert out.topic("late")["ts"].to_list() == [3]
    assert out.topic("stats")["n"].to_list() == [2, 2, 1]


def test_ewm_state_continues_across_batches() -> None:
    p = Pipeline("ewm")
    (
        p.source("in", partitioned_by="k")
        .key_by("k")
        .ewm("x", alpha=0.3)
        .to_topic("out", exactly_once=False)
    )
    values = [1.0, 4.0, 2.0, 8.0, 5.0, 7.0, 3.0]
    records = [{"k": k, "x": v} for v in values for k in ("a", "b")]
    out = run_local(p, {"in": records}, batch_size=3)
    got = out.topic("out").filter(pl.col("k") == "a")
    mean, var = values[0], 0.0
    means, variances = [mean], [var]
    for x in values[1:]:
        diff = x - mean
        mean += 0.3 * diff
        var = (1 - 0.3) * (var + 0.3 * diff * diff)
        means.append(mean)
        variances.append(var)
    assert got["x_ewm_mean"].to_list() == pytest.approx(means)
    assert got["x_ewm_var"].to_list() == pytest.approx(variances)


def test_stream_table_join_uses_the_latest_value_per_key() -> None:
    p = Pipeline("join")
    machines = p.table("machines", key_name="machine_id")
    p.source("in", schema=Reading, timestamp="ts").join_table(
        machines, on="machine_id", prefix="m_"
    ).to_topic("out")
    table = [{"line": "A"}, {"line": "B"}, {"line": "C"}]
    out = run_local(
        p,
        {"machines": table, "in": readings(6)},
        keys={"machines": ["m0", "m1", "m0"]},
    )
    frame = out.topic("out")
    assert frame["m_line"].to_list() == ["C", "B", None, "C", "B", None]


def test_flat_map_and_explode() -> None:
    p = Pipeline("fm")
    src = p.source("in")
    src.flat_map(lambda row: [{"w": w} for w in row["text"].split()]).to_topic("words")
    src.with_columns(parts=col("text").str.split(" ")).explode("parts").select("parts").to_topic(
        "parts"
    )
    out = run_local(p, {"in": [{"text": "a b"}, {"text": "c"}]})
    assert out.topic("words")["w"].to_list() == ["a", "b", "c"]
    assert out.topic("parts")["parts"].to_list() == ["a", "b", "c"]
    ids = [h for _, _, hs in out.records("parts") for n, h in hs if n == ID_HEADER]
    assert len(set(ids)) == 3


def test_custom_sink_gets_frames() -> None:
    sink = MemorySink()
    p = Pipeline("sink")
    p.source("in").to_sink(sink)
    run_local(p, {"in": [{"a": 1}, {"a": 2}]})
    sink.flush()
    assert sink.frame()["a"].to_list() == [1, 2]


def test_replayed_records_already_written_are_suppressed() -> None:
    p = Pipeline("eo")
    p.source("in").to_topic("out")
    first = run_local(p, {"in": [{"a": i} for i in range(5)]})
    seen = {h.decode() for _, _, hs in first.records("out")[:3] for n, h in hs if n == ID_HEADER}
    from haeryu.stream.formats.base import RawBatch
    from haeryu.stream.runtime.executor import Executor
    from haeryu.stream.runtime.topic_output import MemoryWriter

    writer = MemoryWriter()
    executor = Executor(p, writer)
    executor.seen.add(("in", 0), seen, until=5)
    values = [json.dumps({"a": i}).encode() for i in range(5)]
    executor.process(RawBatch.of("in", values), 0.0)
    assert [json.loads(v)["a"] for _, v, _, _ in writer.records["out"]] == [3, 4]
    # each id comes back once in a replay: once it suppressed its record it is gone
    assert len(executor.seen) == 0


def test_plan_errors_are_raised_while_declaring() -> None:
    p = Pipeline("bad")
    with pytest.raises(PlanError, match="key_by"):
        p.source("in").update_state(lambda b, s: (b, s))
    with pytest.raises(PlanError, match="not a window aggregate"):
        p.source("in").key_by("k").window(windows.tumbling("1s")).agg(x=col("a").n_unique())
    with pytest.raises(PlanError, match="10s"):
        windows.tumbling("ten seconds")


def test_window_updates_are_not_suppressed_after_a_restore() -> None:
    from haeryu.stream.formats.base import RawBatch
    from haeryu.stream.runtime.executor import Executor
    from haeryu.stream.runtime.topic_output import MemoryWriter

    p = Pipeline("upd")
    (
        p.source("in", timestamp="ts", partitioned_by="k")
        .key_by("k")
        .window(windows.tumbling("100ms"), emit="update")
        .agg(n=pl.len())
        .to_topic("out")
    )
    writer = MemoryWriter()
    executor = Executor(p, writer)
    executor.seen.add(("in", 0), {"upd|in|0|4:anything"}, until=100)
    for offset, ts in enumerate((1, 2, 3)):
        value = json.dumps({"k": "a", "ts": ts}).encode()
        executor.process(RawBatch.of("in", [value], first_offset=offset), 0.0)
    updates = writer.records["out"]
    assert [json.loads(v)["n"] for _, v, _, _ in updates] == [1, 2, 3]
    assert all(headers == [] for _, _, headers, _ in updates)
