"""MLflow "model from code" for a teacher this vertical trained: SMILES in, outputs and a
validity flag out.

MLflow runs this file when the model is loaded; the fitted parts are the logged artifacts,
never a pickled Python object of ours: chemprop's own checkpoint files and a JSON spec
(:class:`stillroom_molecules.chemprop_teacher.ChempropEnsemble`), or LightGBM text boosters,
skops forests and a JSON spec (:class:`stillroom_molecules.teacher.SavedEnsemble`). An
invalid SMILES gets NaN outputs and ``smiles_valid = False``.
"""

from __future__ import annotations

from typing import Any

import mlflow
import pandas as pd


class SmilesTeacherModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from pathlib import Path

        from stillroom_molecules.chemprop_teacher import SPEC_FILE, ChempropEnsemble
        from stillroom_molecules.teacher import SavedEnsemble

        directory = Path(context.artifacts["teacher"])
        self.model = ChempropEnsemble.load(directory) if (directory / SPEC_FILE).is_file() else SavedEnsemble.load(directory)

    def predict(self, context: Any, model_input: pd.DataFrame, params: dict[str, Any] | None = None) -> pd.DataFrame:
        column = "smiles" if "smiles" in model_input.columns else model_input.columns[0]
        return self.model.frame(model_input[column].tolist())


mlflow.models.set_model(SmilesTeacherModel())
