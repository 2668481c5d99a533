"""History into the lake from the CLI, profiles by SQL in the warehouse, config, webhook."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from haeryu.cli import app
from haeryu.usecases.fraud.batch import compute_profiles
from haeryu.usecases.fraud.pipeline import FraudConfig, WebhookSink


def test_history_goes_to_the_lake_and_profiles_come_from_sql(tmp_path: Path) -> None:
    lake = tmp_path / "lake"
    args = ["simulate", "transactions", "--customers", "300", "--history", "12d"]
    result = CliRunner().invoke(app, [*args, "--duration", "0s", "--lake", str(lake)])
    assert result.exit_code == 0, result.output
    history = pl.read_delta(str(lake / "fraud_transactions"))
    assert history["event_date"].n_unique() >= 12  # partitioned by day
    profiles = compute_profiles(lake)
    legit = history.filter(pl.col("is_fraud") == 0)
    assert profiles["customer_id"].n_unique() == profiles.height == legit["customer_id"].n_unique()
    one = profiles.row(0, named=True)
    mine = legit.filter(pl.col("customer_id") == one["customer_id"])
    assert one["n"] == mine.height  # known fraud is left out of the profile
    assert one["amount_max"] == mine["amount"].max()
    assert sorted(one["merchants"]) == sorted(mine["merchant_id"].unique().to_list())
    assert sum(one["hour_hist"]) == pytest.approx(1.0)
    assert one["max_tx_1h"] >= 1


def test_profiles_need_the_history_table(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="write history first"):
        compute_profiles(tmp_path)


def test_config_from_toml_refuses_unknown_keys_and_crossed_thresholds(tmp_path: Path) -> None:
    good = tmp_path / "good.toml"
    good.write_text('[fraud]\nstep_up = 0.4\nblock = 0.95\nwebhook = "http://x/y"\n')
    config = FraudConfig.from_toml(good)
    assert (config.step_up, config.block, config.webhook) == (0.4, 0.95, "http://x/y")
    typo = tmp_path / "typo.toml"
    typo.write_text("[fraud]\nstepup = 0.4\n")
    with pytest.raises(ValueError, match=r"unknown \[fraud\] setting\(s\).*stepup"):
        FraudConfig.from_toml(typo)
    crossed = tmp_path / "crossed.toml"
    crossed.write_text("[fraud]\nstep_up = 0.9\nblock = 0.5\n")
    with pytest.raises(ValueError, match="step_up <= block"):
        FraudConfig.from_toml(crossed)


def test_webhook_posts_each_notification() -> None:
    received: list[dict[str, object]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append(json.loads(body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sink = WebhookSink(f"http://127.0.0.1:{server.server_port}/fraud")
        rows = pl.DataFrame(
            {
                "tx_id": ["t1", "t2"],
                "customer_id": ["c1", "c2"],
                "ts": [1, 2],
                "amount": [10.0, 20.0],
                "merchant_id": ["m1", "m2"],
                "decision": ["BLOCK", "STEP_UP"],
                "score": [0.9, 0.4],
                "reasons": [["a"], ["b", "c"]],
                "model_version": ["fraud@v1", "fraud@v1"],
                "extra": [1, 2],
            }
        )
        sink.write(rows)
        sink.close()
    finally:
        server.shutdown()
    assert [r["tx_id"] for r in received] == ["t1", "t2"]
    assert received[1]["reasons"] == ["b", "c"]
    assert "extra" not in received[0]


def test_analyst_feedback_overrides_labels_latest_wins() -> None:
    from haeryu.usecases.fraud.model import apply_feedback

    rows = pl.DataFrame({"tx_id": ["a", "b", "c"], "is_fraud": [0, 1, 0]}).with_columns(
        pl.col("is_fraud").cast(pl.Int8)
    )
    feedback = pl.DataFrame(
        {"tx_id": ["a", "b", "a", "zz"], "label": ["legit", "legit", "fraud", "fraud"]}
    )
    got = apply_feedback(rows, feedback)
    assert got["is_fraud"].to_list() == [1, 0, 0]  # a: latest says fraud; b: false alarm
    assert apply_feedback(rows, None).equals(rows)
