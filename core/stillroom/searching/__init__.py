"""``stillroom search``: the student and the recipe searched under a budget, audited like a run.

Between :mod:`stillroom.distillation` (each trial is the pipeline, judged on validation) and
:mod:`stillroom.api`: :mod:`.space` (the vertical's default space, the user's over it, each
trial's config), :mod:`.study` (the Optuna study in an RDB beside the tracking store, resumed
by the same command), :mod:`.trials` (one trial: pipeline on validation, pruning on size, a
child run), :mod:`.choice` (constraints, the Pareto front, the tie-break, the closest trial
when nothing is feasible), :mod:`.front` (plot and table), :mod:`.search` (the whole job: the
chosen student then evaluated on test, gated and registered by :func:`stillroom.audit.record`).
"""

from .search import run_search

__all__ = ["run_search"]
