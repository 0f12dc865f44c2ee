"""Input checks that stand in front of every metric.

Checks run as aggregate SQL in the warehouse (rows never come to Python) and produce a
:class:`ValidationReport`. A failed blocking check stops the run with every reason listed.
The :class:`Check` protocol is the seam for richer suites (Great Expectations, per the
quality roadmap): anything with a ``name`` and a ``run(context)`` returning ``CheckResult``s
can be added to ``DEFAULT_CHECKS``' list by the caller.
"""

import difflib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Protocol

import pandas as pd

from eval_pipelines.errors import ValidationFailed
from eval_pipelines.spec import EvalSpec
from eval_pipelines.sqlbuild import SqlBuilder
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import Window


@dataclass(frozen=True)
class CheckResult:
    name: str
    passed: bool
    message: str
    blocking: bool = True


@dataclass
class ValidationReport:
    window: str
    results: list[CheckResult] = field(default_factory=list)
    per_version: list[dict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results if r.blocking)

    @property
    def failures(self) -> list[str]:
        return [r.message for r in self.results if r.blocking and not r.passed]

    def to_dict(self) -> dict:
        return {
            "window": self.window,
            "passed": self.passed,
            "checks": [asdict(r) for r in self.results],
            "per_version": self.per_version,
        }

    def raise_if_failed(self) -> None:
        if not self.passed:
            reasons = "\n  - ".join(self.failures)
            raise ValidationFailed(
                f"input checks failed for the window {self.window}; no metrics were computed:"
                f"\n  - {reasons}",
                self.failures,
            )


@dataclass(frozen=True)
class CheckContext:
    spec: EvalSpec
    window: Window
    warehouse: Warehouse
    builder: SqlBuilder


class Check(Protocol):
    name: str

    def run(self, context: CheckContext) -> list[CheckResult]: ...


