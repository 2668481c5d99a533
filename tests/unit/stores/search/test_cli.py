"""``haeryu search "QUERY" --index NAME``: Lucene syntax, newest first, table or JSON."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from haeryu.cli import app
from haeryu.stores.search import SearchStore


def test_search_command_finds_korean_words_newest_first(tmp_path: Path) -> None:
    now = datetime.now(UTC)
    with SearchStore(tmp_path, refresh_interval=None) as store:
        store.index_documents(
            "logs",
            [
                (
                    "old",
                    {
                        "@timestamp": (now - timedelta(hours=3)).isoformat(),
                        "message": "온도가 높습니다",
                    },
                ),
                (
                    "new",
                    {
                        "@timestamp": (now - timedelta(minutes=5)).isoformat(),
                        "message": "온도를 낮췄습니다",
                    },
                ),
                ("other", {"@timestamp": now.isoformat(), "message": "디스크 정리"}),
            ],
        )
    runner = CliRunner()
    args = [
        "search",
        "message:온도",
        "--index",
        "logs",
        "--root",
        str(tmp_path),
        "--format",
        "json",
    ]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert [h["_id"] for h in answer["hits"]["hits"]] == ["new", "old"]
    assert answer["hits"]["hits"][0]["highlight"]["message"] == ["<em>온도</em>를 낮췄습니다"]
    recent = runner.invoke(app, [*args, "--since", "1h"])
    assert [h["_id"] for h in json.loads(recent.stdout)["hits"]["hits"]] == ["new"]
    table = runner.invoke(app, ["search", "온도", "--index", "logs", "--root", str(tmp_path)])
    assert table.exit_code == 0 and "2 hits" in table.stdout


def test_search_command_reports_a_bad_query_and_a_missing_index(tmp_path: Path) -> None:
    with SearchStore(tmp_path, refresh_interval=None) as store:
        store.index_documents("logs", [("1", {"message": "x"})])
    runner = CliRunner()
    bad = runner.invoke(app, ["search", "message:(x", "--index", "logs", "--root", str(tmp_path)])
    assert bad.exit_code == 1 and "Failed to parse query" in bad.output
    missing = runner.invoke(app, ["search", "x", "--index", "nope", "--root", str(tmp_path)])
    assert missing.exit_code == 1 and "no such index" in missing.output
