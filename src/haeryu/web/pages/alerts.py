"""Alerts: create, edit, disable and delete rules; their history; acknowledge."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from nicegui import ui
from pydantic import ValidationError

from haeryu.alerts.rules import AlertRule
from haeryu.web.pages.shell import header
from haeryu.web.state import WebState

__all__ = ["register"]

_TEXT = {
    "rules": ("Rules", "규칙"),
    "new": ("New rule", "새 규칙"),
    "history": ("History", "이력"),
    "ack": ("Acknowledge", "확인"),
    "save": ("Save", "저장"),
    "edit": ("Edit", "편집"),
    "delete": ("Delete", "삭제"),
    "enabled": ("Enabled", "사용"),
}


def _t(key: str, lang: str) -> str:
    en, ko = _TEXT[key]
    return ko if lang == "ko" else en


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def register(state: WebState) -> None:
    @ui.page("/alerts", title="haeryu · alerts")
    def alerts_page(request: Request) -> None:
        lang = header(request, "alerts")
        topics = sorted(state.sampler.latest.topics)
        form: dict[str, Any] = {}
        with ui.card().classes("w-full"):
            ui.label(_t("new", lang)).classes("font-bold")
            with ui.row().classes("items-end gap-3"):
                form["name"] = ui.input("name").props('for="rule-name"')
                form["topic"] = (
                    ui.select(topics, label="topic", new_value_mode="add-unique")
                    .props('for="rule-topic"')
                    .classes("min-w-48")
                )
                form["field"] = ui.input("field").props('for="rule-field"')
                form["key_field"] = ui.input("key field").props('for="rule-key"')
                form["aggregate"] = ui.select(
                    ["avg", "max", "min", "last"], value="avg", label="of"
                )
                form["op"] = ui.select([">", "<"], value=">", label="op")
                form["threshold"] = ui.number("threshold", value=0).props('for="rule-threshold"')
                form["window_s"] = ui.number("window s", value=10, min=1)
                form["severity"] = ui.select(
                    ["info", "warning", "critical"], value="warning", label="severity"
                )
                form["webhook"] = ui.input("webhook URL")
                editing: dict[str, str | None] = {"id": None}
                save = ui.button(_t("save", lang)).props('id="rule-save"')
            error = ui.label("").classes("text-red-700").props('id="rule-error"')

        ui.label(_t("rules", lang)).classes("text-lg font-bold mt-4")
        rules_box = ui.column().classes("w-full").props('id="rules"')
        ui.label(_t("history", lang)).classes("text-lg font-bold mt-4")
        columns = [
            {"name": k, "label": k, "field": k, "align": "left"}
            for k in ("time", "rule", "key", "value", "severity", "state", "acked")
        ]
        history = (
            ui.table(columns=columns, rows=[], row_key="id")
            .classes("w-full")
            .props('id="alert-history"')
        )
        history.add_slot(
            "body-cell-acked",
            f"""<q-td :props="props">
              <span v-if="props.row.acked">✓</span>
              <q-btn v-else size="sm" flat color="primary" label="{_t("ack", lang)}"
                     @click="() => $parent.$emit('ack', props.row.id)" />
            </q-td>""",
        )

        def ack(event_id: str) -> None:
            state.alerts.ack(event_id)
            refresh_history()

        history.on("ack", lambda e: ack(e.args))

        def save_rule() -> None:
            values = {k: w.value for k, w in form.items()}
            values = {k: (v if v not in ("", None) else None) for k, v in values.items()}
            values = {k: v for k, v in values.items() if v is not None}
            if editing["id"]:
                values["id"] = editing["id"]
            try:
                rule = AlertRule.model_validate(values)
            except ValidationError as exc:
                error.set_text(
                    "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
                )
                return
            error.set_text("")
            state.alerts.save_rule(rule)
            editing["id"] = None
            show_rules()

        def edit(rule: AlertRule) -> None:
            editing["id"] = rule.id
            for key, widget in form.items():
                value = getattr(rule, key)
                if key == "topic" and value not in widget.options:
                    widget.set_options([*widget.options, value])
                widget.set_value(value)

        def toggle(rule: AlertRule, enabled: bool) -> None:
            state.alerts.save_rule(rule.model_copy(update={"enabled": enabled}))

        def delete(rule: AlertRule) -> None:
            state.alerts.delete_rule(rule.id)
            show_rules()

        def show_rules() -> None:
            rules_box.clear()
            with rules_box:
                for rule in sorted(state.alerts.rules(), key=lambda r: r.name):
                    with ui.row().classes("items-center gap-4"):
                        ui.switch(
                            _t("enabled", lang),
                            value=rule.enabled,
                            on_change=lambda e, r=rule: toggle(r, e.value),
                        )
                        ui.label(f"{rule.name} [{rule.severity}]").classes("font-bold")
                        ui.label(
                            f"{rule.topic}: {rule.describe()}"
                            + (f" per {rule.key_field}" if rule.key_field else "")
                        )
                        ui.button(_t("edit", lang), on_click=lambda r=rule: edit(r)).props(
                            "flat size=sm"
                        )
                        ui.button(_t("delete", lang), on_click=lambda r=rule: delete(r)).props(
                            "flat size=sm color=negative"
                        )

        def refresh_history() -> None:
            history.rows = [
                {
                    "id": e["id"],
                    "time": _time(int(e["at_ms"])),  # type: ignore[call-overload]
                    "rule": e["rule_name"],
                    "key": e["key"] or "",
                    "value": round(float(e["value"]), 3),  # type: ignore[arg-type]
                    "severity": e["severity"],
                    "state": e["state"],
                    "acked": e["acked"],
                }
                for e in state.alerts.events(200)
            ]
            history.update()

        save.on_click(save_rule)
        show_rules()
        refresh_history()
        ui.timer(1.0, refresh_history)
