"""The MLflow adapter: the only package of stillroom that imports mlflow.

* :mod:`.store`: connection, client settings, access control on a team server;
* :mod:`.runs`: runs that end FAILED on error, params, metrics, artifacts, lineage, run records;
* :mod:`.models`: students in native flavors (+ compiled engine), plugin-trained teachers, file hashes;
* :mod:`.registry`: aliases pinned to versions, registration, promotion and its history;
* :mod:`.loading`: registered students for batch scoring and Spark, teachers from MLflow;
* :mod:`.reports`: what the compliance report reads of a run.

What :mod:`stillroom.audit` decides to record is written through these functions; nothing else
in stillroom talks to MLflow.
"""

from __future__ import annotations

from .loading import ScoringModel, load_scoring_model, load_teacher_model, spark_udf_factory, teacher_spark_udf_factory
from .models import LoggedStudent, hash_model_files, log_extra_model, log_student_model, log_teacher_model
from .registry import MODEL_ALIAS_URI, model_version_tags, promote, promotion_history, register, resolve_registered
from .reports import ReportSource, fetch_report_source
from .runs import (
    RunRecord,
    log_artifacts,
    log_datasets,
    log_dict,
    log_metrics,
    log_params,
    log_scoring_run,
    log_teacher_input,
    run,
    run_record,
    set_tags,
)
from .store import as_user_error, check_write_access, client_settings, connect, copy_migrated_sqlite, current_uri, use_store

__all__ = [
    "MODEL_ALIAS_URI",
    "LoggedStudent",
    "ReportSource",
    "RunRecord",
    "ScoringModel",
    "as_user_error",
    "check_write_access",
    "client_settings",
    "connect",
    "copy_migrated_sqlite",
    "current_uri",
    "fetch_report_source",
    "hash_model_files",
    "load_scoring_model",
    "load_teacher_model",
    "log_artifacts",
    "log_datasets",
    "log_dict",
    "log_extra_model",
    "log_metrics",
    "log_params",
    "log_scoring_run",
    "log_student_model",
    "log_teacher_input",
    "log_teacher_model",
    "model_version_tags",
    "promote",
    "promotion_history",
    "register",
    "resolve_registered",
    "run",
    "run_record",
    "set_tags",
    "spark_udf_factory",
    "teacher_spark_udf_factory",
    "use_store",
]
