"""The columns a molecules student writes for each scored molecule: one place for all of them.

``stillroom score`` writes, after the input's identifying and passthrough columns:

=================  ========  ==========================================================
column             type      what
=================  ========  ==========================================================
*endpoint names*   double    one per endpoint, named after the training file's target
                             column (a value, or a probability for a yes/no endpoint);
                             a one-endpoint student writes ``score``
``smiles_valid``   boolean   the molecule was read and standardised; else its endpoints
                             are empty
``reason``         string    why not: ``empty``, ``parse``, ``sanitize``, ``standardize``
                             (an empty string for a valid molecule)
``max_similarity`` double    nearest-neighbour Tanimoto similarity to the student's
                             training molecules (empty for an invalid one)
``in_domain``      boolean   ``max_similarity`` >= the run's ``molecules.ad_threshold``
=================  ========  ==========================================================

The order is the core's contract for a model that returns a frame (docs/plugins.md): the
model's outputs first (the first one is the score the scoring run summarises), then the
validity flag, then annotations. New columns (conformal ``lower``/``upper``/``set`` ...) are
annotations: add them in :func:`output_frame` and :func:`output_schema`, after the flag.
A student saved before domains were stored writes no domain columns.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from rdkit import Chem

VALID_COLUMN = "smiles_valid"
REASON_COLUMN = "reason"
SIMILARITY_COLUMN = "max_similarity"
DOMAIN_COLUMN = "in_domain"
ANNOTATIONS = (REASON_COLUMN, SIMILARITY_COLUMN, DOMAIN_COLUMN)
SCORING_COLUMNS = (VALID_COLUMN, *ANNOTATIONS)  # after the endpoints, in this order
REASONS = ("empty", "parse", "sanitize", "standardize")


@dataclass
class Scored:
    """A batch's outputs (n, k) (NaN rows where invalid), validity, reasons and, when the
    student has a stored domain, each molecule's max similarity (NaN where invalid) and call."""

    values: np.ndarray
    valid: np.ndarray
    reasons: list[str | None]
    similarity: np.ndarray | None = None
    in_domain: np.ndarray | None = None

    @staticmethod
    def concat(parts: Sequence[Scored]) -> Scored:
        """Order-preserving slices (from the worker pool) back into one batch."""
        domain = parts[0].similarity is not None
        return Scored(
            np.vstack([p.values for p in parts]),
            np.concatenate([p.valid for p in parts]),
            [r for p in parts for r in p.reasons],
            np.concatenate([p.similarity for p in parts]) if domain else None,  # type: ignore[misc]
            np.concatenate([p.in_domain for p in parts]) if domain else None,  # type: ignore[misc]
        )


def reason_of(text: object, standardisation: str | None) -> str:
    """The reason column's word for an invalid input, from :func:`~.chem.standardised_mol`'s
    reason: ``empty`` (no text, no atoms), ``parse`` (not SMILES syntax), ``sanitize`` (read, but
    chemically impossible: a valence, an aromaticity that cannot be kekulised) or
    ``standardize`` (fragment choice or neutralisation failed). Only invalid rows pay for the
    second, unsanitised parse that tells ``parse`` from ``sanitize``."""
    if standardisation == "empty" or not isinstance(text, str) or not text.strip():
        return "empty"
    if standardisation == "unparsable":
        raw = Chem.MolFromSmiles(text.strip(), sanitize=False)
        if raw is None:
            return "parse"
        return "empty" if raw.GetNumAtoms() == 0 else "sanitize"
    return "standardize"


def output_frame(scored: Scored, endpoints: Sequence[str]) -> pd.DataFrame:
    """The frame the pyfunc returns: endpoints, the flag, then the annotations (see the module)."""
    frame = pd.DataFrame(scored.values, columns=list(endpoints))
    frame[VALID_COLUMN] = scored.valid
    # "" rather than None for a valid row: MLflow's Spark UDF writes a missing string as "None"
    frame[REASON_COLUMN] = pd.Series([r or "" for r in scored.reasons], dtype=object)
    if scored.similarity is not None and scored.in_domain is not None:
        frame[SIMILARITY_COLUMN] = scored.similarity
        frame[DOMAIN_COLUMN] = scored.in_domain
    return frame


def output_schema(endpoints: Sequence[str], with_domain: bool) -> list[tuple[str, str]]:
    """(name, MLflow type) of every column :func:`output_frame` writes, in its order."""
    columns = [(name, "double") for name in endpoints] + [(VALID_COLUMN, "boolean"), (REASON_COLUMN, "string")]
    if with_domain:
        columns += [(SIMILARITY_COLUMN, "double"), (DOMAIN_COLUMN, "boolean")]
    return columns
