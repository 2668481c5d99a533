"""Dashboard pages (NiceGUI), one module each.

A part of haeryu joins the dashboard with one :class:`PageSpec` in :data:`PAGES`: its
navigation label in English and Korean, its path, and ``MODULE:FUNCTION`` that
registers the page (``register(state: WebState) -> None`` defining an ``@ui.page``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PAGES", "PageSpec"]


@dataclass(frozen=True)
class PageSpec:
    """One page: navigation label (English, Korean), path, and its register function."""

    key: str
    label: tuple[str, str]
    path: str
    register: str


PAGES: list[PageSpec] = [
    PageSpec("overview", ("Overview", "개요"), "/", "haeryu.web.pages.overview:register"),
    PageSpec("topics", ("Topics", "토픽"), "/topics", "haeryu.web.pages.topics:register"),
    PageSpec("explore", ("Explore", "탐색"), "/explore", "haeryu.web.pages.explore:register"),
    PageSpec("sql", ("SQL", "SQL"), "/sql", "haeryu.web.pages.sql:register"),
    PageSpec("factory", ("Factory", "공장"), "/factory", "haeryu.web.pages.factory:register"),
    PageSpec("fraud", ("Fraud", "이상거래"), "/fraud", "haeryu.web.pages.fraud:register"),
    PageSpec("alerts", ("Alerts", "알림"), "/alerts", "haeryu.web.pages.alerts:register"),
]
