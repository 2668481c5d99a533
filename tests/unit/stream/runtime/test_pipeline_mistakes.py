"""A mistake in the pipeline stops it with a clear error; bad records still go to the DLQ.

An operator that fails on an empty frame of its input's columns (a misspelled column, a
string function on a number) would fail on every record: the pipeline stops with an
error naming the operator, the column, the user's function and the line that declared
it.  With a schema on the source this happens while declaring; without, at the first
batch.  Nothing is written to the dead-letter topic for such a mistake, and nothing
after the failing batch is processed.
"""

from __future__ import annotations

import inspect
import json

import polars as pl
import pytest

from haeryu.stream import OperatorError, Pipeline, PlanError, col, run_local

READINGS = [{"machine": f"m{i}", "temperature": 90.0 + i, "count": i} for i in range(10)]
SCHEMA = {"machine": str, "temperature": float, "count": int}


def line_of(marker: str) -> int:
    """Line number of ``marker`` in this file (declarations are asserted by line)."""
    lines = inspect.getsource(inspect.getmodule(line_of)).splitlines()  # type: ignore[arg-type]
    return next(i for i, text in enumerate(lines, 1) if marker in text and "line_of" not in text)


def test_a_misspelled_column_stops_a_local_run_instead_of_dead_lettering_everything() -> None:
    p = Pipeline("mistake")
    p.source("in").filter(col("temprature") > 90).to_topic("hot")  # MARK-filter
    with pytest.raises(OperatorError) as caught:
        run_local(p, {"in": READINGS})
    message = str(caught.value)
    assert "operator [1] filter" in message
    assert "column 'temprature' is not in its input (did you mean 'temperature'?)" in message
    assert f"test_pipeline_mistakes.py:{line_of('MARK-filter')}" in message
    assert 'col("temprature")' in message  # the user's expression
    assert "temperature (Float64)" in message  # the input it got


def test_a_user_function_failing_on_an_empty_frame_is_named_with_its_line() -> None:
    def add_ratio(frame: pl.DataFrame) -> pl.DataFrame:  # MARK-def
        return frame.with_columns(ratio=frame["temperature"] / frame["cnt"])

    p = Pipeline("mistake")
    p.source("in").map_batches(add_ratio).to_topic("out")
    with pytest.raises(OperatorError) as caught:
        run_local(p, {"in": READINGS})
    message = str(caught.value)
    assert "operator [1] mapbatches" in message
    assert "add_ratio" in message
    assert f"test_pipeline_mistakes.py:{line_of('MARK-def')}" in message
    assert "cnt" in message  # Polars' own words name the missing column


def test_a_mistyped_column_names_its_type() -> None:
    p = Pipeline("mistake")
    p.source("in").with_columns(up=col("temperature").str.to_uppercase()).to_topic("out")
    with pytest.raises(OperatorError, match=r"it reads temperature \(Float64\)"):
        run_local(p, {"in": READINGS})


def test_nothing_reaches_the_dlq_or_the_output_for_a_mistake() -> None:
    p = Pipeline("mistake")
    src = p.source("in")
    src.to_topic("copy")
    src.filter(col("temprature") > 90).to_topic("hot")
    from haeryu.stream.formats.base import RawBatch
    from haeryu.stream.runtime.executor import Executor
    from haeryu.stream.runtime.topic_output import MemoryWriter

    writer = MemoryWriter()
    executor = Executor(p, writer)
    batch = RawBatch.of("in", [json.dumps(r).encode() for r in READINGS])
    with pytest.raises(OperatorError):
        executor.process(batch, 0.0)
    assert p.dlq_topic not in writer.records
    # The batch broke half-way (the copy was queued): no checkpoint may pass it.
    assert executor.interrupted


def test_with_a_schema_the_mistake_is_found_while_declaring() -> None:
    p = Pipeline("mistake")
    src = p.source("in", schema=SCHEMA)
    with pytest.raises(PlanError) as caught:
        src.filter(col("temprature") > 90)  # MARK-declared
    message = str(caught.value)
    assert "column 'temprature' is not in its input (did you mean 'temperature'?)" in message
    assert f"test_pipeline_mistakes.py:{line_of('MARK-declared')}" in message
    with pytest.raises(PlanError, match=r"it reads machine \(String\)"):
        src.with_columns(m=col("machine").dt.year())
    with pytest.raises(PlanError, match="column 'machin' is not in its input"):
        src.key_by("machin")
    with pytest.raises(PlanError, match="column 'tmp' is not in its input"):
        src.to_topic("out", key=col("tmp"))


def test_declaration_checks_follow_the_columns_through_the_plan() -> None:
    p = Pipeline("fine")
    src = p.source("in", schema=SCHEMA, timestamp="count")
    derived = src.with_columns(hot=col("temperature") > 95).filter(
        col("hot"), col("_key").is_null()
    )
    derived.select("machine", "hot").filter(col("hot")).to_topic("hot")
    with pytest.raises(PlanError, match="column 'temperature' is not in its input"):
        derived.select("machine").filter(col("temperature") > 1)
    # Below opaque user code the columns are unknown: nothing is checked there.
    derived.map_batches(lambda f: f.rename({"machine": "m"})).filter(col("m") != "").to_topic("x")
    out = run_local(p, {"in": READINGS})
    assert out.topic("hot")["machine"].to_list() == [f"m{i}" for i in range(6, 10)]


def test_bad_records_still_go_to_the_dlq_and_the_rest_goes_on() -> None:
    p = Pipeline("records")
    src = p.source("in", schema=SCHEMA)
    src.with_columns(n=col("machine").str.slice(1).cast(pl.Int64, strict=True)).to_topic("out")
    records: list[object] = [
        *READINGS[:3],
        {"machine": "mX", "temperature": 1.0, "count": 1},  # fails the strict cast
        {"machine": 42, "temperature": 1.0, "count": 1},  # wrong type for the schema
        b"not json",  # undecodable
        *READINGS[3:],
    ]
    out = run_local(p, {"in": records})  # type: ignore[dict-item]
    assert out.topic("out")["n"].to_list() == list(range(10))
    dead = out.dead_letters().sort(pl.col("offset").cast(pl.Int64))
    assert dead["offset"].to_list() == ["3", "4", "5"]
    assert dead["stage"].to_list() == ["with_columns", "decode", "decode"]
    assert dead["error"][1] == "field 'machine': expected String, got number 42"
