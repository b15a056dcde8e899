"""MLflow "model from code" for a medical student: images in, per-class probabilities and the call
at the operating point out (see :mod:`stillroom_medical.scorer` for the columns).

MLflow runs this file when the model is loaded (``mlflow.pyfunc.load_model``): it defines the
model and hands it to ``set_model``. The network is in the artifacts (ONNX and TorchScript
exports), the rest in the model's ``model_config``. Nothing is pickled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlflow
import numpy as np


class ImageStudentModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from stillroom_medical.scorer import Scorer, ScoringSpec

        self.scorer = Scorer(Path(context.artifacts["student"]), ScoringSpec.from_config(dict(context.model_config or {})))
        self.engine, self.engine_note = self.scorer.engine, self.scorer.engine_note  # read by stillroom score

    # np.ndarray: a hint MLflow infers no schema from (the tensor signature checks the input); a
    # dict {"image": array} arrives too
    def predict(self, context: Any, model_input: np.ndarray, params: dict[str, Any] | None = None) -> Any:
        images = model_input["image"] if isinstance(model_input, dict) else model_input
        return self.scorer.frame(np.asarray(images, dtype=np.float32))


mlflow.models.set_model(ImageStudentModel())
