"""The evaluation spec: one YAML file per model, validated with pydantic.

Every validation error is reported as ``<key path>: <what was expected>``; unknown keys get a
"did you mean" suggestion. ``${VAR}`` in the warehouse URL is expanded from the environment at
load time, and the unexpanded text is what gets hashed and recorded, so a password kept in an
environment variable never reaches an artifact.
"""

import difflib
import hashlib
import json
import os
import re
import types
import typing
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from eval_pipelines.errors import SpecError
from eval_pipelines.estimation import (
    ESTIMABLE,
    estimated_names,
    gate_problem,
    is_estimated,
    spec_problem,
)
from eval_pipelines.tasks import DEFAULT_TASK, TASKS, known_metric, task_named
from eval_pipelines.tasks.ranking import MAX_CUTOFF

IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^\s*(\d+)\s*([dhm])\s*$")
# What pydantic writes for a timedelta in JSON (run.json): P[nD][T[nH][nM][nS]].
_ISO_DURATION = re.compile(r"^P(?=\d|T\d)(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
OVERALL = "overall"


def _identifier(value: str) -> str:
    if not IDENTIFIER.match(value):
        raise ValueError(
            f"{value!r} is not a plain column or table name (letters, digits and _ only)"
        )
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
_OWNER = re.compile(r"^(team:[A-Za-z0-9_\-]+|[^@\s]+@[^@\s]+\.[^@\s]+)$")


def _owner(value: str) -> str:
    if not _OWNER.match(value):
        raise ValueError(f"{value!r} is neither an e-mail address nor 'team:<name>'")
    return value


def _task_metrics(data: dict[str, Any]) -> list[str]:
    """The default metrics of the spec's task: the task's own default list when it has one
    (ranking: from ``ranking.k``), else every entry of its registry whose required
    ``predictions`` key is given; none when the task is invalid (reported apart)."""
    task, predictions = data.get("task"), data.get("predictions")
    given = predictions if isinstance(predictions, dict) else {}
    try:
        found = task_named(DEFAULT_TASK if task is None else str(task))
    except ValueError:
        return []
    if found.default_metrics is not None:
        return found.default_metrics(data)
    return [
        name for name, m in found.metrics.items() if m.requires is None or given.get(m.requires)
    ]


def _class_names(value: Any) -> Any:
    """Class values as text (a YAML ``0`` and a column's ``'0'`` are the same class)."""
    if isinstance(value, dict):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, list):
        return [str(v) if isinstance(v, (int, str)) else v for v in value]
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(_Strict):
    """Where rows come from: a table (optionally schema-qualified) or a SQL file."""

    table: str | None = None
    query: str | None = None

    @field_validator("table")
    @classmethod
    def _check_table(cls, value: str | None) -> str | None:
        if value is not None:
            for part in value.split("."):
                _identifier(part)
        return value

    @model_validator(mode="after")
    def _one_source(self) -> "Source":
        if (self.table is None) == (self.query is None):
            raise ValueError("give exactly one of 'table' or 'query'")
        return self


class IntervalSpec(_Strict):
    """A regression model's logged prediction interval: its lower and upper bound columns."""

    lower: Identifier
    upper: Identifier


class PredictionsSpec(Source):
    id: Identifier = "prediction_id"
    timestamp: Identifier = "ts"
    model_version: Identifier = "model_version"
    # binary_classification: the positive class's probability.
    score: Identifier = "score"
    # regression: the predicted number (required), and optionally its logged interval.
    prediction: Identifier | None = None
    interval: IntervalSpec | None = None
    # ranking: the column of the list (query, page view) each (list, item) row belongs to.
    list_id: Identifier | None = None
    # multiclass_classification: class -> the column of its probability, one per class.
    class_scores: dict[str, Identifier] | None = None

    @field_validator("class_scores", mode="before")
    @classmethod
    def _class_keys(cls, value: Any) -> Any:
        return _class_names(value)


