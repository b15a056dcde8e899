"""Generated analogues of the training molecules: transfer molecules near the labelled chemistry.

The unlabelled pool (NCI, a user's library) is chemistry from elsewhere: most of it is far from
the training molecules, where the teacher itself is unreliable and where the student will rarely
be asked. What a student most needs to copy is the teacher *around* the training series, the
neighbourhood a medicinal chemist explores next. So the teacher also labels analogues made from
the training molecules by the moves a chemist makes, each with RDKit:

* ``brics``: BRICS recombination (Degen et al. 2008): a training molecule is cut at one
  retrosynthetically sensible bond (``BRICS.FindBRICSBonds``) and one side is replaced by a
  side of another training molecule cut at a bond of the same BRICS type (``Chem.molzip``);
* ``atom_swap``: one atom changed (aromatic CH <-> N, halogen swaps, ether O -> NH);
* ``substituent``: one substituent added to an aromatic CH (methyl, F, Cl, OH, OMe) or removed;
* ``ring``: one ring edit (a ring CH2 -> O or NH, ring contraction or expansion by one carbon).

Single-step edits are RDKit reaction SMARTS (``rdChemReactions``) applied to one training
molecule at a seeded random site. Every product is sanitised and standardised like every other
molecule (:mod:`stillroom_molecules.chem`), and kept only if it is

1. valid (sanitises and standardises),
2. new: not generated twice, not a molecule of the labelled splits (train, validation, test)
   nor of the pool,
3. within the heavy-atom range of the training molecules (recombination can make giants),
4. within the similarity band: its nearest training molecule at Tanimoto (Morgan r=2, 2,048
   bits) ``>= similarity_min`` (close enough that the teacher has seen the chemistry) and
   ``<= similarity_max`` (far enough to teach something a training molecule does not),

then capped at ``max_count`` (a seeded subsample, the methods sharing the cap equally; a method
short of candidates leaves its share to the others). The
composition (accepted per method, rejected per reason) is returned with the molecules and
logged by the run (``transfer.rows.analogue.<method>`` params, ``molecules/transfer_analogues.json``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from rdkit import Chem, DataStructs
from rdkit.Chem import BRICS, rdChemReactions, rdFingerprintGenerator

from .chem import standardise_one, to_mols

METHODS = ("brics", "atom_swap", "substituent", "ring")
EDITS: dict[str, tuple[str, ...]] = {
    "atom_swap": (
        "[cH:1]>>[n:1]",
        "[n;X2;r6;H0;+0:1]>>[c:1]",
        "[Cl:1]>>[F:1]",
        "[F:1]>>[Cl:1]",
        "[Br,I:1]>>[Cl:1]",
        "[O;X2;H0;!R;!$(O-C=O);!$(O-[!#6]):1]>>[N:1]",
    ),
    "substituent": (
        "[cH:1]>>[c:1]-[CH3]",
        "[cH:1]>>[c:1]-F",
        "[cH:1]>>[c:1]-Cl",
        "[cH:1]>>[c:1]-[OH]",
        "[cH:1]>>[c:1]-O-[CH3]",
        "[c:1]-[CH3]>>[c:1]",
        "[c:1]-[F,Cl,Br,I]>>[c:1]",
        "[c:1]-[OH]>>[c:1]",
    ),
    "ring": (
        "[CH2;R;!a;$([CH2](-[#6])-[#6]):1]>>[O:1]",
        "[CH2;R;!a;$([CH2](-[#6])-[#6]):1]>>[N:1]",
        "[C;R;!a:1]-[CH2;R;!a]-[C;R;!a:2]>>[C:1]-[C:2]",
        "[C;R;!a:1]-[C;R;!a:2]>>[C:1]-[CH2]-[C:2]",
    ),
}
_REACTIONS: dict[str, list[rdChemReactions.ChemicalReaction]] = {}
REASONS = (
    "invalid",
    "duplicate",
    "in a labelled split",
    "in the pool",
    "outside the size range",
    "below the band",
    "above the band",
    "over the cap",
)


@dataclass(frozen=True)
class AnalogueRequest:
    """What to generate (``molecules.analogues`` in the config)."""

    max_count: int = 1000
    methods: tuple[str, ...] = METHODS
    similarity_min: float = 0.4
    similarity_max: float = 0.9
    oversample: float = 4.0  # candidates drawn per analogue wanted (most are rejected by the band)


@dataclass
class AnalogueSet:
    """Accepted analogues (canonical SMILES and the method that made each) and the composition."""

    smiles: list[str] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)
    similarity: list[float] = field(default_factory=list)
    candidates: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)

    def report(self, request: AnalogueRequest) -> dict[str, Any]:
        accepted = Counter(self.methods)
        return {
            "accepted": len(self.smiles),
            "accepted_by_method": {m: accepted.get(m, 0) for m in request.methods},
            "candidates_by_method": {m: self.candidates.get(m, 0) for m in request.methods},
            "rejected_by_reason": {r: self.rejected.get(r, 0) for r in REASONS},
            "similarity_band": [request.similarity_min, request.similarity_max],
            "max_count": request.max_count,
            "median_nearest_training_similarity": float(np.median(self.similarity)) if self.similarity else None,
        }

    def frame(self) -> pd.DataFrame:
        return pd.DataFrame({"smiles": self.smiles, "__origin__": [f"analogue.{m}" for m in self.methods]})


def reactions(method: str) -> list[rdChemReactions.ChemicalReaction]:
    if method not in _REACTIONS:
        _REACTIONS[method] = [rdChemReactions.ReactionFromSmarts(s) for s in EDITS[method]]
    return _REACTIONS[method]


def generate(
    training: Sequence[str], known: set[str], pool: set[str], request: AnalogueRequest, rng: np.random.Generator
) -> AnalogueSet:
    """Analogues of ``training`` (canonical SMILES), filtered and capped as the module says."""
    out = AnalogueSet()
    mols = [m for m in to_mols(training) if m is not None]
    if not mols:
        return out
    sizes = [m.GetNumHeavyAtoms() for m in mols]
    size_range = (min(sizes), max(sizes))
    reference = _fingerprints(mols)
    per_method = -(-request.max_count // len(request.methods))  # the cap, shared equally
    seen: set[str] = set()
    kept: dict[str, list[tuple[str, float]]] = {}
    for method in request.methods:
        wanted = int(np.ceil(per_method * request.oversample))
        products = brics_products(mols, wanted, rng) if method == "brics" else edit_products(mols, method, wanted, rng)
        accepted = []
        for mol in products:
            out.candidates[method] += 1
            canonical, reason = _check(mol, seen, known, pool, size_range)
            if canonical is None:
                out.rejected[str(reason)] += 1
                continue
            accepted.append(canonical)
        kept[method] = _in_band(accepted, reference, request, out.rejected)
    for method, entries in _share_cap(kept, per_method, request.max_count, rng):
        for smiles, similarity in entries:
            out.smiles.append(smiles)
            out.methods.append(method)
            out.similarity.append(similarity)
    out.rejected["over the cap"] += sum(len(e) for e in kept.values()) - len(out.smiles)
    return out


def _share_cap(
    kept: dict[str, list[tuple[str, float]]], per_method: int, cap: int, rng: np.random.Generator
) -> list[tuple[str, list[tuple[str, float]]]]:
    """Each method's seeded share of the cap; what a method could not fill (few sites for its
    edits) goes to the others, in turn."""
    shuffled = {m: [entries[i] for i in rng.permutation(len(entries))] for m, entries in kept.items()}
    taken = {m: min(per_method, len(e)) for m, e in shuffled.items()}
    room = cap - sum(taken.values())
    while room > 0 and any(taken[m] < len(e) for m, e in shuffled.items()):
        for m, e in shuffled.items():
            if room > 0 and taken[m] < len(e):
                taken[m] += 1
                room -= 1
    while sum(taken.values()) > cap:  # the shares round up: the last method gives back the excess
        last = next(m for m in reversed(list(taken)) if taken[m] > 0)
        taken[last] -= 1
    return [(m, shuffled[m][: taken[m]]) for m in shuffled]


def _check(
    mol: Chem.Mol | None, seen: set[str], known: set[str], pool: set[str], size_range: tuple[int, int]
) -> tuple[str | None, str | None]:
    """(canonical SMILES, None) of a new, valid, plausibly sized product, or (None, why not)."""
    if mol is None:
        return None, "invalid"
    try:
        Chem.SanitizeMol(mol)
        text = Chem.MolToSmiles(mol)
    except Exception:  # RDKit's valence and kekulisation errors: an impossible product
        return None, "invalid"
    canonical, _reason = standardise_one(text)
    if canonical is None or "*" in canonical:
        return None, "invalid"
    if canonical in seen:
        return None, "duplicate"
    seen.add(canonical)
    if canonical in known:
        return None, "in a labelled split"
    if canonical in pool:
        return None, "in the pool"
    heavy = Chem.MolFromSmiles(canonical).GetNumHeavyAtoms()
    if not size_range[0] <= heavy <= size_range[1]:
        return None, "outside the size range"
    return canonical, None


def _in_band(
    smiles: list[str], reference: list[DataStructs.ExplicitBitVect], request: AnalogueRequest, rejected: Counter[str]
) -> list[tuple[str, float]]:
    """(SMILES, nearest-training similarity) of those inside the band; the others counted."""
    out = []
    for text, fp in zip(smiles, _fingerprints(list(to_mols(smiles))), strict=True):
        nearest = max(DataStructs.BulkTanimotoSimilarity(fp, reference))
        if nearest < request.similarity_min:
            rejected["below the band"] += 1
        elif nearest > request.similarity_max:
            rejected["above the band"] += 1
        else:
            out.append((text, float(nearest)))
    return out


def _fingerprints(mols: Sequence[Chem.Mol | None]) -> list[DataStructs.ExplicitBitVect]:
    """The applicability domain's fingerprints (Morgan r=2, 2,048 bits): the band and the
    domain measure similarity the same way."""
    gen = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    return [gen.GetFingerprint(m) for m in mols if m is not None]


def edit_products(mols: list[Chem.Mol], method: str, wanted: int, rng: np.random.Generator) -> Iterator[Chem.Mol | None]:
    """Up to ``wanted`` single-step edits: a random training molecule, a random edit of the
    family, a random site among those the edit matches (``None`` where the product failed)."""
    rxns = reactions(method)
    attempts = 0
    made = 0
    while made < wanted and attempts < wanted * 10:
        attempts += 1
        mol = mols[int(rng.integers(len(mols)))]
        rxn = rxns[int(rng.integers(len(rxns)))]
        products = rxn.RunReactants((mol,), maxProducts=50)
        if not products:
            continue
        made += 1
        yield Chem.Mol(products[int(rng.integers(len(products)))][0])


def brics_products(mols: list[Chem.Mol], wanted: int, rng: np.random.Generator) -> Iterator[Chem.Mol | None]:
    """Up to ``wanted`` recombinations, each one BRICS fragment swap between two training
    molecules: a random BRICS bond of molecule A is cut, one side is kept, and the other side is
    replaced by a side of molecule B cut at a bond of the same BRICS type (so the new bond is
    one BRICS allows). One step away from A, whose series it extends with B's chemistry; a
    whole ``BRICSBuild`` enumeration cost about 40 s for 250 products here, this a fraction of one."""
    pieces = [_pieces(m) for m in mols]
    by_label: dict[int, list[tuple[int, Chem.Mol]]] = {}
    for i, own in enumerate(pieces):
        for label, piece in own:
            by_label.setdefault(label, []).append((i, piece))
    cuttable = [i for i, own in enumerate(pieces) if own]
    made, attempts = 0, 0
    while cuttable and made < wanted and attempts < wanted * 4:
        attempts += 1
        a = cuttable[int(rng.integers(len(cuttable)))]
        kept_label, kept = pieces[a][int(rng.integers(len(pieces[a])))]
        partner_label = _partner_label(pieces[a], kept)
        options = [(i, p) for i, p in by_label.get(partner_label, []) if i != a]
        if not options:
            continue
        donor = options[int(rng.integers(len(options)))][1]
        made += 1
        try:
            yield Chem.molzip(kept, donor)
        except Exception:  # RDKit on an exotic join: an invalid product, counted as such
            yield None


def _pieces(mol: Chem.Mol) -> list[tuple[int, Chem.Mol]]:
    """Both sides of every BRICS bond of ``mol``, cut alone: (label of the side's own dummy
    atom, the side with that dummy mapped 1 for ``molzip``). Sides of one bond are adjacent."""
    out: list[tuple[int, Chem.Mol]] = []
    try:
        bonds = list(BRICS.FindBRICSBonds(mol))
    except Exception:
        return out
    for bond in bonds:
        try:
            sides = Chem.GetMolFrags(BRICS.BreakBRICSBonds(mol, bonds=[bond]), asMols=True)
        except Exception:
            continue
        dummies = [[atom for atom in side.GetAtoms() if atom.GetAtomicNum() == 0] for side in sides]
        if len(sides) != 2 or any(len(d) != 1 for d in dummies):
            continue  # not two sides with one cut each
        for side, (dummy,) in zip(sides, dummies, strict=True):
            dummy.SetAtomMapNum(1)
            out.append((dummy.GetIsotope(), side))
    return out


def _partner_label(own: list[tuple[int, Chem.Mol]], kept: Chem.Mol) -> int:
    """The label of the side cut away from ``kept`` (its neighbour in :func:`_pieces`)."""
    i = next(j for j, (_label, side) in enumerate(own) if side is kept)
    return own[i + 1 if i % 2 == 0 else i - 1][0]


def analogue_transfer_points(bundle: Any, settings: Any, seed: int) -> pd.DataFrame | None:
    """The transfer hook's part: analogues of the training split for the teacher to label, the
    composition kept in the bundle's details (logged with the run)."""
    from stillroom.contract import console

    from .loaders import SMILES

    request = AnalogueRequest(
        max_count=settings.max_count,
        methods=tuple(settings.methods),
        similarity_min=settings.similarity_min,
        similarity_max=settings.similarity_max,
    )
    known = set(bundle.train[SMILES]) | set(bundle.validation[SMILES]) | set(bundle.test[SMILES])
    pool = set(bundle.unlabelled[SMILES]) if bundle.unlabelled is not None else set()
    made = generate(list(bundle.train[SMILES]), known, pool, request, np.random.default_rng([seed, 24]))
    report = made.report(request)
    bundle.details["analogues"] = report
    console.log(
        f"analogues: {report['accepted']:,} accepted ("
        + ", ".join(f"{m} {n:,}" for m, n in report["accepted_by_method"].items())
        + "); rejected "
        + ", ".join(f"{r} {n:,}" for r, n in report["rejected_by_reason"].items() if n)
    )
    return made.frame() if made.smiles else None
