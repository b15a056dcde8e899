"""The audit experience of one real, promoted distillation: the offline compliance report
(``stillroom report``) and the MLflow UI checked in a real headless Chromium.

Both halves share one distillation (the package fixture ``promoted``), so they live in one
module: ``make test`` distributes tests by module (``--dist loadscope``), which keeps a
module's fixtures on one worker and computes them once.

UI: ``stillroom ui`` serves the store; Selenium drives Debian's chromium through its
chromedriver (nothing downloads a browser). The pages are a React app: every check waits
until the content it looks for has rendered, never a fixed sleep. Screenshots go to the
test's temp dir, or to ``$STILLROOM_SCREENSHOTS_DIR`` (``make screenshots`` points it at
docs/, where the README's pictures live).
"""

from __future__ import annotations

import base64
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from server.postgres import free_port, require_binary
from server.processes import stop_group, wait_healthy
from typer.testing import CliRunner

from stillroom.cli import app

pytestmark = pytest.mark.slow

RENDER_TIMEOUT = 120  # seconds: a shared 2-core machine can take long to render the first page


# --- the compliance report -----------------------------------------------------------------


class Page(HTMLParser):
    """What a browser would fetch: every src/href, plus the page text and the tables' cells."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.images: list[str] = []
        self.scripts = 0
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script":
            self.scripts += 1
        if tag == "img":
            self.images.append(values.get("src") or "")
        elif tag == "link" and values.get("href"):
            self.links.append(values["href"] or "")

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.text.append(data.strip())


@pytest.fixture(scope="module")
def report(promoted: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Page]:
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = CliRunner().invoke(app, ["report", promoted["run_id"], "--output", str(out)])
    assert result.exit_code == 0, result.output
    html = out.read_text()
    page = Page()
    page.feed(html)
    return html, page


def test_report_is_standalone(report: tuple[str, Page]) -> None:
    html, page = report
    assert page.scripts == 0 and page.links == []  # nothing to fetch: readable offline
    assert not re.search(r"(src|href)=\"(https?:)?//", html)
    assert len(page.images) >= 4 and all(src.startswith("data:image/png;base64,") for src in page.images)
    for src in page.images:  # each is a real PNG
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_shows_gate_and_metric_values(report: tuple[str, Page], promoted: dict[str, Any]) -> None:
    html, page = report
    assert f'data-gate="{promoted["gate"]}"' in html
    assert 'data-compliance="complete"' in html and "compliance-missing" not in html  # checked when it was logged
    m = promoted["metrics"]
    for role in ("teacher", "student", "baseline"):
        for name in ("roc_auc", "average_precision"):
            assert f"{m[f'{role}.{name}']:.4g}" in page.text
        interval = f"[{m[f'{role}.average_precision.ci_low']:.4f}, {m[f'{role}.average_precision.ci_high']:.4f}]"
        assert interval in page.text
    assert f"{m['retention.average_precision']:.4g}" in page.text
    for heading in ("Model details", "Intended use", "Release gate", "Caveats and recommendations"):
        assert heading in page.text  # the model card, rendered


def test_report_shows_lineage_and_the_promotion_record(report: tuple[str, Page], promoted: dict[str, Any]) -> None:
    from stillroom import tracking

    html, page = report
    record = tracking.run_record(promoted["run_id"])
    for dataset in record.datasets:
        assert dataset["digest"] in page.text
    assert record.model_inputs[0] in page.text  # the teacher, as the run's logged-model input
    promotion = html.split('id="promotion-table"', 1)[1].split("</table>", 1)[0]
    assert "Ada Risk" in promotion and "MRM-2291 quarterly review" in promotion and "@champion" in promotion
    assert "<td>complete</td>" in promotion  # the compliance result the promotion saw
    if promoted["override"]:
        assert promoted["override"] in promotion
    assert "models:/fraud-student/1" in page.text
    assert "python" in page.text and "mlflow" in html  # environment


def test_report_of_an_unknown_run_is_one_clear_error(promoted: dict[str, Any], tmp_path: Path) -> None:
    out = tmp_path / "r.html"
    result = CliRunner().invoke(app, ["report", "0123456789abcdef0123456789abcdef", "--output", str(out)])
    assert result.exit_code == 2
    assert "no run '0123456789abcdef0123456789abcdef'" in result.output and "Traceback" not in result.output
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_report_of_a_promotion_run_is_refused(promoted: dict[str, Any], tmp_path: Path) -> None:
    import mlflow

    promotion_run = mlflow.search_runs(experiment_names=["stillroom-promotions"], output_format="list")[0]
    result = CliRunner().invoke(app, ["report", promotion_run.info.run_id, "--output", str(tmp_path / "r.html")])
    assert result.exit_code == 2 and "not a stillroom distillation run (role: promotion)" in result.output


# --- the MLflow UI in a real browser -------------------------------------------------------


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
        wait_healthy(url, proc, log, "stillroom ui", timeout=RENDER_TIMEOUT)
        yield url
    finally:
        stop_group(proc, grace=10)


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


def test_ui_run_page_shows_gate_tag_and_teacher_student_metrics(
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


def test_ui_model_card_artifact_is_rendered(browser: Any, ui_url: str, promoted: dict[str, Any], shots: Path) -> None:
    url = f"{ui_url}/#/experiments/{promoted['experiment_id']}/runs/{promoted['run_id']}/artifacts/model_card.md"
    text = open_and_wait(browser, url, "Model card: fraud-student", "Release gate", "Quantitative analyses")
    assert f"status: {promoted['gate']}" in text
    for artifact in ("manifest.json", "gate.json", "lineage.json", "plots"):
        assert artifact in text  # the artifact tree beside the card
    browser.save_screenshot(str(shots / "audit-model-card.png"))


def test_ui_registered_version_shows_gate_and_promotion_record(
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
