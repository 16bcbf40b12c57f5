"""The triage console in a real headless Chromium: an analyst labels an alert by keyboard.

The console runs in the test's event loop against a SQLite store and the session's broker;
the browser is driven from a worker thread (Selenium blocks) while the loop serves it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiokafka import AIOKafkaConsumer
from pydantic import SecretStr
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

from streams.broker import EmbeddedBroker
from streams.console import start_console
from streams.kafka import produce
from streams.metrics import labeler_pseudonym
from streams.settings import Settings
from streams.store import open_store
from tests.console_samples import (
    actor_anomaly,
    content_campaign,
    report_brigade,
    sample_alerts,
    synchronised_campaign,
    volume_spike,
)
from tests.integration.test_worker import sample_metric
from tests.streams.test_alertmanager import reports

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TOKEN = "browser-test-token"
PSEUDONYM_KEY = "pseudonym-key-of-the-test"

# How long the page may take to show a change: generous, for a loaded machine; a wait ends
# as soon as the change shows.
PAGE_WAIT_S = 60


def chromium(profile: Path, width: int = 1500, height: int = 940) -> webdriver.Chrome:
    """Headless Chromium with a fresh profile and nothing fetched from the internet."""
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        pytest.fail(
            f"{' and '.join(missing)} not found: install the Debian packages chromium and "
            "chromium-driver (check.sh does when it runs as root)"
        )
    options = Options()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        f"--window-size={width},{height}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def save_screenshot(driver: webdriver.Chrome, path: Path) -> None:
    driver.save_screenshot(str(path))
    extra = os.environ.get("ABUSEMON_SCREENSHOT_DIR")
    if extra:
        Path(extra).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(extra) / path.name)


def queue_ids(driver: webdriver.Chrome) -> list[str]:
    # Read in one script: the list may be re-rendered between two WebDriver calls.
    ids: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('#queue li')].map((li) => li.dataset.alertId)"
    )
    return ids


def selected_id(driver: webdriver.Chrome) -> str | None:
    selected: str | None = driver.execute_script(
        "const li = document.querySelector('#queue li.selected');"
        "return li ? li.dataset.alertId : null"
    )
    return selected


def verdict_ready(driver: webdriver.Chrome) -> bool:
    """Whether the alert shown can be labelled: its details are in and the verdict buttons on
    (a verdict key before that labels nothing)."""
    button = driver.find_element(By.CSS_SELECTOR, "[data-verdict='abusive']")
    return bool(button.is_displayed() and button.is_enabled())


def click(driver: webdriver.Chrome, selector: str) -> bool:
    """Click what `selector` finds; False when the page redrew it between the finding and the
    click (the queue refreshes itself), for `wait.until` to try again."""
    try:
        driver.find_element(By.CSS_SELECTOR, selector).click()
    except StaleElementReferenceException:
        return False
    return True


def press(driver: webdriver.Chrome, key: str) -> None:
    """One key, sent to whatever has the focus, as a person types it."""
    ActionChains(driver).send_keys(key).perform()


def console_settings(broker: EmbeddedBroker) -> Settings:
    """A console on the session's broker, with a labels topic of its own and no audits."""
    return Settings(
        broker=broker.url,
        labels_topic=f"{uuid.uuid4().hex[:8]}-labels",
        input_partitions=1,
        console_token=TOKEN,  # type: ignore[arg-type]
        audit_rate=0.0,
    )