class RankingSpec(_Strict):
    """A ranking model's cutoffs: ``ndcg@k``, ``map@k``, ``recall@k``, ``hit_rate@k`` at each."""

    k: list[int] = Field(default_factory=lambda: [10], min_length=1)

    @field_validator("k")
    @classmethod
    def _cutoffs(cls, value: list[int]) -> list[int]:
        if any(k < 1 or k > MAX_CUTOFF for k in value) or len(set(value)) != len(value):
            raise ValueError(f"expected distinct cutoffs between 1 and {MAX_CUTOFF}")
        return value


class LabelsSpec(Source):
    id: Identifier = "prediction_id"
    label: Identifier = "label"
    timestamp: Identifier = "labeled_at"
    max_delay: timedelta = timedelta(days=14)

    @field_validator("max_delay", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _DURATION.match(value)
            if not match and _ISO_DURATION.match(value):
                # ISO 8601 (P14D, PT36H): how run.json records a spec, so a recorded spec
                # loads again; pydantic parses it.
                return value
            if not match:
                raise ValueError(f"expected a duration such as 14d, 36h or 90m, got {value!r}")
            amount, unit = int(match.group(1)), match.group(2)
            unit_name = {"d": "days", "h": "hours", "m": "minutes"}[unit]
            return timedelta(**{unit_name: amount})
        return value


class ConfidenceSpec(_Strict):
    level: float = Field(0.95, gt=0.5, lt=1.0)
    replicates: int = Field(200, ge=20, le=20_000)
    seed: int = Field(7, ge=0, le=2**31 - 1)
    buckets: int = Field(64, ge=8, le=1024)
    # Bins of the cell bootstrap of ROC AUC / PR AUC / ECE (fine bins merged to this many).
    score_bins: int = Field(50, ge=10, le=10_000)
    # Bins per model of the joint (baseline x candidate) cells of the paired cell bootstrap.
    paired_bins: int = Field(10, ge=2, le=200)
    alpha: float = Field(0.05, gt=0.0, lt=0.5)


class CompareSpec(_Strict):
    baseline: str
    candidate: str

    @model_validator(mode="after")
    def _different(self) -> "CompareSpec":
        if self.baseline == self.candidate:
            raise ValueError("baseline and candidate must be different model versions")
        return self


DriftMethodName = Literal["psi", "ks", "wasserstein", "jensen_shannon", "chi_square", "z_test"]


class DriftSpec(_Strict):
    reference_weeks: int = Field(4, ge=1, le=52)
    features: list[Identifier] = Field(default_factory=list)
    categorical: list[Identifier] = Field(default_factory=list)
    # Prediction drift: the model's output column (``score``, ``prediction``) for every task.
    include_score: bool = True
    # Label drift: the label's distribution over the labeled rows of both periods.
    include_label: bool = True
    # Which version's rows describe the traffic; default: compare.candidate (or the only one).
    model_version: str | None = None
    bins: int = Field(1000, ge=10, le=10_000)
    methods: list[DriftMethodName] = Field(
        default_factory=lambda: ["psi", "ks", "wasserstein", "jensen_shannon", "chi_square"]
    )
    thresholds: dict[DriftMethodName, float] = Field(default_factory=dict)


class EstimationSpec(_Strict):
    """Label-free performance estimation (CBPE; docs/estimation.md). Omit the section, or
    write ``estimation: null``, to turn it off."""

    # Labeled weeks before the evaluated week that the scores are calibrated on.
    reference_weeks: int = Field(4, ge=1, le=52)
    # Fewer labeled reference rows of a version than this: no estimate (status no_reference).
    min_reference_rows: int = Field(100, ge=1)


TableName = Literal["predictions", "labels", "window"]


class UserExpectation(BaseModel):
    """A Great Expectations 1.x expectation added to the generated suites.

    ``type`` is a GX expectation name (``expect_column_values_to_be_between``); every other
    key except ``table`` and ``blocking`` is passed to the expectation class as a keyword.
    The type and kwargs are checked against GX's registry at spec load
    (:func:`eval_pipelines.expectations.check_user_expectation`).
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    type: str
    table: TableName = "predictions"
    blocking: bool = True

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ValidationSpec(_Strict):
    """Input checks beyond the generated ones (docs/validation.md)."""

    # Row-count bounds per model version from the previous N weeks (0 turns the check off).
    row_count_weeks: int = Field(4, ge=0, le=52)
    # Bounds are [min x (1 - t), max x (1 + t)] over the previous weeks' counts.
    row_count_tolerance: float = Field(0.5, ge=0.0, le=10.0)
    # The newest prediction in the window must be at most this old at the window's end.
    max_staleness: timedelta | None = timedelta(days=1)
    expectations: list[UserExpectation] = Field(default_factory=list)

    @field_validator("max_staleness", mode="before")
    @classmethod
    def _duration(cls, value: Any) -> Any:
        return LabelsSpec._duration(value)


# What a failed gate does: ``block`` holds the release; ``warn`` lets it ship with the gate
# listed as a guardrail (``ship_with_guardrails``, eval_pipelines/gates.py).
GateSeverity = Literal["block", "warn"]


class MetricGate(_Strict):
    """A bound on a metric: absolute (``min``/``max``) or relative to the baseline."""

    metric: str
    slice: str | None = None
    min: float | None = None
    max: float | None = None
    max_regression: float | None = Field(None, ge=0.0)
    severity: GateSeverity = "block"

    @field_validator("metric")
    @classmethod
    def _known_metric(cls, value: str) -> str:
        # Any task's metric; parse_spec then requires it in the spec's own ``metrics``, which
        # holds only metrics of the spec's task.
        known = list(
            dict.fromkeys(
                name for task in TASKS.values() for name in [*task.metrics, *task.patterns]
            )
        )
        known += estimated_names()
        if not known_metric(value) and value not in known:
            close = difflib.get_close_matches(value, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ValueError(f"unknown metric {value!r}{hint}; known: {', '.join(known)}")
        return value

    @model_validator(mode="after")
    def _one_bound(self) -> "MetricGate":
        if self.min is None and self.max is None and self.max_regression is None:
            raise ValueError("a metric gate needs 'min', 'max' or 'max_regression'")
        return self


class DriftGate(_Strict):
    """Hold when a feature drifts (every drift feature and the score, by default).

    Distance methods (psi, wasserstein, jensen_shannon) take ``max``: hold when the statistic
    reaches it (``>=``). Test methods (ks, chi_square, z_test) take ``min_p_value``: hold when
    the p-value is below it (``ks``: at or below it), Evidently's rules (docs/drift.md). The
    bound is the method's threshold for the features the gate covers.
    """

    drift: DriftMethodName
    feature: str | None = None
    max: float | None = Field(None, ge=0.0)
    min_p_value: float | None = Field(None, gt=0.0, lt=1.0)
    severity: GateSeverity = "block"

    @model_validator(mode="after")
    def _bound_fits_method(self) -> "DriftGate":
        tests = {"ks", "chi_square", "z_test"}
        if self.drift in tests and (self.min_p_value is None or self.max is not None):
            raise ValueError(f"drift gate {self.drift!r} is a test: give 'min_p_value', not 'max'")
        if self.drift not in tests and (self.max is None or self.min_p_value is not None):
            raise ValueError(f"drift gate {self.drift!r} is a distance: give 'max'")
        return self


class RegistrySpec(_Strict):
    """How versions in the MLflow Model Registry map to this spec's logs.

    A new READY version of ``model_name`` is evaluated against the version holding
    ``champion_alias``. A registry version appears in the logs' ``model_version`` column as
    the version's ``eval.log_version`` tag when it has one, else as ``log_version`` with
    ``{version}`` replaced by the registry version number (``v{version}``: version 2 is
    ``v2``).
    """

    enabled: bool = True
    model_name: str | None = None
    champion_alias: str = Field("champion", pattern=r"^[A-Za-z0-9_\-]+$")
    log_version: str = "v{version}"

    @field_validator("log_version")
    @classmethod
    def _has_placeholder(cls, value: str) -> str:
        if value.count("{version}") != 1 or re.search(r"\{(?!version\})", value):
            raise ValueError(
                f"{value!r} must contain '{{version}}' exactly once and no other placeholder"
            )
        return value

    def log_version_of(self, version: int, tags: dict[str, str] | None = None) -> str:
        """The ``model_version`` value in the logs of registry version ``version``."""
        tagged = (tags or {}).get(LOG_VERSION_TAG)
        return tagged if tagged else self.log_version.replace("{version}", str(version))


LOG_VERSION_TAG = "eval.log_version"


def _gate_kind(value: Any) -> str:
    if isinstance(value, dict):
        return "drift" if "drift" in value else "metric"
    return "drift" if isinstance(value, DriftGate) else "metric"


class EvalSpec(_Strict):
    """One model's evaluation. Every key is documented in the README's spec reference."""

    model: str
    # The kind of model: selects the statistic families and the metric registry (tasks/).
    task: str = DEFAULT_TASK
    warehouse: str = "duckdb:///data/warehouse.duckdb"
    # The Monday of the model's first week: its Dagster weekly partitions begin there.
    # ``earliest``: the week of the first prediction, read once when the code location loads.
    # Unset: $EVAL_DEFAULT_START_WEEK, else DEFAULT_START_WEEK (assets/partitions.py).
    start_week: date | Literal["earliest"] | None = None
    predictions: PredictionsSpec
    labels: LabelsSpec
    threshold: float = Field(0.5, gt=0.0, lt=1.0)
    # multiclass_classification: the declared classes, in order (default: the keys of
    # predictions.class_scores).
    classes: list[str] | None = None
    slices: list[Identifier | list[Identifier]] = Field(default_factory=list)
    min_slice_size: int = Field(50, ge=1)
    # Distinct values a slice column may have in a window; more fails the run (one group each).
    max_slice_values: int = Field(1000, ge=1, le=1_000_000)
    min_label_coverage: float = Field(0.5, ge=0.0, le=1.0)
    # Default: every metric of the task's registry (filled in by ``_default_metrics``).
    metrics: list[str] = Field(default_factory=list)
    score_bins: int = Field(1000, ge=10, le=100_000)
    calibration_bins: int = Field(10, ge=2, le=100)
    confidence: ConfidenceSpec = ConfidenceSpec()
    compare: CompareSpec | None = None
    # task ranking: the cutoffs k of its metrics (default [10]).
    ranking: RankingSpec | None = None
    drift: DriftSpec | None = None
    estimation: EstimationSpec | None = None
    gates: list[dict[str, Any]] = Field(default_factory=list)
    registry: RegistrySpec = RegistrySpec()
    validation: ValidationSpec = ValidationSpec()
    # Who answers for this model's evaluation: e-mail addresses or "team:<name>" (Dagster owners).
    owners: list[Annotated[str, AfterValidator(_owner)]] = Field(default_factory=list)
    # Columns holding personal data: never a slice, drift feature or version column (their
    # values would become artifact rows and MLflow keys); docs/reliability.md.
    pii: list[Identifier] = Field(default_factory=list)

    # Where the spec file lives: relative query paths and relative DuckDB paths resolve
    # against it.
    base_dir: Path = Field(default=Path("."), exclude=True)
    # The warehouse URL as written, before ${VAR} expansion (what is hashed and recorded).
    warehouse_template: str = Field(default="", exclude=True)

    @field_validator("start_week", mode="before")
    @classmethod
    def _start_date_or_earliest(cls, value: Any) -> Any:
        # One sentence for a bad value, not one per member of the union.
        if isinstance(value, str) and value != "earliest":
            try:
                return date.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(
                    "expected a Monday YYYY-MM-DD or 'earliest' (the week of the first prediction)"
                ) from None
        return value

    @field_validator("start_week")
    @classmethod
    def _start_on_monday(cls, value: date | str | None) -> date | str | None:
        if isinstance(value, date) and value.weekday() != 0:
            monday = value - timedelta(days=value.weekday())
            raise ValueError(
                f"{value.isoformat()} is a {value:%A}; weeks start on Monday "
                f"(did you mean {monday.isoformat()}?)"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _default_metrics(cls, data: Any) -> Any:
        if isinstance(data, dict) and "metrics" not in data:
            return {**data, "metrics": _task_metrics(data)}
        return data

    @field_validator("task")
    @classmethod
    def _implemented_task(cls, value: str) -> str:
        task_named(value)
        return value

    @field_validator("metrics")
    @classmethod
    def _known_metrics(cls, value: list[str], info: ValidationInfo) -> list[str]:
        if "task" in info.data:  # else the task's own error is the one to read
            task = task_named(info.data["task"])
            for name in value:
                task.metric(name)
        if len(set(value)) != len(value):
            raise ValueError("metrics are listed more than once")
        return value

    @field_validator("classes", mode="before")
    @classmethod
    def _class_values(cls, value: Any) -> Any:
        return _class_names(value)

    @field_validator("slices")
    @classmethod
    def _slice_columns(cls, value: list[str | list[str]]) -> list[str | list[str]]:
        for entry in value:
            columns = [entry] if isinstance(entry, str) else entry
            if not columns:
                raise ValueError("a slice cross needs at least one column")
            if len(set(columns)) != len(columns):
                raise ValueError(f"slice cross {columns} repeats a column")
        return value

    @model_validator(mode="after")
    def _task_output(self) -> "EvalSpec":
        task = task_named(self.task)
        output = task.output
        if getattr(self.predictions, output) is None:
            raise ValueError(
                f"predictions.{output}: required for task {self.task!r} (the column holding "
                "the model's output)"
            )
        for key in task.window_columns:
            if getattr(self.predictions, key) is None:
                raise ValueError(f"predictions.{key}: required for task {self.task!r}")
        if self.ranking is not None and self.task != "ranking":
            # A forgotten `task: ranking` would otherwise evaluate a ranker as a classifier.
            raise ValueError(f"ranking: only for task 'ranking', not {self.task!r}")
        for name in self.metrics:
            requires = task.metric(name).requires
            if requires is not None and getattr(self.predictions, requires, None) is None:
                raise ValueError(
                    f"metrics: {name!r} needs predictions.{requires} (the columns it reads)"
                )
        check = task.check_spec
        if check is not None:
            check(self)
        return self

    @property
    def label_drift_feature(self) -> str:
        """The label's name in ``drift.parquet``: its column, or ``labels.<column>`` when a
        drift feature or the output has that name."""
        label = self.labels.label
        taken = {self.output_column, *(self.drift.features if self.drift else [])}
        return f"labels.{label}" if label in taken else label

    @property
    def output_column(self) -> str:
        """The column of the model's output: ``predictions.score`` for a binary classifier,
        ``predictions.prediction`` for a regression model (the task's ``output``)."""
        return getattr(self.predictions, task_named(self.task).output)

    @property
    def output_key(self) -> str:
        """The spec key of :attr:`output_column`, e.g. ``predictions.score``."""
        return f"predictions.{task_named(self.task).output}"

    @model_validator(mode="after")
    def _bins_nest(self) -> "EvalSpec":
        # Calibration bins must be unions of bootstrap bins, which are unions of score bins.
        if self.confidence.score_bins % self.calibration_bins:
            raise ValueError(
                f"confidence.score_bins ({self.confidence.score_bins}) must be a multiple of "
                f"calibration_bins ({self.calibration_bins})"
            )
        if self.confidence.paired_bins % self.calibration_bins:
            raise ValueError(
                f"confidence.paired_bins ({self.confidence.paired_bins}) must be a multiple "
                f"of calibration_bins ({self.calibration_bins})"
            )
        if self.score_bins % self.confidence.score_bins:
            raise ValueError(
                f"score_bins ({self.score_bins}) must be a multiple of confidence.score_bins "
                f"({self.confidence.score_bins})"
            )
        return self

    @model_validator(mode="after")
    def _pii_never_reported(self) -> "EvalSpec":
        # A PII column's values would be written to metrics.parquet, the report and MLflow keys.
        pii = set(self.pii)
        uses = [(f"slices ({c})", c) for c in self.slice_columns]
        if self.drift is not None:
            uses += [(f"drift.features ({c})", c) for c in self.drift.features]
        uses.append(("predictions.model_version", self.predictions.model_version))
        for where, column in uses:
            if column in pii:
                raise ValueError(
                    f"pii: column {column!r} is personal data but used in {where}; its values "
                    "would appear in the artifacts and in MLflow: remove it there, or use a "
                    "non-identifying derived column"
                )
        return self

    # ------------------------------------------------------------------ derived views
    @property
    def slice_crosses(self) -> list[tuple[str, ...]]:
        """Slice definitions as column tuples, ``()`` (overall) first, duplicates removed."""
        crosses: list[tuple[str, ...]] = [()]
        for entry in self.slices:
            cross = (entry,) if isinstance(entry, str) else tuple(entry)
            if cross not in crosses:
                crosses.append(cross)
        return crosses

    @property
    def slice_columns(self) -> list[str]:
        return sorted({column for cross in self.slice_crosses for column in cross})

    @property
    def metric_gates(self) -> list[MetricGate]:
        return [g for g in self.parsed_gates if isinstance(g, MetricGate)]

    @property
    def drift_gates(self) -> list[DriftGate]:
        return [g for g in self.parsed_gates if isinstance(g, DriftGate)]

    @property
    def parsed_gates(self) -> list[MetricGate | DriftGate]:
        return [_parse_gate(raw) for raw in self.gates]

    @property
    def registered_model(self) -> str:
        """The MLflow registered model whose new versions this spec evaluates."""
        return self.registry.model_name or self.model

    def fingerprint(self) -> str:
        """SHA-256 of the canonical spec (warehouse as written, before env expansion)."""
        payload = self.model_dump(mode="json")
        payload["warehouse"] = self.warehouse_template or self.warehouse
        if payload.get("start_week") is None:  # unset: the hash of specs written before it
            payload.pop("start_week", None)
        if payload.get("ranking") is None:  # likewise for the other tasks' specs
            payload.pop("ranking", None)
        if payload["predictions"].get("list_id") is None:
            payload["predictions"].pop("list_id", None)
        text = json.dumps(payload, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def resolve_query(self, source: Source) -> str | None:
        """The SQL text of a ``query:`` source (a path relative to the spec, or inline SQL)."""
        if source.query is None:
            return None
        candidate = (self.base_dir / source.query).resolve()
        if source.query.strip().lower().endswith(".sql"):
            if not candidate.is_file():
                raise SpecError(f"query file {source.query!r} not found (looked at {candidate})")
            return candidate.read_text().strip().rstrip(";")
        return source.query.strip().rstrip(";")


def _parse_gate(raw: dict[str, Any]) -> MetricGate | DriftGate:
    return DriftGate(**raw) if _gate_kind(raw) == "drift" else MetricGate(**raw)


# ---------------------------------------------------------------------- loading


def expand_env(text: str, key: str = "warehouse") -> str:
    """Replace ``${VAR}`` with the environment's value; a missing variable is a SpecError."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise SpecError(f"{key}: environment variable {name} is not set")
        return os.environ[name]

    return _ENV.sub(substitute, text)


_DUCKDB_URL = re.compile(r"^(duckdb(?:\+\w+)?:///)([^?]*)(\?.*)?$", re.DOTALL)


def resolve_duckdb_path(url: str, base_dir: Path) -> str:
    """A ``duckdb:///relative/path`` URL with its path resolved from ``base_dir``.

    Relative DuckDB paths in a spec resolve from the spec's folder, like ``query:`` files, so
    ``eval-pipelines run --spec mymodel/t4.yaml`` works from any directory. Absolute paths
    (``duckdb:////abs/path``), ``:memory:`` and every other dialect are returned unchanged.
    """
    match = _DUCKDB_URL.match(url)
    if match is None:
        return url
    prefix, database, query = match.group(1), match.group(2), match.group(3) or ""
    if not database or database == ":memory:" or Path(database).is_absolute():
        return url
    return f"{prefix}{(Path(base_dir) / database).resolve()}{query}"


def load_spec(path: str | os.PathLike[str]) -> EvalSpec:
    """Read and validate one YAML spec; errors name the file, key path and expectation."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError(f"cannot read spec {path}: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError(f"{path}: invalid YAML{where}: {problem}") from None
    return parse_spec(raw, source=str(path), base_dir=path.parent)


def parse_spec(raw: Any, source: str = "<spec>", base_dir: Path | None = None) -> EvalSpec:
    """Validate an already-parsed YAML document."""
    if not isinstance(raw, dict):
        raise SpecError(f"{source}: expected a mapping of keys at the top level")
    data = dict(raw)
    template = str(data.get("warehouse", EvalSpec.model_fields["warehouse"].default))
    data["warehouse"] = expand_env(template)
    if base_dir is not None:
        data["warehouse"] = resolve_duckdb_path(data["warehouse"], base_dir)
    data["warehouse_template"] = template
    data["base_dir"] = base_dir or Path(".")
    for reserved in ("warehouse_template", "base_dir"):
        if reserved in raw:
            raise SpecError(f"{source}: {reserved}: not a spec key")
    try:
        spec = EvalSpec(**data)
        if spec.estimation is not None and spec.task not in ESTIMABLE:
            raise SpecError(
                f"{source}: invalid spec:\n  estimation: task {spec.task!r} has no label-free "
                f"estimator (estimation supports: {', '.join(ESTIMABLE)})"
            )
        problem = spec.estimation and spec_problem(spec.task, bool(spec.predictions.class_scores))
        if problem:
            raise SpecError(f"{source}: invalid spec:\n  {problem}")
        for index, gate in enumerate(spec.gates):
            try:
                parsed = _parse_gate(gate)
            except ValidationError as exc:
                raise SpecError(
                    _format_errors(exc, source, prefix=("gates", index), root=_gate_model(gate))
                ) from None
            if isinstance(parsed, MetricGate) and is_estimated(parsed.metric):
                problem = gate_problem(
                    spec.task, spec.metrics, spec.estimation is not None, parsed.metric
                )
                if parsed.max_regression is not None:
                    problem = f"{parsed.metric!r}: an estimated metric takes 'min'/'max' only"
                if problem:
                    raise SpecError(f"{source}: invalid spec:\n  gates.{index}.metric: {problem}")
            elif isinstance(parsed, MetricGate) and parsed.metric not in spec.metrics:
                raise SpecError(
                    f"{source}: invalid spec:\n  gates.{index}.metric: {parsed.metric!r} is not "
                    f"in metrics ({', '.join(spec.metrics)}); add it there to gate on it"
                )
            if isinstance(parsed, DriftGate) and spec.drift is None:
                raise SpecError(
                    f"{source}: invalid spec:\n  gates.{index}.drift: a drift gate needs a "
                    "'drift' section"
                )
            problem = _unknown_gate_target(spec, parsed)
            if problem:
                raise SpecError(f"{source}: invalid spec:\n  gates.{index}.{problem}")
        if spec.validation.expectations:
            from eval_pipelines.expectations import check_user_expectation

            for index, expectation in enumerate(spec.validation.expectations):
                problem = check_user_expectation(expectation)
                if problem:
                    raise SpecError(
                        f"{source}: invalid spec:\n  validation.expectations.{index}: {problem}"
                    )
    except ValidationError as exc:
        raise SpecError(_format_errors(exc, source)) from None
    return spec


def _unknown_gate_target(spec: EvalSpec, gate: MetricGate | DriftGate) -> str | None:
    """``key: why`` when a gate names a slice or drift feature the spec never produces."""
    if isinstance(gate, MetricGate) and gate.slice not in (None, OVERALL):
        crosses = [cross for cross in spec.slice_crosses if cross]
        for cross in crosses:
            pattern = ", ".join(f"{re.escape(column)}=.*" for column in cross)
            if re.fullmatch(pattern, gate.slice, flags=re.DOTALL):
                return None
        shapes = ", ".join(repr(", ".join(f"{c}=<value>" for c in cross)) for cross in crosses)
        expected = f"one of: {shapes}" if shapes else "(no 'slices' are configured)"
        return f"slice: {gate.slice!r} is no slice of this spec; expected 'overall' or {expected}"
    if isinstance(gate, DriftGate) and gate.feature is not None and spec.drift is not None:
        known = list(spec.drift.features)
        if spec.drift.include_score:
            known.append(spec.output_column)
        if spec.drift.include_label:
            known.append(spec.label_drift_feature)
        if gate.feature not in known:
            close = difflib.get_close_matches(gate.feature, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return (
                f"feature: {gate.feature!r} is not a drift feature{hint}; drift covers "
                f"{', '.join(known) or 'nothing'}"
            )
    return None


def _gate_model(gate: Any) -> type[BaseModel]:
    return DriftGate if _gate_kind(gate) == "drift" else MetricGate


def _is_union_tag(part: Any) -> bool:
    """pydantic's name of a union member in an error location (``list[...]``)."""
    return isinstance(part, str) and "[" in part


def _union_errors(errors: list[Any]) -> list[Any]:
    """Drop "should be a valid list/string" from a union when another member says what is
    wrong (``slices: [a; b]`` fails as a column name, not as "not a list")."""

    def union_of(error: Any) -> tuple[Any, ...] | None:
        loc = tuple(error["loc"])
        tags = [i for i, part in enumerate(loc) if _is_union_tag(part)]
        return loc[: tags[0]] if tags else None

    specific = {union_of(e) for e in errors if e["type"] not in ("list_type", "string_type")}
    return [
        e
        for e in errors
        if union_of(e) is None
        or e["type"] not in ("list_type", "string_type")
        or union_of(e) not in specific
    ]


def _format_errors(
    exc: ValidationError,
    source: str,
    prefix: tuple[Any, ...] = (),
    root: type[BaseModel] = EvalSpec,
) -> str:
    lines = []
    for error in _union_errors(exc.errors()):
        loc = tuple(p for p in error["loc"] if not _is_union_tag(p))
        path = ".".join(str(p) for p in prefix + loc) or "(top level)"
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(root, loc[:-1])
            close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            lines.append(f"{path}: unknown key{hint} (allowed: {', '.join(allowed)})")
        elif error["type"] == "missing":
            lines.append(f"{path}: required key is missing")
        else:
            message = error["msg"].removeprefix("Value error, ")
            if not loc:  # a whole-spec check: its input is the spec (with the warehouse URL)
                lines.append(f"{path}: {message}")
            else:
                lines.append(f"{path}: {message} (got {error.get('input')!r})")
    header = f"{source}: invalid spec" + (":" if len(lines) == 1 else f" ({len(lines)} errors):")
    return header + ("\n  " if lines else "") + "\n  ".join(lines)


_HIDDEN = {"base_dir", "warehouse_template"}


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """The keys allowed at ``loc`` below ``model`` (walks nested models and lists)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(current, "model_fields", {}).get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
        if current is None:
            return []
    return [name for name in getattr(current, "model_fields", {}) if name not in _HIDDEN]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, list, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _model_in(arg)
            if found is not None:
                return found
    return None
