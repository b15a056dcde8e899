"""Integrity of logged models: their files' sha256, recorded where the files cannot rewrite them,
checked before anything is deserialised.

Where the hashes live, and why: when a model is logged, the sha256 of each of its files goes
into a tag of the *logged model*, and when it is registered, into tags of the *model version*
(``stillroom.model_sha256``: one digest over every path and hash; ``stillroom.model_files``:
each file's hash, when it fits in a tag). Tags live in the tracking database; the files live in
the artifact store. Someone who can replace ``model.lgb`` in a bucket or a directory (the
commonest way a model gets corrupted or swapped) cannot make the registry agree with it, and a
check against the registry needs no trust in any file it checks. The run's ``manifest.json`` is
an artifact beside the model, in the same store: it says the same for a reviewer and is the
record of versions registered before the tags existed, but a version's own tag decides.

Loading (every engine: LightGBM, the compiled student, pyfunc incl. models-from-code, ONNX,
TorchScript) downloads the model into a private directory, checks every file there, and only then
lets MLflow or LightGBM read it; the checked copy is what is loaded, so nothing can change in
between. A changed, missing or added file is one error naming the file.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from .._runtime import sha256_file
from ..contract.names import TAG_PREFIX
from ..errors import IntegrityError, ModelLoadError
from ..scratch import scratch_dir
from .store import short

DIGEST_TAG = f"{TAG_PREFIX}model_sha256"
FILES_TAG = f"{TAG_PREFIX}model_files"
TAG_LIMIT = 4900  # MLflow tag values hold 5,000 characters (8,000 on newer stores)
DOWNLOAD_ONLY = frozenset({"registered_model_meta"})
"""Files MLflow itself writes when it downloads a ``models:/`` URI: never part of the model."""


def hash_files(local: Path) -> dict[str, str]:
    """sha256 of every file under ``local``, by path relative to it (MLflow's download files aside)."""
    return {
        p.relative_to(local).as_posix(): sha256_file(p)
        for p in sorted(local.rglob("*"))
        if p.is_file() and p.relative_to(local).as_posix() not in DOWNLOAD_ONLY
    }


def files_digest(files: dict[str, str]) -> str:
    """One sha256 over every path and its hash (order-independent): the model as a whole."""
    digest = hashlib.sha256()
    for path in sorted(files):
        digest.update(f"{path}\0{files[path]}\n".encode())
    return digest.hexdigest()


def record_tags(files: dict[str, str]) -> dict[str, str]:
    """The tags that record ``files``: the digest always, each file's hash when it fits."""
    tags = {DIGEST_TAG: files_digest(files)}
    listed = json.dumps(files, sort_keys=True, separators=(",", ":"))
    if len(listed) <= TAG_LIMIT:
        tags[FILES_TAG] = listed
    return tags


@dataclass(frozen=True)
class Recorded:
    """The hashes a model was recorded with, and where they were read (said in every message)."""

    source: str
    digest: str | None
    files: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_tags(cls, tags: dict[str, str], source: str) -> Recorded | None:
        if DIGEST_TAG not in tags:
            return None
        try:
            files = json.loads(tags.get(FILES_TAG, "{}"))
        except ValueError:
            files = {}
        return cls(source, tags[DIGEST_TAG], files if isinstance(files, dict) else {})


@dataclass(frozen=True)
class FileCheck:
    """One file's verdict: ``ok``, ``changed``, ``missing`` or ``unexpected`` (not recorded)."""

    path: str
    status: str
    recorded: str | None
    actual: str | None


def compare(local: Path, recorded: Recorded) -> list[FileCheck]:
    """Each file of ``local`` against the record (the per-file list when there is one)."""
    actual = hash_files(local)
    if not recorded.files:  # only the digest was recorded: the whole model is one check
        status = "ok" if files_digest(actual) == recorded.digest else "changed"
        return [FileCheck("(all files)", status, recorded.digest, files_digest(actual))]
    checks = []
    for path in sorted(set(actual) | set(recorded.files)):
        want, have = recorded.files.get(path), actual.get(path)
        status = "ok" if want == have else "missing" if have is None else "unexpected" if want is None else "changed"
        checks.append(FileCheck(path, status, want, have))
    if recorded.digest and files_digest(recorded.files) != recorded.digest:  # the list itself was edited
        checks.append(FileCheck(f"({FILES_TAG} tag)", "changed", recorded.digest, files_digest(recorded.files)))
    return checks


def check_files(local: Path, recorded: Recorded, label: str) -> list[FileCheck]:
    """Raise :class:`IntegrityError` naming the first file that differs from the record."""
    checks = compare(local, recorded)
    bad = [c for c in checks if c.status != "ok"]
    if bad:
        first = bad[0]
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        what = {
            "changed": "differs from its sha256",
            "missing": "is missing",
            "unexpected": "is not one of the files",
        }[first.status]
        raise IntegrityError(f"{label}: file {first.path} {what} recorded {recorded.source}{more}; refusing to load it")
    return checks


# --- where the record is read -----------------------------------------------------------------


def version_record(name: str, version: str) -> Recorded | None:
    """A registered version's hashes: its own tags; else (registered before they existed) the
    model files listed in its run's ``manifest.json``."""
    client = MlflowClient()
    mv = client.get_model_version(name, version)
    recorded = Recorded.from_tags(dict(mv.tags), "at registration (model version tags)")
    if recorded is not None or not mv.run_id:
        return recorded
    return _manifest_record(mv.run_id)


def logged_model_record(model_id: str) -> Recorded | None:
    """A logged model's hashes, from its own tags (set when stillroom logged it)."""
    try:
        tags = dict(MlflowClient().get_logged_model(model_id).tags)
    except MlflowException:
        return None
    return Recorded.from_tags(tags, "when it was logged (logged model tags)")


def _manifest_record(run_id: str) -> Recorded | None:
    """The registered model's files in the run's manifest (extra models of the run left out)."""
    try:
        manifest = mlflow.artifacts.load_dict(f"runs:/{run_id}/manifest.json")
        tags = MlflowClient().get_run(run_id).data.tags
    except Exception:
        return None
    extra = tuple(f"{k.removeprefix(f'{TAG_PREFIX}extra_model.')}/" for k in tags if k.startswith(f"{TAG_PREFIX}extra_model."))
    files = {
        path: str(entry.get("sha256"))
        for path, entry in (manifest.get("model_files") or {}).items()
        if isinstance(entry, dict) and not path.startswith(extra)
    }
    if not files:
        return None
    return Recorded("in the run's manifest.json (registered before version tags held hashes)", files_digest(files), files)


def download_checked(uri: str, recorded: Recorded | None, dst: Path, label: str, trust_unverified: bool = False) -> Path:
    """Download a model into ``dst`` and check it before anyone reads it; returns the local copy.

    Without a record the model is refused unless ``trust_unverified`` (then the caller records
    that it was not verified)."""
    if recorded is None and not trust_unverified:
        raise IntegrityError(
            f"{label} has no recorded file hashes (not registered by stillroom?); "
            "nothing to check it against: pass --trust-unverified to load it anyway (recorded on the scoring run)"
        )
    try:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
    except Exception as exc:
        raise ModelLoadError(f"could not download {label}: {short(exc)}") from None
    if recorded is not None:
        check_files(local, recorded, label)
    return local


@dataclass(frozen=True)
class Verification:
    """What ``stillroom verify`` found about one registered version."""

    name: str
    version: str
    run_id: str | None
    run_status: str | None
    source: str | None
    files: list[FileCheck]

    @property
    def ok(self) -> bool:
        return self.source is not None and all(c.status == "ok" for c in self.files) and self.run_status == "FINISHED"

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.name,
            "version": self.version,
            "run_id": self.run_id,
            "run_status": self.run_status,
            "recorded": self.source,
            "verified": self.ok,
            "files": [c.__dict__ for c in self.files],
        }


def verify_version(name: str, version: str) -> Verification:
    """Download a version and compare every file with its record; nothing is deserialised."""
    client = MlflowClient()
    mv = client.get_model_version(name, version)
    run_status = client.get_run(mv.run_id).info.status if mv.run_id else None
    recorded = version_record(name, version)
    if recorded is None:
        return Verification(name, version, mv.run_id, run_status, None, [])
    with scratch_dir("verify") as tmp:
        local = download_checked(f"models:/{name}/{version}", None, Path(tmp), f"{name} v{version}", trust_unverified=True)
        return Verification(name, version, mv.run_id, run_status, recorded.source, compare(local, recorded))
