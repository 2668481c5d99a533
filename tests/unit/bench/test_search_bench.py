"""A tiny run of the search benchmark: it indexes, queries and reports sane figures."""

from __future__ import annotations

from haeryu.bench.search import documents, report, run, templates


def test_templates_and_documents_are_varied_korean_and_english_logs() -> None:
    shapes = templates(30)
    assert len(set(shapes)) == 30
    assert any("습니다" in t for t in shapes) and any(
        "request" in t
        or "cache" in t
        or "worker" in t
        or "user" in t
        or "payment" in t
        or "disk" in t
        or "retrying" in t
        or "connection" in t
        for t in shapes
    )
    from datetime import UTC, datetime

    docs = documents(100, 30, datetime(2026, 1, 1, tzinfo=UTC))
    assert len({d["message"] for d in docs}) > 90  # values vary


def test_a_small_run_measures_every_query_kind() -> None:
    result = run(docs=600, n_templates=20, queries=3, batch=200)
    assert result.docs == 600 and result.docs_per_second > 0
    assert set(result.latencies) == {"term + time range", "full text", "date histogram + terms"}
    assert result.hits["date histogram + terms"] > 0
    assert result.hits["full text"] > 0
    assert len(report(result)) == 4
