"""What the job's log says when a torch model is logged: MLflow's pickle warning only where
MLflow really pickles (a real MLflow store, real torch modules)."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from stillroom.contract import NativeModel
from stillroom.tracking.models import log_teacher_model

torch = pytest.importorskip("torch")


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def mlflow_pytorch_log() -> Iterator[list[str]]:
    """What MLflow's pytorch flavor logs, read at its own logger (MLflow does not propagate)."""
    handler, logger = _Lines(), logging.getLogger("mlflow.pytorch")
    logger.addHandler(handler)
    try:
        yield handler.lines
    finally:
        logger.removeHandler(handler)


def _log(model: object) -> str:
    native = NativeModel("pytorch", model, log_kwargs={"serialization_format": "pickle", "pip_requirements": ["torch"]})
    return log_teacher_model(native, "tiny", "native-logging", {"kind": type(model).__name__})


def test_a_torchscript_model_is_logged_without_a_pickle_warning_and_a_plain_module_keeps_it(
    tracking_store: object, mlflow_pytorch_log: list[str]
) -> None:
    net = torch.nn.Sequential(torch.nn.Linear(3, 2)).eval()
    _log(torch.jit.script(net))
    assert not [line for line in mlflow_pytorch_log if "Pickle" in line]
    _log(net)  # a plain module really is pickled: the warning is true and stays
    assert [line for line in mlflow_pytorch_log if line.startswith("Saving pytorch model by Pickle")]
    assert logging.getLogger("mlflow.pytorch").filters == []  # the filter was only there for the call
