"""Run configuration: YAML + ``--set key=value`` overrides, validated with pydantic.

Every vertical ships a default YAML and a config model that extends :class:`DistillConfig`
(it narrows ``data`` and may add sections). Resolution order: the vertical's default, then
the user's file (deep-merged), then ``--set`` overrides. Validation happens before anything
starts, and a bad config is one :class:`ConfigError` naming the field.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..errors import ConfigError, first_line
from .rules import parse_rule


class StrictModel(BaseModel):
    """Unknown fields are errors: a typo in a config must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


class RunSettings(StrictModel):
    """Where and how the run is recorded."""

    experiment: str = "stillroom"
    seed: int = 0
    tracking_uri: str | None = Field(None, description="defaults to MLFLOW_TRACKING_URI, then MLflow's default")
    registered_model: str = Field(..., min_length=1)
    register_student: bool = Field(True, description="register the student as a new model version")
    cache_dir: str | None = Field(
        None, description="teacher outputs and trained teachers; default STILLROOM_CACHE_DIR or ~/.cache/stillroom"
    )


Severity = Literal["error", "warn", "off"]
"""What a data guard that fires does: stop the run before the teacher, warn and record, or nothing."""


class GuardsConfig(StrictModel):
    """The data guards run at load, before the teacher (:mod:`stillroom.distillation.guards`).

    Each guard is an error (the run stops before any training, naming the column and how to
    fix it), a warning (printed, recorded in ``data_quality.json``, the model card and the
    report) or off. The findings are recorded whatever their severity.
    """

    single_feature: Severity = Field(
        "error", description="one input alone separates the training labels (a leak or a label-derived column)"
    )
    single_feature_auc: float = Field(
        0.99, gt=0.5, le=1, description="univariate ROC-AUC (|Spearman| for values) from which one input is a leak"
    )
    id_like: Severity = Field("warn", description="an input holding unique or strictly monotonic integers, or named like an id")
    labels: Severity = Field(
        "error", description="a class in the training labels that neither validation nor test holds (a stray label)"
    )
    conflicting_duplicates: Severity = Field(
        "warn", description="the same inputs with different labels (merged by the loader where it knows how)"
    )
    few_test_events: Severity = Field(
        "warn", description="fewer than evaluation.min_events positives (or rows) in the test split"
    )
    accept: list[str] = Field(
        default_factory=list, description="input columns reviewed and kept on purpose: their findings are recorded, never errors"
    )


class DataSettings(StrictModel):
    """The data section every config has: a registered dataset name and the data guards.
    Verticals narrow it (paths, columns, splits) with their own model, which extends this one."""

    dataset: str
    guards: GuardsConfig = Field(default_factory=GuardsConfig)


class TeacherConfig(StrictModel):
    """Either a registered teacher ``name`` (trained by the plugin) or a ``uri`` to load."""

    name: str | None = None
    uri: str | None = Field(None, description="models:/name@alias, runs:/id/path, or an estimator file")
    params: dict[str, Any] = Field(default_factory=dict)
    spark_master: str | None = Field(
        None, description="label the transfer, validation and test rows through Spark on this master (local[*], spark://...)"
    )

    @model_validator(mode="after")
    def _one_source(self) -> TeacherConfig:
        if bool(self.name) == bool(self.uri):
            raise ValueError("set exactly one of teacher.name and teacher.uri")
        if self.spark_master and not (self.uri and ":/" in self.uri):
            raise ValueError("teacher.spark_master needs an MLflow teacher.uri (Spark loads the teacher from MLflow)")
        return self


class StudentConfig(StrictModel):
    name: str
    params: dict[str, Any] = Field(default_factory=dict)


class RecipeConfig(StrictModel):
    """Response-based distillation (Hinton et al.): temperature-softened teacher outputs blended
    with hard labels; the temperature shapes training only, the student predicts at T = 1."""

    temperature: float = Field(1.0, gt=0)
    alpha: float = Field(0.7, ge=0, le=1, description="weight of the teacher's soft targets")


class MungeConfig(StrictModel):
    enabled: bool = False
    multiplier: float = Field(1.0, gt=0, description="synthetic points per labelled training row")
    p: float = Field(0.5, gt=0, le=1)
    s: float = Field(10.0, gt=0)
    max_seed_rows: int | None = Field(20_000, gt=1, description="cap on seed rows (nearest-neighbour search cost)")


class TransferConfig(StrictModel):
    """What the teacher labels for the student: labelled data, unlabelled pool, synthetic points."""

    unlabelled_pool: bool = True
    munge: MungeConfig = Field(default_factory=MungeConfig)
    max_points: int | None = Field(None, gt=0, description="cap on the transfer set (random subsample)")


