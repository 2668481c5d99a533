"""The web app: login, REST API, ``/metrics`` and the dashboard pages, in one FastAPI app.

NiceGUI serves its JavaScript and CSS from the installed package (no CDN), so the
dashboard works offline. Every route but the login page (and ``/metrics`` when
``public_metrics``) sits behind :class:`~haeryu.web.auth.AuthMiddleware`.
"""

from __future__ import annotations

import html
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import parse_qs

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from haeryu.web.api import api_router
from haeryu.web.auth import COOKIE, AuthMiddleware, Sessions
from haeryu.web.i18n import LANGS, lang_of, t
from haeryu.web.metrics import metrics_text
from haeryu.web.settings import WebSettings
from haeryu.web.state import WebState

__all__ = ["create_app"]

_LOGIN_HTML = """<!doctype html>
<html lang="{lang}"><head><meta charset="utf-8"><title>haeryu · {login}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, 'NanumGothic', sans-serif; background: #0f172a; color: #e2e8f0;
       display: flex; align-items: center; justify-content: center; height: 100vh; margin: 0; }}
form {{ background: #1e293b; padding: 2rem; border-radius: .5rem; min-width: 22rem; }}
input {{ width: 100%; padding: .6rem; margin: .5rem 0 1rem; box-sizing: border-box; }}
button {{ padding: .6rem 1.2rem; }} .error {{ color: #fca5a5; }} a {{ color: #93c5fd; }}
</style></head>
<body><form method="post" action="/login">
<h2>haeryu 해류</h2>
<label for="token">{token} <small>({hint})</small></label>
<input id="token" name="token" type="password" autocomplete="current-password" autofocus>
<input type="hidden" name="next" value="{next}">
<p class="error">{error}</p>
<button type="submit" id="login">{login}</button>
<p><a href="/lang/{other}?next=/login">{other_name}</a></p>
</form></body></html>"""


def _safe_next(target: str) -> str:
    # Only paths on this server: an open redirect would hand the session to another site.
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _login_page(request: Request, target: str, error: bool = False) -> HTMLResponse:
    lang = lang_of(request.cookies)
    other = "ko" if lang == "en" else "en"
    return HTMLResponse(
        _LOGIN_HTML.format(
            lang=lang,
            login=t("login", lang),
            token=t("token", lang),
            hint=t("token_hint", lang),
            next=html.escape(_safe_next(target)),
            error=t("bad_token", lang) if error else "",
            other=other,
            other_name="한국어" if other == "ko" else "English",
        ),
        status_code=401 if error else 200,
    )


def create_app(
    settings: WebSettings, *, with_ui: bool = True, state: WebState | None = None
) -> FastAPI:
    """The whole web app. ``with_ui=False``: API and metrics only (NiceGUI's pages are
    process-global, so only one app per process can have them)."""
    state = state or WebState(settings)
    sessions = Sessions(settings.token, settings.session_hours * 3600)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        state.start()
        try:
            yield
        finally:
            state.stop()

    app = FastAPI(
        title="haeryu",
        summary="Topics, consumer groups, SQL over the lake, models, the running stack.",
        lifespan=lifespan,
    )
    app.state.haeryu = state

    def public(path: str) -> bool:
        if path in ("/login", "/favicon.ico") or path.startswith("/lang/"):
            return True
        return settings.public_metrics and path == "/metrics"

    @app.get("/login", include_in_schema=False)
    def login_form(request: Request, next: str = "/") -> HTMLResponse:
        return _login_page(request, next)

    @app.post("/login", include_in_schema=False)
    async def login(request: Request) -> Response:
        form = parse_qs((await request.body()).decode("utf-8", "replace"))
        token = form.get("token", [""])[0]
        target = _safe_next(form.get("next", ["/"])[0])
        if not sessions.check_token(token.strip()):
            return _login_page(request, target, error=True)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE, sessions.issue(), max_age=int(sessions.max_age_s), httponly=True, samesite="lax"
        )
        return response

    @app.get("/logout", include_in_schema=False)
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/lang/{lang}", include_in_schema=False)
    def switch_language(lang: str, next: str = "/") -> Response:
        response = RedirectResponse(_safe_next(next), status_code=303)
        if lang in LANGS:
            response.set_cookie("haeryu_lang", lang, max_age=365 * 86400, samesite="lax")
        return response

    @app.get("/metrics", tags=["metrics"], summary="Prometheus metrics of the stack")
    def metrics() -> Response:
        return Response(metrics_text(state), media_type="text/plain; version=0.0.4")

    app.include_router(api_router(state))
    if with_ui:
        import importlib

        from nicegui import ui

        from haeryu.web.pages import PAGES

        for page in PAGES:
            module, _, function = page.register.partition(":")
            getattr(importlib.import_module(module), function)(state)
        ui.run_with(
            app,
            title="haeryu",
            reconnect_timeout=10.0,
            show_welcome_message=False,
        )
    app.add_middleware(AuthMiddleware, sessions=sessions, public=public)
    return app
