"""The MLflow UI as the audit surface, checked in a real headless Chromium.

``stillroom ui`` serves the store of a real, promoted distillation; Selenium drives Debian's
chromium through its chromedriver (nothing downloads a browser). The pages are a React app:
every check waits until the content it looks for has rendered, never a fixed sleep.

Screenshots go to the test's temp dir, or to ``$STILLROOM_SCREENSHOTS_DIR`` (``make
screenshots`` points it at docs/, where the README's pictures live).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from server.postgres import free_port, require_binary

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("audit")]

RENDER_TIMEOUT = 120  # seconds: a shared 2-core machine can take long to render the first page


@pytest.fixture(scope="module")
def ui_url(promoted: dict[str, Any], audit_store: str) -> Iterator[str]:
    """``stillroom ui`` on the test store, in its own process group."""
    port = free_port()
    stillroom = str(Path(sys.executable).with_name("stillroom"))
    log = promoted["root"] / "ui.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [stillroom, "ui", "--tracking-uri", audit_store, "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + RENDER_TIMEOUT
        while not _healthy(url):
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"stillroom ui did not come up:\n{log.read_text()[-3000:]}", pytrace=False)
            time.sleep(0.5)
        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=10)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Debian's chromium, headless, driven through Debian's chromedriver."""
    chromium = require_binary("chromium", "chromium")
    driver_path = require_binary("chromedriver", "chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    profile = tmp_path_factory.mktemp("chromium-profile")
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-quic",
        "--no-first-run",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_page_load_timeout(RENDER_TIMEOUT)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = os.environ.get("STILLROOM_SCREENSHOTS_DIR")
    path = Path(target) if target else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def open_and_wait(browser: Any, url: str, *texts: str) -> str:
    """Open ``url`` and wait until the rendered page shows every one of ``texts``; return the page text."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url)
    body = lambda d: d.find_element(By.TAG_NAME, "body").text  # noqa: E731
    try:
        WebDriverWait(browser, RENDER_TIMEOUT, poll_frequency=0.5).until(lambda d: all(t in body(d) for t in texts))
    except TimeoutException:
        missing = [t for t in texts if t not in body(browser)]
        pytest.fail(f"{url} never showed {missing}; page text starts:\n{body(browser)[:1500]}", pytrace=False)
    _close_assistant(browser)
    return body(browser)


def _close_assistant(browser: Any) -> None:
    """The UI opens a chat side panel by default; close it so the screenshot shows the page."""
    from selenium.webdriver.common.by import By

    for button in browser.find_elements(By.CSS_SELECTOR, "button[aria-label='Close']"):
        try:
            button.click()
        except Exception:
            continue


def test_run_page_shows_gate_tag_and_teacher_student_metrics(
    browser: Any, ui_url: str, promoted: dict[str, Any], shots: Path
) -> None:
    m = promoted["metrics"]
    url = f"{ui_url}/#/experiments/{promoted['experiment_id']}/runs/{promoted['run_id']}"
    text = open_and_wait(browser, url, "stillroom.gate", "teacher.roc_auc", "student.roc_auc")
    assert f"stillroom.gate\n: {promoted['gate']}\n" in text  # the tag as the Tags box lists it
    for key in ("teacher.roc_auc", "student.roc_auc", "teacher.average_precision", "student.average_precision"):
        assert f"{key}\n{m[key]!r}" in text or f"{key}\n{m[key]:.10g}" in text, key  # the value beside its name
    assert "fraud-student" in text  # the registered model the run produced
    browser.save_screenshot(str(shots / "audit-run.png"))


def test_model_card_artifact_is_rendered(browser: Any, ui_url: str, promoted: dict[str, Any], shots: Path) -> None:
    url = f"{ui_url}/#/experiments/{promoted['experiment_id']}/runs/{promoted['run_id']}/artifacts/model_card.md"
    text = open_and_wait(browser, url, "Model card: fraud-student", "Release gate", "Quantitative analyses")
    assert f"status: {promoted['gate']}" in text
    for artifact in ("manifest.json", "gate.json", "lineage.json", "plots"):
        assert artifact in text  # the artifact tree beside the card
    browser.save_screenshot(str(shots / "audit-model-card.png"))


def test_registered_version_shows_gate_and_promotion_record(
    browser: Any, ui_url: str, promoted: dict[str, Any], shots: Path
) -> None:
    url = f"{ui_url}/#/models/fraud-student/versions/1"
    text = open_and_wait(browser, url, "stillroom.promotion.approver", "stillroom.gate")
    lines = text.splitlines()

    def tag(name: str) -> str:
        return lines[lines.index(name) + 1]

    assert tag("stillroom.gate") == promoted["gate"]
    assert tag("stillroom.promotion.approver") == "Ada Risk"
    assert tag("stillroom.promotion.reason") == "MRM-2291 quarterly review"
    if promoted["override"]:
        assert tag("stillroom.promotion.override") == promoted["override"]
    assert "@ champion" in text or "@champion" in text
    assert tag("stillroom.run_id") == promoted["run_id"]
    browser.save_screenshot(str(shots / "audit-model-version.png"))
