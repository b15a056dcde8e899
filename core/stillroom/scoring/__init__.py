"""Batch scoring engines, independent of MLflow: input formats and schema checks
(:mod:`.formats`), the local streaming engine (:mod:`.batch`), compiled LightGBM students
(:mod:`.compiled`) and Spark (:mod:`.spark`). :mod:`stillroom.api` pins the model version,
chooses the engine and logs the scoring run.
"""

from __future__ import annotations
