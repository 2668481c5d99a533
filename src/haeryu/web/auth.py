"""Token login: a signed, expiring session cookie, or ``Authorization: Bearer TOKEN``.

Nothing answers without one except the login page and, when configured, ``/metrics``.
An HTTP request without a session gets 401 (API, metrics, docs) or a redirect to the
login page (pages); a websocket is closed before it is accepted.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Awaitable, Callable, MutableMapping
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import quote

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner

__all__ = ["COOKIE", "AuthMiddleware", "Sessions"]

COOKIE = "haeryu_session"

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class Sessions:
    """Issue and check session cookies; a new token invalidates every old session."""

    def __init__(self, token: str, max_age_s: float) -> None:
        self.token = token
        self.max_age_s = max_age_s
        secret = hashlib.sha256(b"haeryu-session\0" + token.encode()).hexdigest()
        self.signer = TimestampSigner(secret)

    def check_token(self, candidate: str) -> bool:
        return hmac.compare_digest(candidate.encode(), self.token.encode())

    def issue(self) -> str:
        return self.signer.sign(b"user").decode()

    def valid(self, cookie: str) -> bool:
        try:
            self.signer.unsign(cookie, max_age=int(self.max_age_s))
        except (BadSignature, SignatureExpired):
            return False
        return True


def _headers(scope: Scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}


class AuthMiddleware:
    """Pure ASGI middleware, so it guards websockets (NiceGUI's channel) as well as HTTP."""

    def __init__(self, app: ASGIApp, sessions: Sessions, public: Callable[[str], bool]) -> None:
        self.app = app
        self.sessions = sessions
        self.public = public

    def authenticated(self, scope: Scope) -> bool:
        headers = _headers(scope)
        auth = headers.get("authorization", "")
        if auth.lower().startswith("bearer ") and self.sessions.check_token(auth[7:].strip()):
            return True
        cookie = SimpleCookie()
        cookie.load(headers.get("cookie", ""))
        morsel = cookie.get(COOKIE)
        return morsel is not None and self.sessions.valid(morsel.value)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "/")
        if self.public(path) or self.authenticated(scope):
            await self.app(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1008})
            return
        api = path.startswith(("/api", "/metrics", "/docs", "/openapi", "/redoc"))
        if api or scope.get("method") not in ("GET", "HEAD"):
            body = b'{"detail":"login required: a session cookie or Authorization: Bearer TOKEN"}'
            headers = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
            await send({"type": "http.response.start", "status": 401, "headers": headers})
        else:
            target = path + (
                "?" + scope["query_string"].decode() if scope.get("query_string") else ""
            )
            location = f"/login?next={quote(target, safe='')}".encode()
            await send(
                {"type": "http.response.start", "status": 303, "headers": [(b"location", location)]}
            )
            body = b""
        await send({"type": "http.response.body", "body": body})
