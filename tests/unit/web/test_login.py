"""Nothing but the login page and /metrics answers without the token; sessions expire."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from starlette.websockets import WebSocketDisconnect

with warnings.catch_warnings():
    # Starlette 1.x would rather test with httpx2, which is not installed: httpx works.
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

from haeryu.web.app import create_app
from haeryu.web.auth import COOKIE, Sessions
from haeryu.web.settings import WebSettings
from haeryu.web.tokens import ensure_token

TOKEN = "s3cret-token"


def settings(tmp_path: Path, **changes: object) -> WebSettings:
    base = WebSettings(
        host="127.0.0.1",
        port=0,
        token=TOKEN,
        data_dir=tmp_path,
        bootstrap="127.0.0.1:1",  # nothing listens: these tests never need the cluster
        lake_root=str(tmp_path / "lake"),
    )
    return replace(base, **changes)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(settings(tmp_path), with_ui=False)) as c:
        yield c


@pytest.mark.parametrize("path", ["/api/topics", "/api/sql/saved", "/docs", "/openapi.json"])
def test_the_api_and_docs_answer_401_without_a_login(client: TestClient, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 401
    assert "login required" in response.json()["detail"]


def test_a_page_redirects_to_the_login_page_keeping_where_it_was_going(client: TestClient) -> None:
    response = client.get("/topics?topic=a", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Ftopics%3Ftopic%3Da"
    assert client.get("/login").status_code == 200


def test_a_post_without_a_login_is_refused_and_changes_nothing(client: TestClient) -> None:
    response = client.post("/api/sql/saved", json={"name": "q", "sql": "select 1"})
    assert response.status_code == 401
    assert not (client.app.state.haeryu.settings.data_dir / "web").exists()  # type: ignore[attr-defined]


def test_the_websocket_is_closed_without_a_login(client: TestClient) -> None:
    url = "/_nicegui_ws/socket.io/?EIO=4&transport=websocket"
    with pytest.raises(WebSocketDisconnect) as caught, client.websocket_connect(url):
        pass
    assert caught.value.code == 1008


def test_a_wrong_token_is_refused_and_the_right_one_gives_a_session(client: TestClient) -> None:
    wrong = client.post("/login", data={"token": "guess", "next": "/sql"}, follow_redirects=False)
    assert wrong.status_code == 401
    assert COOKIE not in wrong.cookies
    right = client.post("/login", data={"token": TOKEN, "next": "/sql"}, follow_redirects=False)
    assert right.status_code == 303
    assert right.headers["location"] == "/sql"
    assert client.get("/api/sql/saved").json() == {}
    client.get("/logout")
    assert client.get("/api/sql/saved").status_code == 401


def test_login_never_redirects_to_another_site(client: TestClient) -> None:
    response = client.post(
        "/login", data={"token": TOKEN, "next": "//evil.example/x"}, follow_redirects=False
    )
    assert response.headers["location"] == "/"


def test_a_bearer_token_works_without_a_session(client: TestClient) -> None:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/api/sql/saved", headers=headers).status_code == 200
    bad = {"Authorization": "Bearer nope"}
    assert client.get("/api/sql/saved", headers=bad).status_code == 401


def test_metrics_are_public_unless_configured_otherwise(tmp_path: Path) -> None:
    with TestClient(create_app(settings(tmp_path), with_ui=False)) as open_client:
        response = open_client.get("/metrics")
        assert response.status_code == 200
        assert "haeryu_process_up" in response.text or response.text.startswith("#")
    closed = create_app(settings(tmp_path, public_metrics=False), with_ui=False)
    with TestClient(closed) as closed_client:
        assert closed_client.get("/metrics").status_code == 401


def test_a_session_expires(monkeypatch: pytest.MonkeyPatch) -> None:
    sessions = Sessions(TOKEN, max_age_s=60)
    cookie = sessions.issue()
    assert sessions.valid(cookie)
    import itsdangerous.timed

    now = itsdangerous.timed.time.time()
    monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: now + 61)
    assert not sessions.valid(cookie)
    # A session of another token is no session.
    monkeypatch.undo()
    assert not Sessions("other", 60).valid(cookie)


def test_the_generated_token_is_kept_and_private(tmp_path: Path) -> None:
    token = ensure_token(tmp_path)
    path = tmp_path / "web" / "token"
    assert path.stat().st_mode & 0o077 == 0
    assert ensure_token(tmp_path) == token  # a second start keeps it
    assert ensure_token(tmp_path, "from-config") == "from-config"
