"""MLflow "model from code" for a teacher this vertical trained: SMILES in, outputs and a
validity flag out.

MLflow runs this file when the model is loaded; the fitted parts are the logged artifacts
(chemprop's own checkpoint files and a JSON spec, see
:class:`stillroom_molecules.chemprop_teacher.ChempropEnsemble`), never a pickled Python
object of ours. An invalid SMILES gets NaN outputs and ``smiles_valid = False``.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd


class SmilesTeacherModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from stillroom_molecules.chemprop_teacher import ChempropEnsemble

        self.model = ChempropEnsemble.load(context.artifacts["teacher"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        column = "smiles" if "smiles" in model_input.columns else model_input.columns[0]
        return self.model.frame(model_input[column].tolist())


mlflow.models.set_model(SmilesTeacherModel())
