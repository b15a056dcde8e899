"""Class balance and events of a split's labels, per task type.

A thresholded metric (sensitivity, alert overlap, enrichment) is only as good as the number of
events it is computed on: 2 frauds in a test split give a recall of 0, 0.5 or 1. The data
guards (:mod:`stillroom.distillation.guards`) record, for every split, how many rows hold each
class (class labels), how many positives each yes/no output has, and how many values each
value output has, and take the rarest of them as the split's events.
"""

from __future__ import annotations

import numpy as np

from .kinds import REGRESSION, has_class_labels, label_kinds


def label_counts(
    task_type: str, y: np.ndarray, labels: list[str], output_types: list[str] | None = None
) -> dict[str, dict[str, int]]:
    """Per label column: rows per class (class labels, yes/no outputs: ``"0"``, ``"1"`` ...) or
    ``{"values": n}`` for a value output (missing labels left out)."""
    if has_class_labels(task_type):
        classes, counts = np.unique(np.asarray(y).astype(int), return_counts=True)
        return {labels[0]: {str(c): int(n) for c, n in zip(classes, counts, strict=True)}}
    y2 = np.asarray(y, dtype=float).reshape(len(y), -1)
    out: dict[str, dict[str, int]] = {}
    for j, (name, kind) in enumerate(zip(labels, label_kinds(task_type, output_types, y2.shape[1]), strict=True)):
        known = y2[~np.isnan(y2[:, j]), j]
        if kind == REGRESSION:
            out[name] = {"values": int(len(known))}
        else:
            out[name] = {"0": int(np.sum(known == 0)), "1": int(np.sum(known == 1))}
    return out


def rarest_events(counts: dict[str, dict[str, int]]) -> tuple[str, str, int]:
    """The rarest event of a split: (label, class or ``values``, count). For class labels the
    rarest class (a binary task's positives, usually); for a value output its number of values."""
    rarest = ("", "", -1)
    for label, per_class in counts.items():
        for cls, n in per_class.items():
            if rarest[2] < 0 or n < rarest[2]:
                rarest = (label, cls, n)
    return rarest