class OperatingPoint(StrictModel):
    """How the operating threshold is chosen on validation (then fixed for test)."""

    kind: Literal["alert_rate", "fpr", "threshold"] = "alert_rate"
    value: float = Field(0.01, gt=0, lt=1)


class EvaluationConfig(StrictModel):
    # resamples: the percentile bounds a gate reads need ~1000 (at 200 they move by ~10% of the half-width)
    bootstrap: int = Field(1000, ge=0)
    ci_level: float = Field(0.95, gt=0, lt=1)
    operating_point: OperatingPoint = Field(default_factory=OperatingPoint)
    efficiency_rows: int = Field(50_000, gt=0)  # the scoring batch every model is timed at
    latency_repeats: int = Field(200, gt=0)  # single-row calls per model, spread over the rounds
    efficiency_rounds: int = Field(5, ge=3)  # interleaved rounds (a ratio of medians needs several)
    efficiency_max_seconds: float = Field(120.0, gt=0)  # no more rounds after this, but never fewer than 3
    efficiency_cores: int | Literal["all"] = Field(
        1,
        description="cores every model is timed on: 1 (default: the process pinned to one CPU, every thread pool "
        "capped to one thread, so models that parallelise differently compare per core) or 'all' (each model's "
        "own threads on every CPU: ratios then move with the machine's load)",
    )
    min_events: int = Field(
        30, ge=1, description="fewer events (positives, alerts at the operating point) than this: a metric is not estimable"
    )

    @field_validator("efficiency_cores", mode="before")
    @classmethod
    def _cores(cls, cores: Any) -> Any:
        """A whole number of cores >= 1 or ``all``; ``true`` or ``1.5`` is a typo, not a core count."""
        if cores == "all" or (isinstance(cores, int) and not isinstance(cores, bool) and cores >= 1):
            return cores
        raise ValueError(f"a whole number of cores >= 1 (1: timed per core, the default) or 'all', got {cores!r}")


class GateConfig(StrictModel):
    """Rules (grammar in :mod:`stillroom.contract.rules`), e.g. ``retention.roc_auc >= 0.95`` or
    ``noninferior(roc_auc)``; every rule must hold for the gate to pass."""

    rules: list[str] = Field(default_factory=list)
    non_inferiority_margin: float | dict[str, float] = Field(
        0.01,
        description="loss tolerated against the no-teacher baseline by noninferior(metric) without a margin: one "
        "number, or one per metric (rmse: 0.05, roc_auc: 0.01; 'default' for the others, else 0.01)",
    )

    @field_validator("non_inferiority_margin")
    @classmethod
    def _margins(cls, margin: float | dict[str, float]) -> float | dict[str, float]:
        values = margin.values() if isinstance(margin, dict) else [margin]
        if any(v < 0 for v in values):
            raise ValueError("a non-inferiority margin is a tolerated loss, so it cannot be negative")
        return margin

    def margin_for(self, metric: str) -> float:
        """The margin of ``noninferior(metric)`` (``rmse.logS`` takes ``rmse``'s)."""
        margin = self.non_inferiority_margin
        if not isinstance(margin, dict):
            return margin
        return margin.get(metric, margin.get(metric.split(".", 1)[0], margin.get("default", 0.01)))

    @field_validator("rules")
    @classmethod
    def _parse(cls, rules: list[str]) -> list[str]:
        return check_rules(rules)


def check_rules(rules: list[str]) -> list[str]:
    """Gate rules and search constraints, in the grammar of :mod:`stillroom.contract.rules`."""
    for rule in rules:
        parse_rule(rule)
    return rules


SEARCHABLE_SECTIONS = ("student.", "recipe.", "transfer.")
"""What a search may vary: the student and how it learns, never the data, the teacher or the run.
A vertical may also open fields of its own section that shape the student's transfer set (the
molecules analogues) by putting them in its default space (``stillroom_search_space``)."""


class SearchDimension(StrictModel):
    """One searched config field: a range (``low``..``high``, integers with ``integer``, ``log``
    scale, ``step``) or a list of ``choices`` (any YAML value: a number, a mapping of loss
    families, a list of widths); ``when`` names fields that must hold given values for this one
    to be searched (a conditional dimension: the MLP's width only when the student is the MLP)."""

    low: float | None = None
    high: float | None = None
    integer: bool = False
    log: bool = False
    step: float | None = Field(None, gt=0)
    choices: list[Any] | None = Field(None, min_length=1)
    when: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _range_or_choices(self) -> SearchDimension:
        ranged = self.low is not None or self.high is not None
        if ranged == (self.choices is not None):
            raise ValueError("give either low and high (a range) or choices, not both and not neither")
        if ranged:
            if self.low is None or self.high is None or not self.low < self.high:
                raise ValueError(f"a range needs low < high (got low={self.low}, high={self.high})")
            if self.log and self.low <= 0:
                raise ValueError("a log-scale range needs low > 0")
            if self.log and self.step is not None:
                raise ValueError("a range is either on a log scale or stepped, not both")
        return self


