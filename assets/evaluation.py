"""The weekly evaluation of one model: eight assets materialized by one step.

``<model>/window``, ``sufficient_statistics``, ``metrics``, ``comparison``, ``drift``,
``verdict`` and ``report`` are views of one consistent run of the engine: the window join
runs once into a session-private temporary table of one warehouse connection, and every
other asset is computed from it in the same process. Splitting them into steps would either
pickle frames between processes or join the window again per step; neither buys anything,
since nothing downstream can be computed without what comes before. Each asset still gets
its own materialization and metadata per week, and the checks say what a user must know.
``<model>/dashboard``, the trend page over every evaluated week, is rebuilt at the end of the
step from the week folders (assets/dashboard.py).

A backfill of many weeks is one run (``BackfillPolicy.single_run``): one process, one import
of the numeric stack, one warehouse connection, each week evaluated, published and recorded
as its own partition. A week whose input fails its checks is not materialized; the others
are, and the run then fails naming the weeks that did not pass.

No ``from __future__ import annotations`` here: Dagster reads the context and resource
annotations at definition time (see the field notes).
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetsDefinition,
    AssetSpec,
    BackfillPolicy,
    Failure,
    MetadataValue,
    multi_asset,
)

from assets.dashboard import DESCRIPTION as DASHBOARD
from assets.dashboard import dashboard_materializations
from assets.metadata import (
    asset_metadata,
    drifted,
    label_coverage,
    markdown_table,
    significant_regressions,
)
from assets.partitions import partitions_for
from assets.specs import asset_prefix
from eval_pipelines.decisions import TRIGGER_TAG, trigger_of
from eval_pipelines.dialects import dialect_class
from eval_pipelines.errors import EvalError, ValidationFailed
from eval_pipelines.gates import HOLD, SHIP, no_reference_data
from eval_pipelines.runner import ALERT_FAILED, RunOutcome, run_evaluation
from eval_pipelines.spec import EvalSpec
from resources import AlertsResource, ArtifactStoreResource, MlflowResource, WarehouseResource

WAREHOUSE_POOL = "warehouse"

ASSETS = {
    "window": (
        "The week's predictions joined with their labels in the warehouse (a temporary table "
        "of the run's session; the source tables are only read): row counts, label coverage, "
        "content fingerprint and the input checks."
    ),
    "sufficient_statistics": (
        "One aggregate query over the window: threshold cells per slice x version x label x "
        "resample bucket and fine score histograms. Its size does not grow with the rows."
    ),
    "metrics": (
        "Every metric for every slice and version with bootstrap confidence intervals "
        "(metrics.parquet)."
    ),
    "comparison": (
        "Candidate minus baseline per slice and metric: paired deltas with intervals, tests "
        "and Benjamini-Hochberg q-values (comparison.parquet)."
    ),
    "drift": "This week's features and score against the reference weeks (drift.parquet).",
    "verdict": (
        "The release decision (ship, ship_with_guardrails, hold or inconclusive, failing "
        "closed) and its reasons, "
        "from the metrics, the comparison and the drift."
    ),
    "report": "The report a product manager reads (report.md), the MLflow run and the alert.",
    "dashboard": DASHBOARD,
}
# Lineage drawn as a tree: the verdict also reads drift and metrics, but a fan-in inside a
# non-subsettable multi-asset makes Dagster 1.13 reject UI backfills on some server starts
# (TimeWindowPartitionsSubset compares unequal to itself; docs/architecture.md).
DEPENDS_ON = {
    "sufficient_statistics": ["window"],
    "metrics": ["sufficient_statistics"],
    "comparison": ["metrics"],
    "drift": ["window"],
    "verdict": ["comparison"],
    "report": ["verdict"],
    "dashboard": ["report"],
}
# ENGINE stands for the warehouse's engine (its dialect's name: duckdb, postgresql).
ENGINE = "engine"
KINDS = {
    "window": {ENGINE, "sql"},
    "sufficient_statistics": {ENGINE, "sql"},
    "metrics": {"parquet"},
    "comparison": {"parquet"},
    "drift": {"parquet"},
    "verdict": {"json"},
    "report": {"markdown", "mlflow"},
    "dashboard": {"html"},
}


def asset_key(spec: EvalSpec, name: str) -> AssetKey:
    return AssetKey([asset_prefix(spec.model), name])


def build_weekly_assets(spec: EvalSpec) -> AssetsDefinition:
    prefix = asset_prefix(spec.model)
    key = {name: asset_key(spec, name) for name in ASSETS}
    # The asset kind shown in the UI: duckdb, postgresql, spark (Spark's URL scheme is sc).
    engine = dialect_class(spec.warehouse).title.lower()
    specs = [
        AssetSpec(
            key[name],
            description=f"{spec.model}: {description}",
            deps=[key[d] for d in DEPENDS_ON.get(name, [])],
            group_name=prefix,
            kinds={engine if kind == ENGINE else kind for kind in KINDS[name]},
            owners=list(spec.owners),
            tags={"eval/model": prefix},
            skippable=True,
        )
        for name, description in ASSETS.items()
    ]
    check_specs = [
        AssetCheckSpec(
            "input_checks_passed",
            asset=key["window"],
            blocking=True,
            description="Every blocking input check on the window passed (ERROR otherwise).",
        ),
        AssetCheckSpec(
            "label_coverage",
            asset=key["window"],
            description=f"At least {spec.min_label_coverage:.0%} of predictions are labeled.",
        ),
        AssetCheckSpec(
            "no_significant_regression",
            asset=key["comparison"],
            description="No slice x metric is significantly worse for the candidate (WARN).",
        ),
        AssetCheckSpec("no_drift", asset=key["drift"], description="No feature drifted (WARN)."),
        AssetCheckSpec(
            "release_gates",
            asset=key["verdict"],
            description=(
                "The verdict is ship (ERROR on hold, WARN when inconclusive or "
                "ship_with_guardrails)."
            ),
        ),
    ]

    @multi_asset(
        name=f"{prefix}__weekly_evaluation",
        specs=specs,
        check_specs=check_specs,
        partitions_def=partitions_for(spec),
        backfill_policy=BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        can_subset=False,
        description=f"Evaluate {spec.model} for each week of the run's partitions.",
    )
    def weekly_evaluation(
        context: AssetExecutionContext,
        warehouse: WarehouseResource,
        artifacts: ArtifactStoreResource,
        mlflow: MlflowResource,
        alerts: AlertsResource,
    ):
        run_spec = warehouse.spec_for(spec)
        tracker = mlflow.tracker()
        outcomes: dict[str, RunOutcome] = {}
        failed: dict[str, EvalError] = {}
        with warehouse.connect(spec) as connection:
            for week in context.partition_keys:
                try:
                    outcome = run_evaluation(
                        run_spec,
                        week,
                        connection,
                        artifacts.folder(spec.model, week),
                        artifacts.publishing(spec.model, week, tracker, alerts.webhook_url),
                        run_key=f"{spec.model}/week/{week}",
                        run_name=f"{spec.model} week {week}",
                        tags=_run_tags(context, week),
                        log=context.log.info,
                    )
                except EvalError as exc:
                    context.log.error(f"{spec.model} week {week}: {exc}")
                    failed[week] = exc
                    continue
                outcomes[week] = outcome
                context.log.info(f"{spec.model} week {week}: {outcome.verdict.decision}")
                for name, metadata in asset_metadata(outcome).items():
                    yield AssetMaterialization(key[name], partition=week, metadata=metadata)
        yield from dashboard_materializations(
            spec, key["dashboard"], artifacts, sorted(outcomes), context.log.error
        )
        yield from _check_results(spec, key, outcomes, failed)
        _raise_for(spec, outcomes, failed)

    return weekly_evaluation


def _run_tags(context: AssetExecutionContext, week: str) -> dict[str, str]:
    """Dagster lineage for the MLflow run: which Dagster run, partition and backfill."""
    tags = {
        "dagster.run_id": context.run.run_id,
        "dagster.job": context.run.job_name,
        "dagster.partition": week,
        TRIGGER_TAG: trigger_of(context.run.tags),
    }
    backfill = context.run.tags.get("dagster/backfill")
    if backfill:
        tags["dagster.backfill"] = backfill
    return tags


def _check_results(
    spec: EvalSpec,
    key: dict[str, AssetKey],
    outcomes: dict[str, RunOutcome],
    failed: dict[str, EvalError],
):
    """One result per check per run; a multi-week run reports every week in one table."""
    weeks = sorted([*outcomes, *failed])
    input_rows = [
        [w, w not in failed, _summary(failed[w]) if w in failed else "passed"] for w in weeks
    ]
    invalid = [w for w in weeks if isinstance(failed.get(w), ValidationFailed)]
    yield AssetCheckResult(
        asset_key=key["window"],
        check_name="input_checks_passed",
        passed=not failed,
        severity=AssetCheckSeverity.ERROR,
        description=(
            "input checks passed"
            if not failed
            else f"{len(failed)} of {len(weeks)} weeks failed ({len(invalid)} on input checks)"
        ),
        metadata={
            "weeks": MetadataValue.md(markdown_table(["week", "passed", "message"], input_rows)),
            **_failures_metadata(failed),
        },
    )
    yield _per_week_check(
        key["window"],
        "label_coverage",
        outcomes,
        lambda o: label_coverage(o.evaluation.fingerprint) >= spec.min_label_coverage,
        lambda o: f"{label_coverage(o.evaluation.fingerprint):.1%} labeled",
        AssetCheckSeverity.WARN,
    )
    yield _per_week_check(
        key["comparison"],
        "no_significant_regression",
        outcomes,
        lambda o: significant_regressions(o.evaluation.comparison).empty,
        lambda o: (
            f"{len(significant_regressions(o.evaluation.comparison))} significant regressions"
        ),
        AssetCheckSeverity.WARN,
    )
    yield _per_week_check(
        key["drift"],
        "no_drift",
        outcomes,
        lambda o: drifted(o.evaluation.drift).empty,
        lambda o: (
            "not judged: no reference data (a first week)"
            if no_reference_data(o.evaluation.drift)
            else ", ".join(sorted(set(drifted(o.evaluation.drift)["feature"]))) or "none drifted"
        ),
        AssetCheckSeverity.WARN,
    )
    decisions = {o.verdict.decision for o in outcomes.values()}
    yield _per_week_check(
        key["verdict"],
        "release_gates",
        outcomes,
        lambda o: o.verdict.decision == SHIP,
        lambda o: o.verdict.decision,
        AssetCheckSeverity.ERROR if HOLD in decisions else AssetCheckSeverity.WARN,
    )


def _per_week_check(asset, name, outcomes, passes, describe, severity) -> AssetCheckResult:
    rows = [[week, passes(o), describe(o)] for week, o in sorted(outcomes.items())]
    failing = [row[0] for row in rows if not row[1]]
    if not rows:
        description = "no week was evaluated"
    elif failing:
        description = f"not met in {len(failing)} of {len(rows)} weeks: {', '.join(failing)}"
    else:
        description = rows[0][2] if len(rows) == 1 else f"met in all {len(rows)} weeks"
    return AssetCheckResult(
        asset_key=asset,
        check_name=name,
        passed=bool(rows) and not failing,
        severity=severity,
        description=description,
        metadata={"weeks": MetadataValue.md(markdown_table(["week", "passed", "detail"], rows))},
    )


def _summary(exc: EvalError) -> str:
    """One line: the message, with the failed input checks when there are any."""
    first = str(exc).splitlines()[0].rstrip(":")
    if isinstance(exc, ValidationFailed):
        return f"{first}: " + "; ".join(exc.failures)
    return first


def _failures_metadata(failed: dict[str, EvalError]) -> dict[str, MetadataValue]:
    if not failed:
        return {}
    lines = [f"- **{week}**: {exc}".replace("\n", "\n  ") for week, exc in sorted(failed.items())]
    return {"failures": MetadataValue.md("\n".join(lines))}


def _raise_for(spec: EvalSpec, outcomes: dict[str, RunOutcome], failed: dict[str, EvalError]):
    """Fail the run, after every good week is recorded, when a week or an alert failed."""
    undelivered = [w for w, o in outcomes.items() if o.alert.startswith(ALERT_FAILED)]
    if not failed and not undelivered:
        return
    problems = [f"week {week}: {_summary(exc)}" for week, exc in sorted(failed.items())]
    problems += [f"week {week}: alert {outcomes[week].alert}" for week in sorted(undelivered)]
    raise Failure(
        description=f"{spec.model}: " + "; ".join(problems),
        metadata={"problems": MetadataValue.md("\n".join(f"- {p}" for p in problems))},
        allow_retries=not any(isinstance(e, ValidationFailed) for e in failed.values()),
    )