def _missing_columns(
    context: CheckContext, source_name: str, source, required: dict[str, str]
) -> list[CheckResult]:
    source_sql = context.builder.source(source)
    what = f"table {source.table!r}" if source.table else f"query {source.query!r}"
    columns = context.warehouse.columns(source_sql, f"{source_name} columns ({what})")
    lowered = {c.lower(): c for c in columns}
    results = []
    for key, column in required.items():
        if column in columns or column.lower() in lowered:
            continue
        close = difflib.get_close_matches(column, columns, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        results.append(
            CheckResult(
                "columns_present",
                False,
                f"{key}: column {column!r} not found in {what}{hint} "
                f"(columns: {', '.join(columns)})",
            )
        )
    return results


class RequiredColumns:
    """Every column the spec names exists in its source."""

    name = "columns_present"

    def run(self, context: CheckContext) -> list[CheckResult]:
        spec = context.spec
        p, lab = spec.predictions, spec.labels
        pred_required = {
            "predictions.id": p.id,
            "predictions.timestamp": p.timestamp,
            "predictions.model_version": p.model_version,
            "predictions.score": p.score,
        }
        for i, entry in enumerate(spec.slices):
            for col in [entry] if isinstance(entry, str) else entry:
                pred_required[f"slices[{i}]"] = col
        if spec.drift:
            for i, col in enumerate(spec.drift.features):
                pred_required[f"drift.features[{i}]"] = col
        label_required = {
            "labels.id": lab.id,
            "labels.label": lab.label,
            "labels.timestamp": lab.timestamp,
        }
        failures = _missing_columns(context, "predictions", p, pred_required)
        failures += _missing_columns(context, "labels", lab, label_required)
        return failures or [CheckResult(self.name, True, "every column named in the spec exists")]


class WindowContents:
    """Ids unique and present, scores finite in [0, 1], labels binary, versions present."""

    name = "window_contents"

    def __init__(self) -> None:
        self.per_version: pd.DataFrame | None = None

    def run(self, context: CheckContext) -> list[CheckResult]:
        spec, window = context.spec, context.window
        frame = context.warehouse.query(context.builder.window_checks(window), "window checks")
        self.per_version = frame
        results: list[CheckResult] = []
        if frame.empty or int(frame["n"].sum()) == 0:
            return [
                CheckResult(
                    "window_not_empty",
                    False,
                    f"no predictions in {_source_name(spec.predictions)} for the window {window}",
                )
            ]
        for row in frame.itertuples(index=False):
            version = row.model_version
            if row.n_id < row.n:
                results.append(
                    CheckResult(
                        "ids_not_null",
                        False,
                        f"predictions.id: {row.n - row.n_id} rows of version {version!r} have "
                        f"a NULL {spec.predictions.id!r}",
                    )
                )
            if row.n_distinct_id < row.n_id:
                results.append(
                    CheckResult(
                        "ids_unique_per_version",
                        False,
                        f"predictions.id: {row.n_id - row.n_distinct_id} duplicate "
                        f"{spec.predictions.id!r} values in version {version!r}",
                    )
                )
            if row.n_bad_score:
                results.append(
                    CheckResult(
                        "scores_in_unit_interval",
                        False,
                        f"predictions.score: {int(row.n_bad_score)} rows of version {version!r} "
                        f"have a {spec.predictions.score!r} that is NULL, NaN or outside [0, 1]",
                    )
                )
            if row.n_label_before_prediction:
                results.append(
                    CheckResult(
                        "labels_after_predictions",
                        False,
                        f"labels.timestamp: {int(row.n_label_before_prediction)} labels of "
                        f"version {version!r} predictions are timestamped before the "
                        "prediction; those rows count as unlabeled",
                        blocking=False,
                    )
                )
            if row.n_bad_label:
                results.append(
                    CheckResult(
                        "labels_binary",
                        False,
                        f"labels.label: {int(row.n_bad_label)} labels joined to version "
                        f"{version!r} are not 0 or 1",
                    )
                )
        present = set(frame["model_version"].astype(str))
        if spec.compare:
            for role in ("baseline", "candidate"):
                version = getattr(spec.compare, role)
                if version not in present:
                    results.append(
                        CheckResult(
                            f"{role}_present",
                            False,
                            f"compare.{role}: version {version!r} has no predictions in the "
                            f"window {window} (versions present: {', '.join(sorted(present))})",
                        )
                    )
        if not any(not r.passed and r.blocking for r in results):
            results.append(CheckResult(self.name, True, "window contents are well formed"))
        return results


class LabelsUnique:
    """A prediction id has at most one label (otherwise the join double counts)."""

    name = "labels_unique"

    def run(self, context: CheckContext) -> list[CheckResult]:
        frame = context.warehouse.query(
            context.builder.label_duplicates(context.window), "label uniqueness check"
        )
        duplicated = int(frame.iloc[0, 0] or 0)
        if duplicated:
            return [
                CheckResult(
                    self.name,
                    False,
                    f"labels.id: {duplicated} prediction ids in the window have more than one "
                    f"label in {_source_name(context.spec.labels)}",
                )
            ]
        return [CheckResult(self.name, True, "at most one label per prediction")]


def _source_name(source) -> str:
    return source.table if source.table else f"query {source.query!r}"


def validate_window(
    spec: EvalSpec,
    window: Window,
    warehouse: Warehouse,
    builder: SqlBuilder,
    prepare: Callable[[], SqlBuilder] | None = None,
) -> tuple[ValidationReport, SqlBuilder]:
    """Run the checks in order; later checks are skipped if columns are missing.

    ``prepare`` runs once the columns are known to exist and may return a builder that reads
    a materialised window (see :func:`eval_pipelines.pipeline.evaluate`); the builder the
    contents were checked with is returned, so metrics read exactly what was validated.
    """
    context = CheckContext(spec, window, warehouse, builder)
    report = ValidationReport(window=str(window))
    report.results += RequiredColumns().run(context)
    if not report.passed:
        return report, builder
    if prepare is not None:
        builder = prepare()
        context = CheckContext(spec, window, warehouse, builder)
    contents = WindowContents()
    report.results += contents.run(context)
    report.results += LabelsUnique().run(context)
    if contents.per_version is not None:
        report.per_version = [
            {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
            for row in contents.per_version.to_dict(orient="records")
        ]
    return report, builder
