"""The audit trail of a distillation: what is recorded in MLflow and how a reviewer reads it.

:mod:`.record` logs one distillation as one run (lineage, metrics, artifacts, the student) and
registers the student; :mod:`.compliance` checks the stored run against its profiles;
:mod:`.modelcard` writes the model card, :mod:`.manifest` the sha256 of every artifact,
:mod:`.environment` what reproducing it needs; :mod:`.report` renders a standalone HTML report
of a stored run; :mod:`.summary` prints the result on the console.
"""

from __future__ import annotations
