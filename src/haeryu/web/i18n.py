"""The UI's text in English and Korean; the language is kept in a cookie."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["LANGS", "t"]

LANGS = ("en", "ko")

TEXT: dict[str, tuple[str, str]] = {
    "overview": ("Overview", "개요"),
    "topics": ("Topics", "토픽"),
    "sql": ("SQL", "SQL"),
    "logout": ("Log out", "로그아웃"),
    "login": ("Log in", "로그인"),
    "token": ("Login token", "로그인 토큰"),
    "token_hint": ("printed by `haeryu up`", "`haeryu up`이 출력한 토큰"),
    "bad_token": ("Wrong token.", "토큰이 올바르지 않습니다."),
    "events_in": ("Events/s in", "초당 유입 이벤트"),
    "lag": ("Consumer lag", "컨슈머 지연"),
    "storage": ("Storage used", "저장 용량"),
    "health": ("Processes up", "실행 중인 프로세스"),
    "architecture": ("Architecture, live", "실시간 아키텍처"),
    "sources": ("Sources", "소스"),
    "pipelines": ("Pipelines", "파이프라인"),
    "stores": ("Stores", "저장소"),
    "processes": ("Processes", "프로세스"),
    "process": ("Process", "프로세스"),
    "kind": ("Kind", "종류"),
    "state": ("State", "상태"),
    "restarts": ("Restarts", "재시작"),
    "events_s": ("Events/s", "초당 이벤트"),
    "throughput": ("Events/s per topic", "토픽별 초당 이벤트"),
    "name": ("Name", "이름"),
    "partitions": ("Partitions", "파티션"),
    "records": ("Records", "레코드"),
    "recent": ("Recent records", "최근 레코드"),
    "groups": ("Consumer groups", "컨슈머 그룹"),
    "group": ("Group", "그룹"),
    "browse": ("Browse", "보기"),
    "run": ("Run", "실행"),
    "save": ("Save", "저장"),
    "saved": ("Saved queries", "저장된 쿼리"),
    "tables": ("Tables", "테이블"),
    "rows": ("rows", "행"),
    "query_name": ("Name to save as", "저장할 이름"),
    "no_rows": ("No rows.", "결과 없음"),
    "partition": ("Partition", "파티션"),
    "offset": ("Offset", "오프셋"),
    "time": ("Time", "시각"),
    "key": ("Key", "키"),
    "value": ("Value", "값"),
    "topic": ("Topic", "토픽"),
}


def t(key: str, lang: str) -> str:
    """The text for ``key`` in ``lang`` (English if unknown)."""
    en, ko = TEXT[key]
    return ko if lang == "ko" else en


def lang_of(cookies: Mapping[str, str]) -> str:
    lang = cookies.get("haeryu_lang", "en")
    return lang if lang in LANGS else "en"
