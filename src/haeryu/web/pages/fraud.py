"""Fraud: decisions per second by outcome, the score distribution, recent STEP_UP and
BLOCK decisions with reasons; mark one as fraud or a false alarm (feedback topic)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from fastapi import Request
from nicegui import ui

from haeryu.web.fraud_feed import OUTCOMES
from haeryu.web.pages.shell import LiveChart, header
from haeryu.web.state import WebState

__all__ = ["register"]

_TEXT = {
    "rates": ("Decisions per second", "초당 판정"),
    "scores": ("Score distribution (recent decisions)", "점수 분포 (최근 판정)"),
    "flagged": ("Recent STEP_UP and BLOCK decisions", "최근 추가 인증·차단 판정"),
    "fraud": ("Fraud", "사기"),
    "false_alarm": ("False alarm", "오탐"),
    "fraud_label": ("marked fraud", "사기로 표시"),
    "legit_label": ("marked false alarm", "오탐으로 표시"),
}
BINS = 10
#: Seconds the rate chart stays behind the clock: decisions become visible when the
#: pipeline commits its transaction, at each checkpoint (every 2 s).
SETTLE_S = 3


def _t(key: str, lang: str) -> str:
    en, ko = _TEXT[key]
    return ko if lang == "ko" else en


def _time(ms: Any) -> str:
    return datetime.fromtimestamp(int(ms or 0) / 1000, UTC).strftime("%H:%M:%S")


def register(state: WebState) -> None:
    feed = state.fraud

    @ui.page("/fraud", title="haeryu · fraud")
    def fraud_page(request: Request) -> None:
        lang = header(request, "fraud")
        now = int(time.time()) - SETTLE_S
        with ui.row().classes("gap-8"):
            kpis = {}
            for outcome in OUTCOMES:
                with ui.column().classes("gap-0"):
                    ui.label(f"{outcome}/s").classes("text-slate-500")
                    kpis[outcome] = (
                        ui.label("0").classes("text-2xl font-bold").props(f'id="rate-{outcome}"')
                    )
        ui.label(_t("rates", lang)).classes("text-lg font-bold")
        history = [(s * 1000.0, [float(c[o]) for o in OUTCOMES]) for s, c in feed.history(now, 120)]
        rates = LiveChart(OUTCOMES, history=history, height="14rem")
        rates.chart.props('id="decision-chart"')
        ui.label(_t("scores", lang)).classes("text-lg font-bold")
        labels = [f"{i / BINS:.1f}-{(i + 1) / BINS:.1f}" for i in range(BINS)]
        histogram = (
            ui.echart(
                {
                    "animation": False,
                    "grid": {"left": 60, "right": 20, "top": 10, "bottom": 30},
                    "xAxis": {"type": "category", "data": labels},
                    "yAxis": {"type": "log", "min": 1},
                    "series": [{"type": "bar", "data": feed.histogram(BINS)}],
                }
            )
            .style("height: 12rem")
            .props('id="score-histogram"')
        )
        ui.label(_t("flagged", lang)).classes("text-lg font-bold mt-4")
        columns = [
            {"name": k, "label": k, "field": k, "align": "left"}
            for k in (
                "time",
                "tx_id",
                "customer",
                "amount",
                "decision",
                "score",
                "reasons",
                "label",
            )
        ]
        table = (
            ui.table(columns=columns, rows=[], row_key="tx_id")
            .classes("w-full")
            .props('id="flagged"')
        )
        table.add_slot(
            "body-cell-label",
            f"""<q-td :props="props">
              <span v-if="props.row.label === 'fraud'" class="text-red-700">{_t("fraud_label", lang)}</span>
              <span v-else-if="props.row.label === 'legit'" class="text-green-700">{_t("legit_label", lang)}</span>
              <span v-else>
                <q-btn size="sm" flat color="negative" label="{_t("fraud", lang)}" class="mark-fraud"
                       @click="() => $parent.$emit('mark', [props.row.tx_id, 'fraud', props.row.decision])" />
                <q-btn size="sm" flat color="primary" label="{_t("false_alarm", lang)}" class="mark-false-alarm"
                       @click="() => $parent.$emit('mark', [props.row.tx_id, 'false_alarm', props.row.decision])" />
              </span>
            </q-td>""",
        )
        shown = {"second": now}

        def refresh_table() -> None:
            rows = [
                {
                    "time": _time(r.get("decided_ms")),
                    "tx_id": r["tx_id"],
                    "customer": r.get("customer_id"),
                    "amount": f"{float(r.get('amount') or 0):,.0f}",
                    "decision": r.get("decision"),
                    "score": r.get("score"),
                    "reasons": "; ".join(r.get("reasons") or []),
                    "label": r["label"],
                }
                for r in feed.recent_flagged(20)
            ]
            if rows != table.rows:  # only a change goes to the browser
                table.rows = rows
                table.update()

        def tick() -> None:
            second = int(time.time()) - SETTLE_S
            for s in range(shown["second"] + 1, second + 1):
                counts = feed.rates(s)
                rates.push(s * 1000.0, [float(counts[o]) for o in OUTCOMES])
                for outcome in OUTCOMES:
                    kpis[outcome].set_text(f"{counts[outcome]:,}")
            shown["second"] = second
            # Ten numbers a tick, not the chart's options.
            histogram.client.run_javascript(
                f"(() => {{ const el = getElement({histogram.id}); if (el && el.chart) "
                f"el.chart.setOption({{series: [{{data: {json.dumps(feed.histogram(BINS))}}}]}}); }})()"
            )
            refresh_table()

        def mark(args: list[str]) -> None:
            tx_id, verdict, decision = args
            feed.mark(tx_id, verdict, decision)
            refresh_table()

        table.on("mark", lambda e: mark(e.args))
        refresh_table()
        ui.timer(1.0, tick)
