"""Task types: what a model predicts, how its labels and outputs are shaped, how it is judged.

The only layer that branches on the task type (binary, multiclass, multilabel, regression,
mixed): :mod:`.kinds` holds the shape rules, :mod:`.targets` the distillation targets of each
type, :mod:`.measures` the metrics beyond binary, :mod:`.types` what each type reports and must
log, :mod:`.judging` what a run is judged against (labels, or the teacher's own outputs).
"""

from __future__ import annotations
