"""The identity of a teacher: everything its outputs depend on, as one cache key.

A teacher trained here is cached (:func:`stillroom.cache.cached_model`), and so are its
outputs; a cache key that misses one input of the training silently serves a teacher trained
on something else. It happened: changing ``data.label`` reused a teacher trained on another
label (teacher ROC-AUC 0.013, and retention still passed). So the key is built in one place,
for the core and every vertical alike, from

* the teacher's spec (its registered name) and its parameters, and the seed;
* the feature names *in order* and the label column(s); the task type, the kinds of a mixed
  task's outputs, the class names and the reference (labels or teacher);
* a digest of the training data: the values of exactly those feature and label columns in
  the splits the teacher learns from (train; validation too when it stops early on it), so a
  column the teacher never reads does not retrain it, and a changed value does;
* anything else the vertical knows matters (library versions, a featuriser's settings).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from typing import Any

from .bundle import DataBundle, frame_digest

__all__ = ["data_identity", "teacher_cache_key"]


def data_identity(bundle: DataBundle, splits: Iterable[str] = ("train",)) -> dict[str, Any]:
    """What of the data a teacher's training depends on (see the module docstring)."""
    columns = list(dict.fromkeys([*bundle.features, *bundle.labels]))
    return {
        "features": list(bundle.features),
        "labels": bundle.labels,
        "task_type": bundle.task_type,
        "output_types": list(bundle.output_types) if bundle.output_types is not None else None,
        "class_names": list(bundle.class_names) if bundle.class_names is not None else None,
        "reference": bundle.reference,
        "data": {name: frame_digest(bundle.splits()[name][columns]) for name in splits},
    }


def teacher_cache_key(
    name: str, params: Any, seed: int, bundle: DataBundle, *, splits: Iterable[str] = ("train",), **extra: Any
) -> str:
    """A 24-hex key of the teacher spec ``name``, its ``params``, the ``seed``, the data it
    learns from (:func:`data_identity` over ``splits``) and ``extra``."""
    identity = {"teacher": name, "params": params, "seed": seed, **data_identity(bundle, splits), "extra": extra}
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()[:24]
