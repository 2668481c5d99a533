"""haeryu.toml: defaults, overrides, and errors that say where and what is expected."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from haeryu.config import ConfigError, HaeryuConfig, example_config, load_config, parse_config


def test_the_example_written_by_init_is_valid_toml_holding_every_default() -> None:
    text = example_config()
    assert parse_config(text) == HaeryuConfig()
    data = tomllib.loads(text)
    assert set(data) == set(HaeryuConfig.model_fields)
    assert "# HOST:PORT of an external Kafka" in text  # commented


def test_no_file_means_every_part_embedded() -> None:
    config = load_config(None)
    assert config.embedded_broker
    assert config.lake_root == str(Path("data") / "lake")
    assert config.web.host == "127.0.0.1"


def test_external_parts_and_command_line_overrides(tmp_path: Path) -> None:
    path = tmp_path / "haeryu.toml"
    path.write_text('[kafka]\nbootstrap = "kafka-1:9092"\n[lake]\nroot = "s3://b/lake"\n')
    config = load_config(path, **{"web.port": 9999, "data_dir": "/srv/h"})
    assert not config.embedded_broker
    assert config.lake_root == "s3://b/lake"
    assert (config.web.port, config.data_dir) == (9999, "/srv/h")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[web]\nhost = '0.0.0.0'\nport = 70000\n",
            "cfg.toml:3: web.port: Input should be less than or equal to 65535 (got 70000); "
            "expected: Dashboard port (0: a free one).",
        ),
        (
            "[web]\nprot = 1\n",
            "cfg.toml:2: web.prot: unknown key; expected one of: host, port, token, "
            "session_hours, public_metrics",
        ),
        (
            "[kafak]\n",
            "cfg.toml:1: kafak: unknown key; expected one of: data_dir, kafka, lake, search, "
            "influxdb, postgres, connect, web, demo",
        ),
        (
            "[demo]\nrate = 'fast'\n",
            "cfg.toml:2: demo.rate: Input should be a valid integer, unable to parse string "
            "as an integer (got 'fast'); expected: Demo events per second.",
        ),
        (
            "[web\nport = 1\n",
            "cfg.toml: not valid TOML: Expected ']' at the end of a table declaration "
            "(at line 1, column 5)",
        ),
    ],
)
def test_an_error_names_the_file_line_key_problem_and_expectation(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "cfg.toml")
    assert str(caught.value) == message


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "haeryu.toml"
    path.write_text("[web]\nport = -1\n[demo]\nrate = 0\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    lines = str(caught.value).splitlines()
    assert [line.split(": ")[0:2] for line in lines] == [
        [f"{path}:2", "web.port"],
        [f"{path}:4", "demo.rate"],
    ]


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")