def _efficiency_objectives() -> dict[str, Literal["max", "min"]]:
    """Without a vertical's own: fast and small (each vertical's default YAML adds its quality)."""
    return {"efficiency.speedup_rows_per_second": "max", "efficiency.size_ratio": "min"}


class AnchorSettings(StrictModel):
    """The default student (trial 0) as the anchor of a search's choice: another trial replaces
    it only when validation shows it no worse. Why: the front ranks point estimates, and on a
    few hundred validation rows a smaller student 0.2 points lower there was 1.3 points lower on
    test (paired interval wholly below 0): the search shipped a student worse than the one
    ``stillroom distill`` gives by default. With the anchor the search moves away from the default
    only on evidence, the evidence the gate's non-inferiority rule asks for; on a validation set
    where the default is already within the margin of the metric's best value, only on evidence
    that the trial is better."""

    enabled: bool = Field(True, description="false: the plain choice among the front (no comparison with the default)")
    margin: float | None = Field(
        None,
        ge=0,
        description=(
            "a trial is non-inferior to the default when the worse bound of the paired 95% interval of "
            "(trial - default) on validation, in the first choose key's metric, loses no more than this "
            "(the metric's units); null: the gate's non_inferiority_margin for that metric"
        ),
    )
    slack: dict[str, float] = Field(
        default_factory=dict,
        description=(
            "per other objective: how much worse than the default, as a fraction of its value, still counts as "
            "no worse (timings are noisy); absent: not worse at all"
        ),
    )

    @field_validator("slack")
    @classmethod
    def _fractions(cls, slack: dict[str, float]) -> dict[str, float]:
        bad = [k for k, v in slack.items() if not 0 <= v < 1]
        if bad:
            raise ValueError(f"search.anchor.slack[{bad[0]!r}] must be a fraction in [0, 1)")
        return slack


class SearchSettings(StrictModel):
    """``stillroom search``: what is varied (``space``, over the vertical's default space), what is
    optimised on validation (``objectives``: metric -> max|min), what must hold (``constraints``,
    gate-rule grammar; the gate's own rules too with ``gate_as_constraints``), how the one student
    is chosen among the feasible Pareto front (``choose``: objectives in order of priority,
    the next breaking ties), and the budget (``budget``: 30m, 2h, 90s; ``n_trials``; ``jobs``)."""

    space: dict[str, SearchDimension | None] = Field(
        default_factory=dict, description="merged over the vertical's default space; a field set to null is not searched"
    )
    replace_space: bool = Field(False, description="true: search only the fields given here, not the vertical's default")
    objectives: dict[str, Literal["max", "min"]] = Field(default_factory=_efficiency_objectives)
    constraints: list[str] = Field(default_factory=list)
    gate_as_constraints: bool = Field(True, description="the gate's rules, measured on validation, are constraints too")
    choose: list[str] = Field(default_factory=list, description="tie-break order among the front; default: objectives in order")
    choose_tolerance: dict[str, float] = Field(
        default_factory=dict, description="per choose key: trials within this of the best count as tied (the metric's units)"
    )
    anchor: AnchorSettings = Field(default_factory=AnchorSettings)
    budget: str | None = Field(None, description="wall time for trials: 30m, 2h, 90s (default: n_trials alone)")
    n_trials: int | None = Field(None, gt=0)
    jobs: int | None = Field(None, gt=0, description="trials at once (default: the usable cores)")
    sampler: Literal["tpe", "nsga2"] = "tpe"
    storage: str | None = Field(None, description="Optuna RDB URL of the study (default: SQLite beside the tracking store)")

    @field_validator("space")
    @classmethod
    def _searchable(cls, space: dict[str, SearchDimension | None]) -> dict[str, SearchDimension | None]:
        for key in space:  # a vertical's own fields are checked against its space when the search starts
            if in_core_section(key) and not key.startswith(SEARCHABLE_SECTIONS):
                raise ValueError(f"search.space field {key!r} is not searchable (only {', '.join(SEARCHABLE_SECTIONS)}*)")
        return space

    @field_validator("constraints")
    @classmethod
    def _rules(cls, rules: list[str]) -> list[str]:
        return check_rules(rules)

    @field_validator("budget")
    @classmethod
    def _budget(cls, budget: str | None) -> str | None:
        if budget is not None:
            parse_duration(budget)
        return budget

    @model_validator(mode="after")
    def _choose_objectives(self) -> SearchSettings:
        if not self.objectives:
            raise ValueError("search.objectives needs at least one metric")
        unknown = [m for m in self.choose if m not in self.objectives]
        if unknown:
            raise ValueError(f"search.choose names {unknown[0]!r}, which is not one of search.objectives")
        loose = [m for m in self.choose_tolerance if m not in (self.choose or list(self.objectives))]
        if loose:
            raise ValueError(f"search.choose_tolerance names {loose[0]!r}, which is not one of search.choose")
        if any(v < 0 for v in self.choose_tolerance.values()):
            raise ValueError("search.choose_tolerance values must be >= 0")
        stray = [m for m in self.anchor.slack if m not in self.objectives]
        if stray:
            raise ValueError(f"search.anchor.slack names {stray[0]!r}, which is not one of search.objectives")
        return self


