"""The distillation itself (steps 1-7): data, teacher (outputs cached), transfer set (+ MUNGE),
student and same-size baseline, evaluation (+ efficiency), gate. :mod:`stillroom.audit` records
the result; :func:`stillroom.api.distill` runs both."""

from __future__ import annotations
