"""``stillroom report``: the standalone compliance report of a real, promoted run."""

from __future__ import annotations

import base64
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from stillroom.cli import app

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("audit")]


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
