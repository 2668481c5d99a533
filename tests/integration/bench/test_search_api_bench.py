"""The REST search benchmark runs end to end at a tiny size and reports its figures."""

from __future__ import annotations

import json
from pathlib import Path

from haeryu.bench.search import MAPPING
from haeryu.bench.search_api import bulk_bodies, report, run


def test_bulk_bodies_hold_batch_documents_each() -> None:
    bodies = bulk_bodies([{"n": i} for i in range(5)], 2, "x")
    assert [b.count(b"\n") for b in bodies] == [4, 4, 2]
    assert bodies[0].startswith(b'{"index": {"_index": "x"}}\n{"n": 0}\n')


def test_tiny_run_indexes_everything_and_times_each_kind(tmp_path: Path) -> None:
    # English analysis: the Korean model's load is not what this test is about
    mapping = json.loads(json.dumps(MAPPING).replace('"nori"', '"standard"'))
    result = run(docs=300, n_templates=20, queries=3, batch=100, root=tmp_path, mapping=mapping)
    assert result.docs == 300 and result.bulk_seconds > 0 and result.server_cpu_seconds > 0
    assert set(result.latencies) == {"term + time range", "full text", "date histogram + terms"}
    assert all(len(t) == 3 for t in result.latencies.values())
    assert result.hits["date histogram + terms"] == 300  # the 6-hour window covers every doc
    lines = report(result)
    assert lines[0].startswith("bulk-indexed 300 docs") and len(lines) == 4