_DURATION = re.compile(r"^\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?\s*(?:(\d+(?:\.\d+)?)s?)?\s*$")


def parse_duration(text: str) -> float:
    """``30m``, ``1h30m``, ``90s``, ``90`` -> seconds; a ValueError naming the text otherwise."""
    match = _DURATION.match(str(text))
    if not match or not any(match.groups()):
        raise ValueError(f"budget {text!r} is not a duration like 30m, 1h30m or 90s")
    hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
    total = hours * 3600 + minutes * 60 + seconds
    if total <= 0:
        raise ValueError(f"budget {text!r} is not positive")
    return total


class DistillConfig(StrictModel):
    """The sections every vertical's config has. Verticals narrow ``data`` and add sections."""

    task: str
    run: RunSettings
    data: DataSettings
    teacher: TeacherConfig
    student: StudentConfig
    recipe: RecipeConfig = Field(default_factory=RecipeConfig)
    transfer: TransferConfig = Field(default_factory=TransferConfig)
    evaluation: EvaluationConfig = Field(default_factory=EvaluationConfig)
    gate: GateConfig = Field(default_factory=GateConfig)
    search: SearchSettings = Field(default_factory=SearchSettings)


def in_core_section(key: str) -> bool:
    """``data.path`` is, ``molecules.analogues.max_count`` is not (a vertical's own section)."""
    return key.split(".", 1)[0] in DistillConfig.model_fields


def read_yaml(path: str | Path) -> dict[str, Any]:
    """A YAML mapping from a file, or a ConfigError saying why not."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {p} does not exist")
    try:
        loaded = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {p} is not valid YAML: {first_line(exc)}") from None
    if loaded is None:
        return {}
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {p} must hold a mapping of sections, not {type(loaded).__name__}")
    return loaded


def deep_merge(base: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """``update`` merged into a copy of ``base``; nested mappings merge, everything else replaces."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides; values are parsed as YAML (numbers, lists, booleans)."""
    out = copy.deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} is not of the form key=value")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(f"override {item!r}: {part!r} is not a section")
            node = child
        node[parts[-1]] = value
    return out


def validate(model: type[DistillConfig], raw: dict[str, Any]) -> DistillConfig:
    """Validate a raw mapping; the first error becomes one message naming the field."""
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(_describe(exc)) from None


def resolve(
    model: type[DistillConfig],
    default: Path,
    user: str | Path | dict[str, Any] | None = None,
    overrides: list[str] | None = None,
) -> DistillConfig:
    """Default YAML <- user YAML/dict <- overrides, validated."""
    raw = read_yaml(default)
    if isinstance(user, dict):
        raw = deep_merge(raw, user)
    elif user is not None:
        raw = deep_merge(raw, read_yaml(user))
    raw = apply_overrides(raw, overrides or [])
    return validate(model, raw)


def dump(config: BaseModel) -> str:
    """The resolved config as YAML (what ``--print-config`` shows and the run logs)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)


def flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> ``a.b.c`` keys (for MLflow params)."""
    if isinstance(data, BaseModel):
        data = data.model_dump(mode="json")
    out: dict[str, Any] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(flatten(value, f"{prefix}{key}."))
        return out
    out[prefix.rstrip(".")] = data
    return out


def _describe(exc: ValidationError) -> str:
    errors = exc.errors()
    first = errors[0]
    where = ".".join(str(p) for p in first["loc"]) or "config"
    kind = first["type"]
    if kind == "extra_forbidden":
        msg = f"unknown config field {where!r}"
    elif kind == "missing":
        msg = f"missing config field {where!r}"
    else:
        msg = f"invalid config field {where!r}: {first['msg']}"
    more = f" (and {len(errors) - 1} more problem(s))" if len(errors) > 1 else ""
    return msg + more
