"""MLflow "model from code" for a molecules student: SMILES in, scores and a validity flag out.

MLflow runs this file when the model is loaded (``mlflow.pyfunc.load_model``): it defines
the model and hands it to ``set_model``; the fitted parts are the logged artifacts (native
LightGBM text / torch state dict, see :mod:`stillroom_molecules.scorer`). An invalid SMILES
gets NaN scores and ``smiles_valid = False``; the batch goes on.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd


class SmilesStudentModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from stillroom_molecules.scorer import Scorer

        self.scorer = Scorer.load(context.artifacts["student"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        column = "smiles" if "smiles" in model_input.columns else model_input.columns[0]
        return self.scorer.frame(model_input[column].tolist())


mlflow.models.set_model(SmilesStudentModel())
