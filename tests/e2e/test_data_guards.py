"""Data guards on a real small fraud run (a bank's table in the ULB layout): a label-derived
column (a fraud scenario code) stops the run before the teacher, naming the column and the
setting that drops it; an id column is caught and recorded; once the leak is dropped the run
finishes with its ``data_quality.json``, and the card and the report show the findings."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import stillroom
from stillroom.errors import DataError
from stillroom.testing import temporary_store

from .conftest import SMALL_MODELS

pytestmark = pytest.mark.slow


def leaky_file(path: Path, rows: int = 4000, seed: int = 0) -> Path:
    """ULB-like transactions plus a transaction id (unique integers) and the fraud scenario
    code of the handbook's simulator (0 genuine, 1-3 the kind of fraud): the label in disguise."""
    rng = np.random.default_rng(seed)
    fraud = (rng.random(rows) < 0.05).astype(int)
    frame = pd.DataFrame({"Time": np.sort(rng.uniform(0, 2 * 86_400, rows)).round()})
    for i in range(1, 9):
        frame[f"V{i}"] = rng.normal(size=rows) + (1.2 * fraud if i <= 3 else 0.0)
    frame["Amount"] = rng.gamma(2.0, 40.0, rows).round(2)
    frame["TX_ID"] = rng.permutation(rows) + 100_000
    frame["TX_FRAUD_SCENARIO"] = fraud * rng.integers(1, 4, rows)
    frame["Class"] = fraud
    frame.to_csv(path, index=False)
    return path


def _overrides(path: Path, *extra: str) -> list[str]:
    return ["data.dataset=fraud.table", f"data.path={path}", "data.time=Time", *SMALL_MODELS, *extra]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    root = tmp_path_factory.mktemp("guards")
    with temporary_store(root):
        yield root


def test_a_label_derived_column_stops_the_run_before_the_teacher(store: Path) -> None:
    import mlflow

    path = leaky_file(store / "leaky.csv")
    with pytest.raises(DataError) as caught:
        stillroom.distill("fraud", overrides=_overrides(path))
    message = str(caught.value)
    assert "'TX_FRAUD_SCENARIO' alone separates the training labels (roc_auc 1.000" in message
    assert "data.drop=[column]" in message and "data.guards.accept" in message
    assert "TX_ID" not in message  # an id is a warning by default, not an error
    assert mlflow.search_runs(search_all_experiments=True, output_format="list") == []  # no teacher run, nothing


@pytest.fixture(scope="module")
def dropped(store: Path) -> dict[str, Any]:
    path = leaky_file(store / "leaky.csv")
    return stillroom.distill("fraud", overrides=_overrides(path, "data.drop=[TX_FRAUD_SCENARIO]")).to_dict()


def test_an_id_column_is_caught_and_recorded(dropped: dict[str, Any]) -> None:
    import mlflow

    quality = dropped["data_quality"]
    ids = [f for f in quality["findings"] if f["guard"] == "id_like"]
    assert [f["column"] for f in ids] == ["TX_ID"] and ids[0]["severity"] == "warn"
    assert "every value unique" in ids[0]["message"] and "named like an id" in ids[0]["message"]
    assert not [f for f in quality["findings"] if f["guard"] == "single_feature"]
    stored = json.loads(
        Path(mlflow.artifacts.download_artifacts(run_id=dropped["run_id"], artifact_path="data_quality.json")).read_text()
    )
    assert stored["findings"] == quality["findings"] and stored["status"] == "warnings"
    test = stored["splits"]["test"]
    assert test["rows"] == 800 and test["rarest"]["class"] == "1" and test["labels"]["Class"]["1"] == test["rarest"]["count"]
    card = Path(mlflow.artifacts.download_artifacts(run_id=dropped["run_id"], artifact_path="model_card.md")).read_text()
    assert "## Data quality" in card and "'TX_ID' looks like an identifier" in card
    assert "simulated" not in card.split("## Caveats")[1]  # a user's file, not the embedded simulator


def test_the_report_shows_the_findings_and_every_retention_and_gain(dropped: dict[str, Any], tmp_path: Path) -> None:
    from stillroom.audit.report import write_report

    html = write_report(dropped["run_id"], tmp_path / "report.html").read_text()
    assert 'data-quality="warnings"' in html and "TX_ID" in html
    table = html.split('id="retention-gain-table"')[1].split("</table>")[0]
    for metric in ("roc_auc", "average_precision"):
        assert f"<td>{metric}</td>" in table
    rows = table.split("<tr>")[2:]
    assert len(rows) >= 2
    verdicts = ("better than the baseline", "worse than the baseline", "no difference shown")
    assert all(sum(v in row for v in verdicts) == 1 for row in rows if "<td>gain" not in row)


def test_a_guard_set_to_warn_lets_the_run_go_on_and_records_it(store: Path) -> None:
    path = leaky_file(store / "leaky.csv")
    result = stillroom.distill("fraud", overrides=_overrides(path, "data.guards.single_feature=warn"))
    leaks = [f for f in result.data_quality["findings"] if f["guard"] == "single_feature"]
    assert [f["column"] for f in leaks] == ["TX_FRAUD_SCENARIO"] and leaks[0]["severity"] == "warn"
    assert leaks[0]["value"] == pytest.approx(1.0)
