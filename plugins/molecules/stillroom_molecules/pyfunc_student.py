"""MLflow "model from code" for a molecules student: SMILES in, scores and a validity flag out.

MLflow runs this file when the model is loaded (``mlflow.pyfunc.load_model``): it defines
the model and hands it to ``set_model``; the fitted parts are the logged artifacts (native
LightGBM text / torch state dict, see :mod:`stillroom_molecules.scorer`). An invalid SMILES
gets NaN scores, ``smiles_valid = False`` and a reason; the batch goes on (columns:
:mod:`stillroom_molecules.score_columns`).
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
        return self.scorer.frame(model_input[smiles_input(model_input, context)].tolist())


def smiles_input(frame: pd.DataFrame, context: Any) -> Any:
    """The SMILES column of a frame given straight to the model: ``smiles``, else the first alias
    the model declares (any case), else the only column."""
    from stillroom_molecules.student import smiles_aliases

    aliases = ((getattr(context, "model_config", None) or {}).get("input_aliases") or {}).get("smiles") or smiles_aliases(None)
    lowered = {str(c).lower(): c for c in reversed(list(frame.columns))}
    found = next((lowered[a.lower()] for a in ["smiles", *aliases] if a.lower() in lowered), None)
    return found if found is not None else frame.columns[0]


mlflow.models.set_model(SmilesStudentModel())
