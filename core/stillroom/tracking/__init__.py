"""The MLflow adapter: the only package of stillroom that imports mlflow.

* :mod:`.store`: connection, client settings, access control on a team server;
* :mod:`.runs`: runs that end FAILED on error, params, metrics, artifacts, lineage, run records;
* :mod:`.models`: students in native flavors (+ compiled engine), plugin-trained teachers, file hashes;
* :mod:`.registry`: aliases pinned to versions, registration, promotion and its history;
* :mod:`.loading`: registered students for batch scoring and Spark, teachers from MLflow;
* :mod:`.reports`: what the compliance report reads of a run;
* :mod:`.integrity`: the sha256 of every model file, recorded in tags, checked before any load;
* :mod:`.recovery`: closing the runs of jobs that were killed.

What :mod:`stillroom.audit` decides to record is written through these functions; nothing else
in stillroom talks to MLflow.
"""

from __future__ import annotations

from .integrity import Verification, verify_version
from .loading import (
    ScoringModel,
    load_scoring_model,
    load_teacher_model,
    scoring_model,
    spark_udf_factory,
    teacher_spark_udf_factory,
)
from .models import LoggedStudent, hash_model_files, log_extra_model, log_student_model, log_teacher_model
from .recovery import recover
from .registry import MODEL_ALIAS_URI, model_version_tags, promote, promotion_history, register, resolve_registered
from .reports import ReportSource, fetch_report_source
from .runs import (
    FAILURE_TAG,
    ORPHAN_TAG,
    REGISTRATION_TAG,
    RunRecord,
    adopt,
    child_runs,
    fail_run,
    failure_text,
    finish_run,
    job,
    label_orphans,
    log_artifacts,
    log_artifacts_to,
    log_child_run,
    log_datasets,
    log_dict,
    log_metrics,
    log_params,
    log_scoring_run,
    log_teacher_input,
    open_parent_run,
    read_run_table,
    run,
    run_record,
    set_tags,
    tag_run,
)
from .store import (
    artifact_root,
    as_user_error,
    check_write_access,
    client_settings,
    connect,
    copy_migrated_sqlite,
    current_uri,
    default_artifact_location,
    store_directory,
    use_store,
)

__all__ = [
    "FAILURE_TAG",
    "MODEL_ALIAS_URI",
    "ORPHAN_TAG",
    "REGISTRATION_TAG",
    "Verification",
    "adopt",
    "child_runs",
    "log_artifacts_to",
    "log_child_run",
    "read_run_table",
    "open_parent_run",
    "store_directory",
    "artifact_root",
    "default_artifact_location",
    "fail_run",
    "failure_text",
    "finish_run",
    "job",
    "label_orphans",
    "recover",
    "scoring_model",
    "verify_version",
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
    "tag_run",
    "spark_udf_factory",
    "teacher_spark_udf_factory",
    "use_store",
]
