"""The dashboard end to end: ``haeryu up --demo`` and real headless Chromium (Debian's).

One stack for the module; the tests run in file order. Screenshots of every page go to
docs/screenshots/, so the docs show what the code draws today.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from haeryu.stack.running import RunningStack
from haeryu.stack.up import free_port
from haeryu.web.fraud_feed import OUTCOMES

CHROMIUM = Path("/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"

pytestmark = [
    pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian's chromium is not installed"),
    pytest.mark.timeout(300),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    root = tmp_path_factory.mktemp("stack")
    # An HTTP ingest connector runs under `haeryu up` too (connect.config).
    (root / "connect.toml").write_text(
        f'[connectors.app-events]\ntype = "http"\nport = {free_port()}\ntopics = ["ingest-*"]\n'
    )
    extra = f'[connect]\nconfig = "{root / "connect.toml"}"\n'
    up = RunningStack(root, rate=200, extra=extra).start()
    yield up
    up.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
            ],
        )
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def page(browser: Browser, stack: RunningStack) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    yield context.new_page()
    context.close()


def test_without_the_token_nothing_answers(browser: Browser, stack: RunningStack) -> None:
    context = browser.new_context()
    anonymous = context.new_page()
    api = anonymous.goto(f"{stack.url}/api/topics")
    assert api is not None and api.status == 401
    anonymous.goto(f"{stack.url}/sql")
    assert anonymous.url.startswith(f"{stack.url}/login?next=%2Fsql")
    anonymous.fill("#token", "not-the-token")
    anonymous.click("#login")
    assert anonymous.locator(".error").inner_text() == "Wrong token."
    anonymous.screenshot(path=str(SHOTS / "login.png"))
    assert "haeryu_session" not in {c["name"] for c in anonymous.context.cookies()}
    context.close()


def test_log_in_and_see_live_numbers_update_every_second(page: Page, stack: RunningStack) -> None:
    p = page
    started = time.monotonic()
    p.goto(stack.url)
    p.fill("#token", stack.token)
    p.click("#login")
    p.wait_for_selector("#kpi-events_in")
    load_s = time.monotonic() - started
    chart = p.locator("#rate-chart")
    # Points arrive one per tick: wait for several, and see the demo's rate in them.
    p.wait_for_function(
        "() => Number(document.querySelector('#rate-chart').dataset.ticks || 0) >= 3",
        timeout=20_000,
    )
    first = int(chart.get_attribute("data-ticks") or 0)
    delays = []
    for _ in range(4):
        p.wait_for_function(
            f"() => Number(document.querySelector('#rate-chart').dataset.ticks) > {first}",
            timeout=5_000,
        )
        first = int(chart.get_attribute("data-ticks") or 0)
        shown = float(chart.get_attribute("data-shown-at") or "nan")
        delays.append(shown - float(chart.get_attribute("data-x") or "nan"))
    events_in = p.locator("#kpi-events_in").inner_text()
    assert int(events_in.replace(",", "")) > 0
    running = len(stack.status()["processes"])
    assert p.locator("#kpi-health").inner_text() == f"{running}/{running}"
    print(f"\noverview load {load_s:.2f} s; sample-to-screen delay ms {sorted(delays)}")
    assert max(delays) < 2000
    p.screenshot(path=str(SHOTS / "overview.png"), full_page=True)


def test_browse_a_topic_and_see_its_consumer_group(page: Page, stack: RunningStack) -> None:
    p = page
    p.goto(f"{stack.url}/topics?topic=sensor-readings")
    rows = p.locator("#records-table tbody tr")
    rows.first.wait_for(timeout=15_000)
    assert '"machine_id": "m-' in rows.first.inner_text()
    groups = p.locator("#groups-table")
    groups.get_by_text("lake-sensors").wait_for(timeout=15_000)
    p.screenshot(path=str(SHOTS / "topics.png"), full_page=True)


def test_run_sql_and_see_the_table_and_the_chart(page: Page, stack: RunningStack) -> None:
    p = page
    p.goto(f"{stack.url}/sql")
    # The lake pipeline commits every 2 s: rows are there within a few checkpoints.
    deadline = time.monotonic() + 30
    while True:
        p.click("#sql-run")
        summary = p.locator("#sql-summary")
        with contextlib.suppress(PlaywrightTimeout):  # tried again until the deadline
            p.wait_for_function(
                "() => document.querySelector('#sql-summary').innerText.includes('rows')"
                " || document.querySelector('#sql-error').innerText.length > 0",
                timeout=10_000,
            )
        if "16 rows" in summary.inner_text() or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert "16 rows" in summary.inner_text()  # one per simulated machine
    assert p.locator("#sql-result tbody tr").count() == 16
    assert p.locator("#sql-chart canvas").count() >= 1
    p.fill("#sql-name", "per machine")
    p.click("#sql-save")
    p.locator("#saved-queries").get_by_text("per machine").wait_for()
    p.screenshot(path=str(SHOTS / "sql.png"), full_page=True)


def test_search_in_korean_and_see_the_highlight(page: Page, stack: RunningStack) -> None:
    p = page
    # The index appears with the search pipeline's first checkpoint (every second).
    deadline = time.monotonic() + 30
    while True:
        p.goto(f"{stack.url}/explore?q=승인")
        marks = p.locator("#explore-results mark")
        with contextlib.suppress(PlaywrightTimeout):
            marks.first.wait_for(timeout=5_000)
        if marks.count() or time.monotonic() > deadline:
            break
    # "승인" (approval) matches inside "카드 승인 서버 ..." through Korean analysis.
    assert marks.first.inner_text() == "승인"
    assert "hits" in p.locator("#explore-hits").inner_text()
    # A facet narrows the query to one field value.
    p.locator("#explore-facets").get_by_text("payments (").click()
    p.wait_for_function(
        "() => document.querySelector('#explore-results').innerText.includes('payments')"
    )
    assert "service" in p.locator("input[for=explore-query], #explore-query").first.input_value()
    p.screenshot(path=str(SHOTS / "explore.png"), full_page=True)


def _wait_connected(p: Page) -> None:
    # Clicks before NiceGUI's websocket is up would be lost.
    p.wait_for_function("() => window.socket && window.socket.connected", timeout=20_000)


def _click_flagged(p: Page, selector: str) -> str:
    """Click the first drill-down button of ``selector`` showing open incidents: "name (n)"."""
    button = p.locator(selector, has_text="(").first
    button.wait_for(timeout=90_000)
    name = str(button.get_attribute("data-name"))
    button.click()
    return name


def test_drill_down_to_a_machine_with_an_open_incident_and_acknowledge_it(
    page: Page, stack: RunningStack
) -> None:
    p = page
    started = time.monotonic()
    p.goto(f"{stack.url}/factory")
    _wait_connected(p)
    # Plant -> line -> machine, each time the one with open incidents (its count shown).
    plant = _click_flagged(p, ".drill-plant")
    line = _click_flagged(p, ".drill-line")
    # An incident closes once its machine runs normally for 5 s: if the one counted has
    # closed by the time the machine is shown, take the next machine with one.
    for _ in range(10):
        machine = _click_flagged(p, ".drill-machine")
        row = p.locator("#incidents tbody tr", has_text=machine).first
        with contextlib.suppress(PlaywrightTimeout):
            row.wait_for(timeout=5_000)
            break
    p.locator("#machine-title", has_text=f"{plant} / {line} / {machine}").wait_for(timeout=10_000)
    first_data_s = time.monotonic() - started
    # The machine's live chart gets new readings every tick.
    chart = "document.querySelector('#machine-chart').dataset.ticks"
    p.wait_for_function(f"() => Number({chart} || 0) >= 2", timeout=15_000)
    opened = row.locator("td").first.inner_text()
    row.locator(".ack-incident").click()
    actions = stack.data_dir / "factory" / "actions.json"
    deadline = time.monotonic() + 10
    while not (actions.exists() and "acked_ms" in actions.read_text()):
        assert time.monotonic() < deadline, "the acknowledgement was not kept"
        time.sleep(0.1)
    acked = json.loads(actions.read_text())
    [ident] = [i for i, a in acked.items() if "acked_ms" in a]
    assert ident.startswith(f"{machine}/")
    p.locator("#incidents tbody tr", has_text="acknowledged").first.wait_for(timeout=10_000)
    print(
        f"\nfactory: machine with an incident opened {opened} shown {first_data_s:.1f} s after load"
    )
    p.screenshot(path=str(SHOTS / "factory.png"), full_page=True)


def test_mark_a_fraud_decision_and_see_the_feedback_in_the_topic(
    page: Page, stack: RunningStack
) -> None:
    from haeryu.usecases.fraud.feedback import read_feedback

    p = page
    p.goto(f"{stack.url}/fraud")
    _wait_connected(p)
    # Decisions per second reach the chart and the figures, one point per tick.
    p.wait_for_function(
        "() => Number(document.querySelector('#decision-chart').dataset.ticks || 0) >= 2",
        timeout=20_000,
    )
    p.locator("#flagged .mark-fraud").first.wait_for(timeout=60_000)
    unmarked = p.locator("#flagged tbody tr", has=p.locator(".mark-fraud")).first
    tx_id = unmarked.locator("td").nth(1).inner_text()
    row = p.locator("#flagged tbody tr").filter(has=p.get_by_role("cell", name=tx_id, exact=True))
    row.locator(".mark-fraud").click()
    row.get_by_text("marked fraud").wait_for(timeout=10_000)
    # The record the next training run reads: the latest label per tx_id.
    deadline = time.monotonic() + 15
    while True:
        feedback = read_feedback(stack.bootstrap, "fraud-feedback")
        if tx_id in feedback["tx_id"].to_list():
            break
        assert time.monotonic() < deadline, "no feedback record for the marked decision"
        time.sleep(0.5)
    assert feedback.filter(feedback["tx_id"] == tx_id)["label"].to_list()[-1] == "fraud"
    total = sum(int(p.locator(f"#rate-{o}").inner_text().replace(",", "")) for o in OUTCOMES)
    print(f"\nfraud: marked {tx_id}; decisions in the last second shown: {total}")
    p.screenshot(path=str(SHOTS / "fraud.png"), full_page=True)


def test_the_korean_switch(page: Page, stack: RunningStack) -> None:
    p = page
    p.goto(stack.url)
    p.click("#lang-switch")
    p.get_by_text("초당 유입 이벤트").wait_for()
    p.get_by_text("실시간 아키텍처").wait_for()
    time.sleep(2)  # a few live points in the picture
    p.screenshot(path=str(SHOTS / "overview-ko.png"), full_page=True)


def test_a_connector_runs_under_up_and_its_records_reach_the_topic(stack: RunningStack) -> None:
    import re

    import httpx

    port = re.search(r"port = (\d+)", (stack.root / "connect.toml").read_text())
    assert port is not None
    body = '{"user": "u1", "action": "로그인"}\n{"user": "u2", "action": "결제"}\n'
    answer = httpx.post(
        f"http://127.0.0.1:{port.group(1)}/topics/ingest-events",
        content=body.encode(),
        headers={"Content-Type": "application/x-ndjson"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    records = httpx.get(
        f"{stack.url}/api/topics/ingest-events/records",
        headers={"Authorization": f"Bearer {stack.token}"},
        timeout=30,
    ).json()
    assert sorted(r["value"] for r in records) == sorted(
        ['{"user": "u1", "action": "로그인"}', '{"user": "u2", "action": "결제"}']
    )


def test_create_an_alert_rule_see_it_fire_and_acknowledge_it(
    page: Page, stack: RunningStack
) -> None:
    p = page
    p.goto(f"{stack.url}/alerts")
    p.fill("#rule-name", "hot machine")
    p.click("#rule-topic")
    p.get_by_role("option", name="sensor-readings", exact=True).click()
    p.fill("#rule-field", "temperature")
    p.fill("#rule-key", "machine_id")
    p.fill("#rule-threshold", "50")  # the demo machines run at about 60 degrees
    p.click("#rule-save")
    p.locator("#rules").get_by_text("avg(temperature) over 10 s > 50").wait_for()
    # The alerts process picks the rule up within a second and sees the next readings.
    firing = p.locator("#alert-history tbody tr", has_text="firing")
    firing.first.wait_for(timeout=30_000)
    assert "hot machine" in firing.first.inner_text()
    assert "m-" in firing.first.inner_text()  # per machine
    firing.first.get_by_role("button").click()
    p.locator("#alert-history tbody tr", has_text="✓").first.wait_for(timeout=5_000)
    p.screenshot(path=str(SHOTS / "alerts.png"), full_page=True)


def test_ctrl_c_stops_in_order_and_a_second_up_continues_with_nothing_lost(
    stack: RunningStack,
) -> None:
    assert stack.stop() == 0
    stops = [line.split()[1] for line in stack.output.splitlines() if line.startswith("stopped ")]
    assert stops == [
        "sensor-simulator",
        "log-simulator",
        "factory-simulator",
        "fraud-simulator",
        "connectors",
        "lake-sensors",
        "search-logs",
        "factory-monitor",
        "fraud-detection",
        "alerts",
        "web",
        "broker",
    ]
    assert "everything stopped cleanly" in stack.output

    from haeryu.kafka.inspect import ClusterView
    from haeryu.stores.warehouse import Warehouse

    again = RunningStack(stack.root, demo=False).start()  # same data dir, no simulator
    try:
        view = ClusterView(again.bootstrap)
        written = next(t.records for t in view.topics() if t.name == "sensor-readings")
        assert written > 0
        lake = Warehouse(stack.data_dir / "lake")
        deadline = time.monotonic() + 60
        counted = (0, 0)
        while time.monotonic() < deadline:
            counted = lake.sql(
                "SELECT count(*) AS n, count(DISTINCT (_partition, _offset)) AS d"
                " FROM sensor_readings"
            ).row(0)
            if counted[0] >= written:
                break
            time.sleep(0.5)
        # Every reading the first run produced is in the lake once: none lost, none twice.
        assert counted == (written, written)
        lake.close()
    finally:
        assert again.stop() == 0
