"""The named components a vertical registers through the registration hooks.

Verticals yield these frozen dataclasses (the conda pattern); the plugin manager's registry
indexes them by kind and name and refuses a second entry of the same kind and name, so that two
installed plugins can never silently shadow each other. ``plugin`` is stamped by the registry.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pandas as pd

from ..tasks.kinds import DEFAULT_TASK_TYPE

if TYPE_CHECKING:
    from .bundle import DataBundle
    from .config import DistillConfig
    from .context import EvaluationContext, EvaluationResult
    from .protocols import Student, Teacher


@dataclass(frozen=True)
class TaskSpec:
    """A distillation task a vertical offers (``stillroom distill NAME``).

    ``config_model`` validates the run config; ``default_config`` is the YAML file shipped
    with the vertical; ``compliance_profile`` names what every run must log.
    """

    name: str
    description: str
    config_model: type[DistillConfig]
    default_config: Path
    compliance_profile: str
    task_type: str = DEFAULT_TASK_TYPE
    card: dict[str, str] = field(default_factory=dict)
    plugin: str = ""


@dataclass(frozen=True)
class DatasetSpec:
    """A named data source: ``load(data_config, seed)`` returns a :class:`DataBundle`."""

    name: str
    task: str
    load: Callable[[Any, int], DataBundle]
    description: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class TeacherSpec:
    """A named teacher factory: ``build(params, bundle, seed)`` trains or loads a teacher."""

    name: str
    task: str
    build: Callable[[dict[str, Any], DataBundle, int], Teacher]
    description: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class StudentSpec:
    """A named student factory: ``build(params, seed)`` returns an untrained student."""

    name: str
    task: str
    build: Callable[[dict[str, Any], int], Student]
    description: str = ""
    plugin: str = ""


@dataclass(frozen=True)
class EvaluatorSpec:
    """A named evaluator: adds metrics and artifacts for a task (``"*"`` for every task).

    ``reports`` (optional) says, before any work, which metrics it will report on a run's data, so
    that a gate rule no evaluator can satisfy is refused before the teacher trains: given the
    loaded :class:`DataBundle` and the config, glob patterns of metric names (``student.worst_*``)
    mapped to ``None`` when reported on this data, or to why not and what would make it so
    (``"needs subgroup metadata: ..."``). Without it, rules on names no other evaluator claims
    are let through to the gate."""

    name: str
    task: str
    evaluate: Callable[[EvaluationContext], EvaluationResult]
    description: str = ""
    plugin: str = ""
    reports: Callable[[DataBundle, Any], Mapping[str, str | None]] | None = None


@dataclass(frozen=True)
class ComplianceProfile:
    """What a run of a task must log for its reviewers.

    Metric names are MLflow metric keys (``student.average_precision``); artifacts are
    paths inside the run's artifact root; params and tags are keys.
    """

    name: str
    metrics: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    artifacts: tuple[str, ...] = ()
    description: str = ""
    plugin: str = ""

    def merged(self, other: ComplianceProfile) -> ComplianceProfile:
        """This profile plus another's requirements (the core's generic profile + a vertical's)."""
        return ComplianceProfile(
            name=self.name,
            metrics=tuple(dict.fromkeys(self.metrics + other.metrics)),
            params=tuple(dict.fromkeys(self.params + other.params)),
            tags=tuple(dict.fromkeys(self.tags + other.tags)),
            artifacts=tuple(dict.fromkeys(self.artifacts + other.artifacts)),
            description=self.description or other.description,
            plugin=self.plugin,
        )


@dataclass(frozen=True)
class InputColumn:
    """One input of a model's signature: a column (``dtype`` an MLflow column type such as
    ``double`` or ``string``) or, with ``shape``, a tensor (``dtype`` a numpy dtype name, ``shape``
    the shape of one row's array, e.g. ``(1, 28, 28)`` for a grey 28 x 28 image)."""

    name: str
    dtype: str
    shape: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ModelInputs:
    """What a reader knows of the model it reads for: its signature's inputs and the
    ``model_config`` its vertical logged with it (an image size, the preprocessing of the
    training images ...)."""

    columns: tuple[InputColumn, ...]
    config: Mapping[str, Any] = field(default_factory=dict)


FormatReader = Callable[[Path, ModelInputs, int], Iterator[pd.DataFrame]]
"""``read(path, model, chunk_rows)``: the file (or folder) as frames of at most ``chunk_rows``
rows holding the model's input columns (a tensor input as one array per cell) and the columns
that identify a row (a molecule's name, an image's id or path), which the output carries."""


class OutputWriter(Protocol):
    """An output file a vertical's format writes, chunk by chunk, at the path the core gives it
    (the output slot's partial file: the core fsyncs and publishes it when the job succeeded)."""

    def write(self, scores: pd.DataFrame, inputs: pd.DataFrame) -> None:
        """One chunk: the output columns (identifiers, passthrough, scores, annotations) and the
        model's inputs of the same rows (a molecule's SMILES, for a structure file)."""

    def close(self) -> None:
        """Finish the file (a footer, flushing); called once, also after a failure."""


@dataclass(frozen=True)
class OutputFormat:
    """A kind of output file a vertical writes for batch scoring (SDF ...), chosen by the output
    path's suffix. The core writes CSV and Parquet; ``open(path)`` returns the
    :class:`OutputWriter` of a path with one of ``suffixes``."""

    name: str
    suffixes: tuple[str, ...]
    open: Callable[[Path], OutputWriter]
    description: str = ""
    plugin: str = ""

    def claims(self, path: Path) -> bool:
        return path.name.lower().endswith(tuple(s.lower() for s in self.suffixes))


@dataclass(frozen=True)
class InputFormat:
    """A kind of input a vertical reads for batch scoring (``.smi``, SDF, DICOM, image folders).

    The core reads CSV and Parquet itself; a path whose name ends with one of ``suffixes`` (or
    for which ``matches(path)`` is true: a folder, a file recognised by its content) is read
    with ``read``. The core checks the frames it yields against the model signature like any
    other input, so a reader only turns its format into rows. ``identifiers`` names the columns
    every output carries (``None``: every column that is not a model input); a reader's other
    columns may be passed through with ``--passthrough``.

    A format with neither suffixes nor ``matches`` is read only when named: a run whose model
    needs records turned into features by the vertical (raw transactions) records the format's
    name and settings on the run (:data:`~stillroom.contract.names.INPUT_FORMAT_TAG`), and
    ``stillroom score --raw`` reads the input with it, the settings as the model's config.
    """

    name: str
    suffixes: tuple[str, ...]
    read: FormatReader
    description: str = ""
    matches: Callable[[Path], bool] | None = None
    identifiers: tuple[str, ...] | None = None
    plugin: str = ""

    def claims(self, path: Path) -> bool:
        """Whether this format reads ``path``: by its (lower-case) suffix, else by ``matches``."""
        if path.name.lower().endswith(tuple(s.lower() for s in self.suffixes)):
            return True
        return bool(self.matches and self.matches(path))
