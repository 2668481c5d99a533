"""The Flink side of the NEXMark benchmark, run by the Flink venv's Python as a script.

Imports nothing of haeryu (apache-flink pins its own pyarrow, so it lives in a venv of
its own, ``.venv-flink``): the caller passes everything in one JSON argument -- the
queries' SQL, the datagen computed columns of each event kind, the sizes -- and reads
one JSON line per query from stdout.

Each query runs twice on Flink's local mini-cluster at parallelism 1: once over a tiny
input (job submission, code generation and scheduling: the per-job start-up) and once
over the measured input, each into a ``blackhole`` sink.  The CPU time of the JVM
(user + system, from ``/proc``) is sampled around the measured job.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

_START = time.perf_counter()


def _java_cpu_seconds() -> float:
    """CPU time (user + system) of this process's child JVMs, from /proc."""
    total = 0
    me = str(os.getpid())
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        if fields[1] == me:  # ppid
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def _source_ddl(name: str, columns: dict[str, str], rows: int) -> str:
    computed = ",\n  ".join(f"`{c}` AS {expr}" for c, expr in columns.items())
    return f"""CREATE TEMPORARY TABLE `{name}` (
  k BIGINT,
  {computed},
  WATERMARK FOR date_time AS date_time
) WITH (
  'connector' = 'datagen',
  'number-of-rows' = '{rows}',
  'rows-per-second' = '1000000000000',
  'fields.k.kind' = 'sequence',
  'fields.k.start' = '0',
  'fields.k.end' = '{max(rows - 1, 0)}'
)"""


def _run(env: Any, spec: dict[str, Any], scale: str) -> tuple[float, float, float, int]:
    """Run one query over ``spec[scale]`` records per kind.

    Returns the wall time from submission to the end, the job's net run time (as Flink
    reports it: from running to finished), the JVM's CPU time and the events read.
    """
    from pyflink.table import Schema, TableDescriptor

    for kind, columns in spec["columns"].items():
        env.execute_sql(f"DROP TEMPORARY TABLE IF EXISTS `{kind}`")
        env.execute_sql(_source_ddl(kind, columns, spec[scale][kind]))
    table = env.sql_query(spec["sql"])
    env.execute_sql("DROP TEMPORARY TABLE IF EXISTS `sink`")
    schema = Schema.new_builder().from_row_data_type(table.get_schema().to_row_data_type()).build()
    env.create_temporary_table(
        "sink", TableDescriptor.for_connector("blackhole").schema(schema).build()
    )
    cpu = _java_cpu_seconds()
    started = time.perf_counter()
    result = table.execute_insert("sink")
    result.wait()
    wall = time.perf_counter() - started
    cpu = _java_cpu_seconds() - cpu
    client = result.get_job_client()
    net = client.get_job_execution_result().result().get_net_runtime() / 1000 if client else wall
    return wall, net, cpu, sum(spec[scale][k] for k in spec["columns"])


def _dump(env: Any, dump: dict[str, Any]) -> None:
    """Print the generated rows of each kind (as text), to check the SQL generator."""
    for kind, columns in dump["columns"].items():
        env.execute_sql(_source_ddl(kind, columns, dump["rows"]))
        text = ", ".join(f"CAST(`{c}` AS STRING)" for c in columns)
        with env.execute_sql(f"SELECT k, {text} FROM `{kind}`").collect() as rows:
            ordered = sorted((list(r) for r in rows), key=lambda r: int(r[0]))
        print(json.dumps({"kind": kind, "rows": [r[1:] for r in ordered]}), flush=True)


def main(argv: list[str]) -> int:
    """Run every query of the JSON job description ``argv[0]``; print JSON lines."""
    job = json.loads(Path(argv[0]).read_text())
    from pyflink.table import EnvironmentSettings, TableEnvironment

    env = TableEnvironment.create(EnvironmentSettings.in_streaming_mode())
    config = env.get_config()
    config.set("parallelism.default", "1")
    config.set("table.exec.resource.default-parallelism", "1")
    if "dump" in job:
        _dump(env, job["dump"])
        return 0
    # The first job also starts the mini-cluster: count it as start-up.
    first = next(iter(job["queries"].values()))
    with contextlib.suppress(Exception):  # the query's own run below reports the error
        _run(env, first, "tiny")
    startup = time.perf_counter() - _START
    print(json.dumps({"startup": startup}), flush=True)
    for name, spec in job["queries"].items():
        try:
            _, tiny_net, _, _ = _run(env, spec, "tiny")
            seconds, net, cpu, events = _run(env, spec, "full")
        except Exception as exc:  # report and go on with the next query
            print(
                json.dumps({"query": name, "error": f"{type(exc).__name__}: {exc}"[:2000]}),
                flush=True,
            )
            continue
        print(
            json.dumps(
                {
                    "query": name,
                    "events": events,
                    "seconds": seconds,
                    "net": net,
                    "tiny_net": tiny_net,
                    "cpu": cpu,
                }
            ),
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
