"""The medical ResNet teacher is cached under the core's teacher key (train and validation, on
which it stops early): another label trains a new teacher, the same settings reuse it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from stillroom.cache import use_cache_dir
from stillroom_medical import teacher
from stillroom_medical.images import to_bundle
from stillroom_medical.synthetic import synthetic_data
from stillroom_medical.teacher import train_resnet_teacher

TINY = {"widths": [4, 8, 8], "epochs": 1, "progress": False, "threads": 1}


def test_another_label_or_validation_split_trains_a_new_teacher(tmp_path: Path) -> None:
    bundle = to_bundle(synthetic_data(n_train=48, n_validation=24, n_test=24, size=12))
    label = bundle.labels[0]
    flipped = replace(
        bundle,
        train=bundle.train.assign(flipped=1 - bundle.train[label]),
        validation=bundle.validation.assign(flipped=1 - bundle.validation[label]),
        test=bundle.test.assign(flipped=1 - bundle.test[label]),
        label="flipped",
    )
    with use_cache_dir(tmp_path):
        first = train_resnet_teacher(TINY, bundle, 0)
        again = train_resnet_teacher(TINY, bundle, 0)
        relabelled = train_resnet_teacher(TINY, flipped, 0)
        revalidated = train_resnet_teacher(TINY, replace(bundle, validation=bundle.validation.iloc[:20]), 0)
    assert not first.details["cached"] and again.details["cached"] and again.identity == first.identity
    assert not relabelled.details["cached"] and not revalidated.details["cached"]
    assert len({first.identity, relabelled.identity, revalidated.identity}) == 3
    assert len(list(tmp_path.glob("model-*.joblib"))) == 3


def test_a_teacher_an_earlier_training_loop_cached_is_trained_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The loop's revision is part of the key: after a change to how the loop trains (early
    stopping that now anneals first), the same settings and data do not get the old weights."""
    bundle = to_bundle(synthetic_data(n_train=48, n_validation=24, n_test=24, size=12))
    with use_cache_dir(tmp_path):
        monkeypatch.setattr(teacher, "TRAINING_REVISION", teacher.TRAINING_REVISION - 1)
        earlier = train_resnet_teacher(TINY, bundle, 0)
        monkeypatch.undo()
        now = train_resnet_teacher(TINY, bundle, 0)
        again = train_resnet_teacher(TINY, bundle, 0)
    assert not earlier.details["cached"] and not now.details["cached"] and again.details["cached"]
    assert now.identity != earlier.identity and again.identity == now.identity
