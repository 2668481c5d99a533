"""``haeryu connect`` with a bad config: one line naming file and key, exit code 2."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from haeryu.cli import app
from haeryu.connectors.runtime import ConnectorStatus, RuntimeMetrics
from haeryu.connectors.runtime.command import format_status


def test_unknown_connector_type_is_refused_before_anything_starts(tmp_path: Path) -> None:
    toml = tmp_path / "connect.toml"
    toml.write_text('[connectors.plant]\ntype = "mqttx"\n')
    result = CliRunner().invoke(app, ["connect", str(toml)])
    assert result.exit_code == 2
    assert f"error: {toml}: connectors.plant.type: unknown connector type 'mqttx'" in result.output


def test_broken_toml_and_missing_file(tmp_path: Path) -> None:
    toml = tmp_path / "connect.toml"
    toml.write_text("[connectors.plant\n")
    result = CliRunner().invoke(app, ["connect", str(toml)])
    assert result.exit_code == 2 and "not valid TOML" in result.output
    result = CliRunner().invoke(app, ["connect", str(tmp_path / "nope.toml")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_status_line_shows_state_counts_lag_and_why_it_waits() -> None:
    metrics = RuntimeMetrics()
    web, logs = metrics.for_connector("web"), metrics.for_connector("logs")
    web.read(1200)
    web.written(1198)
    web.failed(2)
    logs.behind(4096)
    statuses = {
        "web": ConnectorStatus("web", "running"),
        "logs": ConnectorStatus("logs", "backoff", "OSError: gone", 2.0),
    }
    text = format_status(statuses, {"web": web, "logs": logs}, {"web": 99.6})
    assert text.splitlines() == [
        "web [running] in 1,200 | out 1,198 (100/s) | errors 2 | lag -",
        "logs [backoff] in 0 | out 0 (0/s) | errors 0 | lag 4,096 | retry in 2.0s: OSError: gone",
    ]