def analyst_session(url: str, volume_id: str, tmp_path: Path) -> dict[str, Any]:
    """Open the page with the token, read the queue, label the volume spike abusive by `a`."""
    driver = chromium(tmp_path / "chromium-profile")
    wait = WebDriverWait(driver, PAGE_WAIT_S)
    seen: dict[str, Any] = {}
    try:
        driver.get(url)
        wait.until(lambda d: len(queue_ids(d)) == 4)
        seen["url_after_load"] = driver.current_url
        seen["order"] = queue_ids(driver)
        seen["priorities"] = driver.execute_script(
            "return [...document.querySelectorAll('#queue li .prio')].map((p) => p.textContent)"
        )
        seen["first_selected"] = selected_id(driver)
        press(driver, "j")
        seen["after_j"] = selected_id(driver)
        press(driver, "k")
        seen["after_k"] = selected_id(driver)
        press(driver, "?")
        seen["help_shown"] = driver.find_element(By.ID, "help").is_displayed()
        press(driver, "?")
        seen["help_hidden"] = not driver.find_element(By.ID, "help").is_displayed()

        wait.until(lambda d: click(d, f'#queue li[data-alert-id="{volume_id}"]'))
        chart = wait.until(
            lambda d: d.find_elements(
                By.CSS_SELECTOR, f'article[data-alert-id="{volume_id}"] svg.chart'
            )
        )[0]
        seen["observed_path"] = chart.find_element(By.CSS_SELECTOR, "path.observed").get_attribute(
            "d"
        )
        seen["expected_path"] = chart.find_element(By.CSS_SELECTOR, "path.expected").get_attribute(
            "d"
        )
        seen["band"] = len(chart.find_elements(By.CSS_SELECTOR, "path.band"))
        seen["points"] = len(chart.find_elements(By.CSS_SELECTOR, "circle.pt"))
        wait.until(
            lambda d: (
                "Entity history ·"
                in (d.find_element(By.ID, "history").get_attribute("textContent") or "")
            )
        )

        labeler = driver.find_element(By.ID, "labeler")
        labeler.send_keys("ana")
        labeler.send_keys(Keys.ESCAPE)  # leave the field: shortcuts apply again
        save_screenshot(driver, tmp_path / "console.png")
        press(driver, "a")
        wait.until(lambda d: volume_id not in queue_ids(d))
        wait.until(lambda d: selected_id(d) is not None)
        seen["order_after"] = queue_ids(driver)
        seen["selected_after"] = selected_id(driver)
        save_screenshot(driver, tmp_path / "console-after-label.png")
        seen["errors"] = [
            entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"
        ]
    except Exception:
        save_screenshot(driver, tmp_path / "console-failure.png")
        raise
    finally:
        driver.quit()
    return seen


async def read_labels(bootstrap: str, topic: str, timeout_s: float = 20) -> list[Any]:
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", group_id=None
    )
    await consumer.start()
    messages: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not messages and time.monotonic() < deadline:
            for batch in (await consumer.getmany(timeout_ms=500)).values():
                messages.extend(batch)
    finally:
        await consumer.stop()
    return messages


