"""What gets logged for an evaluation: params, tags, headline metrics, tables, their
digest and the window as a dataset (pure functions of the evaluation, no MLflow calls)."""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlflow.entities import Dataset

from eval_pipelines.lineage import code_version
from eval_pipelines.query_cost import cost_totals
from eval_pipelines.spec import OVERALL
from eval_pipelines.tasks import task_named
from eval_pipelines.tracking.errors import TrackingError
from eval_pipelines.tracking.naming import _cut, metric_key, metric_token, name_token
from eval_pipelines.tracking.schema import (
    CI_HIGH,
    CI_LOW,
    MAX_PARAM_VALUE,
    SPEC_HASH_TAG,
    TABLES,
)
from eval_pipelines.warehouse import safe_url

if TYPE_CHECKING:
    from eval_pipelines.gates import Verdict
    from eval_pipelines.pipeline import Evaluation


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif value is None:
        return
    elif isinstance(value, str):
        out[prefix] = value
    elif isinstance(value, bool):
        out[prefix] = "true" if value else "false"
    elif isinstance(value, int | float):
        out[prefix] = repr(value)
    else:  # lists (slices, metrics, gates, features), empty dicts
        out[prefix] = json.dumps(value, separators=(",", ":"), sort_keys=True)


def spec_params(evaluation: Evaluation) -> dict[str, str]:
    """The spec as flat MLflow params (warehouse masked), plus the window bounds."""
    spec = evaluation.spec
    payload = spec.model_dump(mode="json")
    payload["warehouse"] = safe_url(spec.warehouse_template or spec.warehouse)
    params: dict[str, str] = {}
    _flatten(payload, "", params)
    params["window.start"] = evaluation.window.start.isoformat()
    params["window.end"] = evaluation.window.end.isoformat()
    return {key: _cut(value, MAX_PARAM_VALUE) for key, value in sorted(params.items())}


def _code_version() -> str:
    version = code_version()
    if version.get("git_commit"):
        dirty = "+dirty" if version.get("git_dirty") == "yes" else ""
        return f"{version['git_commit']}{dirty}"
    return f"eval-pipelines {version['package']}"


def evaluation_tags(evaluation: Evaluation, verdict: Verdict) -> dict[str, str]:
    fingerprint = evaluation.fingerprint
    tags = {
        "eval.model": evaluation.spec.model,
        "eval.week": evaluation.window.label,
        SPEC_HASH_TAG: evaluation.spec.fingerprint(),
        "eval.data_fingerprint": str(fingerprint.get("content_hash", "")),
        "eval.rows": str(fingerprint.get("rows", "")),
        "eval.decision": verdict.decision,
        "eval.code_version": _code_version(),
    }
    validation = evaluation.validation
    failed = sorted({r.name for r in validation.results if r.blocking and not r.passed})
    warned = sorted({r.name for r in validation.results if not r.blocking and not r.passed})
    tags["eval.validation.passed"] = str(validation.passed).lower()
    tags["eval.validation.failed_checks"] = ",".join(failed)[:5000]
    tags["eval.validation.warnings"] = ",".join(warned)[:5000]
    if verdict.candidate is not None:
        tags["eval.candidate"] = verdict.candidate
    if verdict.baseline is not None:
        tags["eval.baseline"] = verdict.baseline
    return tags


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def evaluation_metrics(evaluation: Evaluation) -> dict[str, float]:
    """The headline metrics of a week (the overall slice; module docstring for the keys)."""
    values: dict[str, float] = {}

    def put(key: str, value: Any) -> None:
        if key in values:  # the scheme is collision-free; a duplicate is a bug, not data
            raise TrackingError(f"metric key {key!r} would be logged twice")
        number = _finite(value)
        if number is not None:
            values[key] = number

    metrics = evaluation.metrics
    for row in metrics[metrics["slice"] == OVERALL].itertuples(index=False):
        metric, version = metric_token(row.metric), name_token(row.model_version)
        put(metric_key(metric, version), row.value)
        put(metric_key(metric, version, CI_LOW), row.ci_low)
        put(metric_key(metric, version, CI_HIGH), row.ci_high)

    comparison = evaluation.comparison
    if comparison is not None and not comparison.empty:
        for row in comparison[comparison["slice"] == OVERALL].itertuples(index=False):
            metric = metric_token(row.metric)
            put(metric_key("delta", metric, OVERALL), row.delta)
            put(metric_key("delta", metric, OVERALL, CI_LOW), row.delta_ci_low)
            put(metric_key("delta", metric, OVERALL, CI_HIGH), row.delta_ci_high)

    fingerprint = evaluation.fingerprint
    rows, labeled = fingerprint.get("rows"), fingerprint.get("labeled_rows")
    put("rows", rows)
    put("labeled_rows", labeled)
    if rows:
        put("label_coverage", labeled / rows)
    coverage = evaluation.coverage
    if not coverage.empty:
        for row in coverage[coverage["slice"] == OVERALL].itertuples(index=False):
            version = name_token(row.model_version)
            put(metric_key("rows", version), row.rows)
            put(metric_key("labeled_rows", version), row.labeled)
            put(metric_key("label_coverage", version), row.coverage)
    return dict(sorted(values.items()))


