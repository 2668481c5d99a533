"""`haeryu up` and `haeryu init` refuse what cannot work before starting anything."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from haeryu.cli import app
from haeryu.config import load_config
from haeryu.stack.up import UpError, _lock, run_up


def test_a_config_error_stops_up_before_anything_starts(tmp_path: Path) -> None:
    config = tmp_path / "haeryu.toml"
    config.write_text(f'data_dir = "{tmp_path / "data"}"\n[web]\nport = "eighty"\n')
    result = CliRunner().invoke(app, ["up", "--config", str(config)], env={"COLUMNS": "300"})
    assert result.exit_code == 2
    assert f"{config}:3: web.port: Input should be a valid integer" in result.output
    assert not (tmp_path / "data").exists()  # nothing started, nothing written


def test_init_writes_a_loadable_file_and_never_overwrites_one(tmp_path: Path) -> None:
    path = tmp_path / "haeryu.toml"
    assert CliRunner().invoke(app, ["init", str(path)]).exit_code == 0
    assert load_config(path).web.port == 8080
    path.write_text("# mine\n")
    result = CliRunner().invoke(app, ["init", str(path)])
    assert result.exit_code == 1
    assert path.read_text() == "# mine\n"


def test_a_second_up_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    config = load_config(None, data_dir=str(tmp_path))
    held = _lock(tmp_path.resolve())
    try:
        with pytest.raises(UpError, match="another `haeryu up` uses"):
            run_up(config, demo=False, console=Console(quiet=True))
    finally:
        held.close()


def test_a_taken_broker_port_is_refused_with_what_to_do(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        config = load_config(None, data_dir=str(tmp_path), **{"kafka.broker_port": port})
        with pytest.raises(
            UpError, match=f"port {port} for the broker is taken; set kafka.broker_port"
        ):
            run_up(config, demo=False, console=Console(quiet=True))
    assert not (tmp_path / "broker").exists()