async def test_an_analyst_labels_an_alert_by_keyboard(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    now = time.time()
    store = open_store(f"sqlite:///{tmp_path / 'alerts.db'}")
    for record in sample_alerts(now):
        store.add_alert(record)
    campaign = content_campaign(now)["alert_id"]
    actor = actor_anomaly(now)["alert_id"]
    volume = volume_spike(now)[0]["alert_id"]
    brigade = report_brigade(now)["alert_id"]
    settings = console_settings(broker)
    console = await start_console(settings, store, host="127.0.0.1", port=0)
    try:
        seen = await asyncio.to_thread(analyst_session, console.login_url, volume, tmp_path)
    finally:
        await console.stop()

    assert "token" not in seen["url_after_load"]  # taken once from the fragment, kept for the tab
    assert seen["order"] == [campaign, actor, volume, brigade]
    assert seen["priorities"] == ["94%prio", "81%prio", "62%prio", "47%prio"]
    assert seen["first_selected"] == campaign
    assert (seen["after_j"], seen["after_k"]) == (actor, campaign)
    assert seen["help_shown"] and seen["help_hidden"]
    # Four messages: a line of observed and of expected through four points, and the band.
    assert seen["observed_path"].count("L") == 3 and seen["expected_path"].count("L") == 3
    assert seen["points"] == 4 and seen["band"] == 1
    # The labelled alert left the queue; the one after it is selected.
    assert seen["order_after"] == [campaign, actor, brigade]
    assert seen["selected_after"] == brigade
    assert seen["errors"] == []  # no script error, no blocked resource

    messages = await read_labels(broker.bootstrap, settings.labels_topic)
    assert len(messages) == 1
    label = orjson.loads(messages[0].value)
    assert messages[0].key == volume.encode()
    assert (label["subject_type"], label["subject_id"], label["verdict"], label["labeler"]) == (
        "alert",
        volume,
        "abusive",
        "ana",
    )
    assert store.labels(subject_type="alert", subject_id=volume) == [label]
    assert volume not in [item["alert_id"] for item in store.queue()]
    store.close()
    assert (tmp_path / "console.png").stat().st_size > 10_000


def evidence_text(url: str, ident: str, tmp_path: Path) -> dict[str, Any]:
    """Open the page and read the evidence shown for the alert `ident`, selected first."""
    driver = chromium(tmp_path / "chromium-profile-evidence")
    wait = WebDriverWait(driver, PAGE_WAIT_S)
    selector = f'article[data-alert-id="{ident}"]'
    try:
        driver.get(url)
        wait.until(lambda d: selected_id(d) == ident)
        wait.until(
            lambda d: (
                "Shared schedule"
                in (d.find_element(By.CSS_SELECTOR, selector).get_attribute("textContent") or "")
            )
        )
        article = driver.find_element(By.CSS_SELECTOR, selector)
        save_screenshot(driver, tmp_path / "console-synchronised.png")
        return {
            "text": article.get_attribute("textContent"),
            "chips": [c.text for c in article.find_elements(By.CSS_SELECTOR, ".chip.mono")],
            "errors": [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"],
        }
    except Exception:
        save_screenshot(driver, tmp_path / "console-synchronised-failure.png")
        raise
    finally:
        driver.quit()


async def test_a_synchronised_campaign_shows_its_schedule(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    now = time.time()
    store = open_store(f"sqlite:///{tmp_path / 'alerts.db'}")
    record = synchronised_campaign(now)
    store.add_alert(record)
    settings = console_settings(broker)
    console = await start_console(settings, store, host="127.0.0.1", port=0)
    try:
        seen = await asyncio.to_thread(
            evidence_text, console.login_url, record["alert_id"], tmp_path
        )
    finally:
        await console.stop()
        store.close()
    assert "same schedule" in seen["text"] and "near-identical" not in seen["text"]
    assert "18.1 min" in seen["text"] and "30 s" in seen["text"]
    assert set(record["evidence"]["schedule"]["times"]) <= set(seen["chips"])
    assert seen["errors"] == []


def label_first_alert(url: str, tmp_path: Path) -> dict[str, Any]:
    """Open the page, label the alert at the top of the queue abusive by keyboard."""
    driver = chromium(tmp_path / "chromium-profile-worker")
    wait = WebDriverWait(driver, PAGE_WAIT_S)
    try:
        driver.get(url)
        wait.until(lambda d: queue_ids(d) and selected_id(d))
        wait.until(verdict_ready)
        first = selected_id(driver)
        labeler = driver.find_element(By.ID, "labeler")
        labeler.send_keys("ben")
        labeler.send_keys(Keys.ESCAPE)
        press(driver, "a")
        wait.until(lambda d: first not in queue_ids(d))
        return {"labelled": first}
    except Exception:
        save_screenshot(driver, tmp_path / "console-worker-failure.png")
        raise
    finally:
        driver.quit()


async def test_a_verdict_in_the_console_moves_the_workers_precision(
    start_worker: Any, tmp_path: Path
) -> None:
    """The whole loop: the worker raises alerts and keeps them in the store, the analyst
    labels one in the browser, the worker reads the verdict from the labels topic and its
    precision metric for that detector appears."""
    store_url = f"sqlite:///{tmp_path / 'alerts.db'}"
    worker = await asyncio.to_thread(
        start_worker, warmup_windows=3, alert_store=store_url, labeler_pseudonym_key=PSEUDONYM_KEY
    )
    await produce(worker.settings, reports(minutes=14, spike_minute=10))
    store = open_store(store_url)
    deadline = time.monotonic() + 60
    while not store.queue() and time.monotonic() < deadline:
        await asyncio.sleep(0.5)
    assert store.queue(), worker.log()
    before = worker.metrics_text()
    assert "abusemon_label_precision_ratio{" not in before

    settings = worker.settings.model_copy(update={"console_token": SecretStr(TOKEN)})
    console = await start_console(settings, store, host="127.0.0.1", port=0)
    try:
        seen = await asyncio.to_thread(label_first_alert, console.login_url, tmp_path)
    finally:
        await console.stop()
    labelled = store.alert(seen["labelled"])
    assert labelled is not None
    detector = labelled["detector"]

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        text = worker.metrics_text()
        if sample_metric(text, "abusemon_labels_total", verdict="abusive") == 1:
            break
        await asyncio.sleep(0.5)
    assert sample_metric(text, "abusemon_labels_total", verdict="abusive") == 1, worker.log()
    assert sample_metric(text, "abusemon_label_precision_ratio", detector=detector) == 1.0
    assert sample_metric(text, "abusemon_label_verdicts_in_window", detector=detector) == 1
    # The labeller by pseudonym: analysts' names are not published to whoever scrapes.
    ben = labeler_pseudonym(PSEUDONYM_KEY.encode(), "ben")
    assert sample_metric(text, "abusemon_labeler_labels_total", labeler=ben) == 1
    assert 'labeler="ben"' not in text
    store.close()


BIDI_SUMMARY = "Account sent \u202egnp.exe\u202c to 40 accounts"


def hostile_session(base: str, login_url: str, db: Path, bidi: str, gone: str) -> dict[str, Any]:
    """A token in the query string; attacker text with a bidi override; an alert whose detail
    cannot be loaded any more, selected while another is shown, then `a` pressed."""
    driver = chromium(db.parent / "chromium-profile-hostile")
    wait = WebDriverWait(driver, PAGE_WAIT_S)
    seen: dict[str, Any] = {}
    try:
        driver.get(f"{base}?token={TOKEN}")  # as an old link, or a guess at the old way
        wait.until(lambda d: d.find_element(By.ID, "login").is_displayed())
        seen["query_url"] = driver.current_url
        seen["query_message"] = driver.find_element(By.ID, "login-error").text
        seen["query_queue"] = queue_ids(driver)

        driver.get(login_url)
        wait.until(lambda d: bidi in queue_ids(d) and selected_id(d) == bidi)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, f'article[data-alert-id="{bidi}"]'))
        seen["summary"] = driver.execute_script(
            "return document.querySelector(arguments[0]).textContent",
            f'#queue li[data-alert-id="{bidi}"] .q-summary',
        )
        seen["detail_text"] = driver.find_element(By.ID, "detail").get_attribute("textContent")
        seen["isolated"] = driver.execute_script(
            "return getComputedStyle(document.querySelector('#queue li .q-summary')).unicodeBidi"
        )
        labeler = driver.find_element(By.ID, "labeler")
        labeler.send_keys("ana")
        labeler.send_keys(Keys.ESCAPE)
        # Leaving the field reloads the queue for that labeller: read before the deletion.
        wait.until(lambda d: d.find_element(By.ID, "status").text != "loading…")

        with sqlite3.connect(db) as other:  # the alert is gone after the queue was read
            other.execute("DELETE FROM alerts WHERE alert_id = ?", (gone,))
        wait.until(lambda d: click(d, f'#queue li[data-alert-id="{gone}"]'))
        wait.until(lambda d: "could not be loaded" in d.find_element(By.ID, "detail").text)
        seen["selected"] = selected_id(driver)
        seen["detail_after"] = driver.find_element(By.ID, "detail").text
        seen["buttons_disabled"] = driver.execute_script(
            "return [...document.querySelectorAll('[data-verdict]')].every((b) => b.disabled)"
        )
        press(driver, "a")  # must label nothing: no alert is shown
        press(driver, "r")  # a request after it: once the queue is back, `a` was handled
        wait.until(lambda d: bidi in queue_ids(d))
        seen["queue_after"] = queue_ids(driver)
    except Exception:
        save_screenshot(driver, db.parent / "console-hostile-failure.png")
        raise
    finally:
        driver.quit()
    return seen


async def test_the_page_resists_hostile_urls_text_and_failures(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    now = time.time()
    db = tmp_path / "alerts.db"
    store = open_store(f"sqlite:///{db}")
    for record in sample_alerts(now):
        store.add_alert(record)
    bidi = actor_anomaly(now, priority=0.99, actor="u\u202egnp.exe") | {"summary": BIDI_SUMMARY}
    store.add_alert(bidi)
    gone = report_brigade(now)["alert_id"]
    settings = console_settings(broker)
    console = await start_console(settings, store, host="127.0.0.1", port=0)
    try:
        seen = await asyncio.to_thread(
            hostile_session, console.url, console.login_url, db, bidi["alert_id"], gone
        )
    finally:
        await console.stop()
    # A token in the query string is not used, and is gone from the address.
    assert "token" not in seen["query_url"] and seen["query_queue"] == []
    assert "?token=" in seen["query_message"]
    # Bidi controls are shown, not obeyed, and every piece of text is isolated.
    assert seen["summary"] == "Account sent ⟦U+202E⟧gnp.exe⟦U+202C⟧ to 40 accounts"
    assert "\u202e" not in seen["detail_text"] and "u⟦U+202E⟧gnp.exe" in seen["detail_text"]
    assert seen["isolated"] == "isolate"
    # The failed alert is selected and nothing else is shown; the verdict keys do nothing.
    assert seen["selected"] == gone
    assert "could not be loaded" in seen["detail_after"]
    assert bidi["alert_id"] not in seen["detail_after"] and "gnp.exe" not in seen["detail_after"]
    assert seen["buttons_disabled"] is True
    assert store.labels() == []
    assert bidi["alert_id"] in seen["queue_after"]
    store.close()