COST_TOTALS = ("queries", "seconds", "rows_scanned", "bytes_scanned")
COST_METRICS = tuple(f"cost_{name}" for name in COST_TOTALS)


def cost_metrics(evaluation: Evaluation) -> dict[str, float]:
    """What the run's warehouse queries cost, in total (``cost`` in run.json): a measurement
    of this attempt, so it stays out of the results digest and the trend run. A total the
    engine does not report (rows and bytes scanned on PostgreSQL) is not logged."""
    totals = cost_totals(evaluation.query_costs)
    values = {f"cost_{name}": _finite(totals[name]) for name in COST_TOTALS}
    return {key: value for key, value in values.items() if value is not None}


def evaluation_tables(evaluation: Evaluation) -> dict[str, str]:
    """Run-relative path -> JSON text of each per-slice table, in ``MlflowClient.log_table``'s
    format (pandas ``split`` orientation, no index; 15 significant digits, pandas' maximum,
    where log_table keeps pandas' default 10). Empty frames keep their columns."""
    frames = {
        TABLES["slices"]: evaluation.metrics,
        TABLES["comparison"]: evaluation.comparison,
        TABLES["drift"]: evaluation.drift,
    }
    return {
        path: frame.to_json(orient="split", index=False, date_format="iso", double_precision=15)
        for path, frame in frames.items()
        if frame is not None
    }


def results_digest(metrics: Mapping[str, float], tables: Mapping[str, str]) -> str:
    """SHA-256 over the headline metrics (``repr`` of each float) and the tables' JSON: two
    publishes of a week have the same digest exactly when MLflow would show the same numbers.
    """
    payload = json.dumps(
        {"metrics": {k: repr(v) for k, v in sorted(metrics.items())}, "tables": dict(tables)},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _source_of(source: Any) -> dict[str, str]:
    if source.table is not None:
        return {"table": source.table}
    return {"query": _cut(source.query, 8000)}


def window_dataset(evaluation: Evaluation) -> Dataset:
    """The evaluated window as an MLflow dataset (our digest, safe warehouse URL)."""
    spec, window, fingerprint = evaluation.spec, evaluation.window, evaluation.fingerprint
    source = {
        "warehouse": safe_url(spec.warehouse_template or spec.warehouse),
        "predictions": _source_of(spec.predictions),
        "labels": _source_of(spec.labels),
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
    }
    p, lab = spec.predictions, spec.labels
    columns = [
        (p.id, "string"),
        (p.timestamp, "datetime"),
        (p.model_version, "string"),
        (spec.output_column, "string" if task_named(spec.task).categorical else "double"),
        (lab.label, "string" if task_named(spec.task).categorical else "long"),
        (lab.timestamp, "datetime"),
        *((column, "string") for column in spec.slice_columns),
    ]
    if spec.drift is not None:
        categorical = set(spec.drift.categorical)
        if not evaluation.drift.empty:
            kinds = dict(zip(evaluation.drift["feature"], evaluation.drift["kind"], strict=True))
            categorical |= {f for f, kind in kinds.items() if kind == "categorical"}
        columns += [(f, "string" if f in categorical else "double") for f in spec.drift.features]
    seen: set[str] = set()
    colspec = []
    for name, kind in columns:
        if name not in seen:
            seen.add(name)
            colspec.append({"name": name, "type": kind})
    profile = {
        "rows": fingerprint.get("rows"),
        "labeled_rows": fingerprint.get("labeled_rows"),
        "versions": fingerprint.get("versions", {}),
    }
    return Dataset(
        name=f"{spec.model}_window_{window.label}",
        digest=str(fingerprint.get("content_hash", "")),
        source_type="warehouse",
        source=json.dumps(source, sort_keys=True),
        schema=json.dumps({"mlflow_colspec": colspec}),
        profile=json.dumps(profile, sort_keys=True),
    )
