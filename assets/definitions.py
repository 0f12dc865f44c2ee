"""The code location: per-model assets, the weekly job and schedule, the registry sensor.

Loaded by ``workspace.yaml`` (``dagster dev -w workspace.yaml``). Resources come from the
environment, through ``EnvVar`` so secrets are resolved at run time and never stored in the
run config; every variable has a working local default (README, "Configuration"):

=============================  ==============================================================
``EVAL_WAREHOUSE_URL``         warehouse for every model (unset: each spec's ``warehouse``)
``EVAL_ARTIFACTS_ROOT``        folder or ``s3://bucket/prefix`` (unset: ``out/dagster``)
``AWS_ENDPOINT_URL``           S3-compatible endpoint for the artifact store (unset: AWS)
``EVAL_RESULTS_STORE_URL``     results store of the decision log (unset: ``out/results.duckdb``)
``MLFLOW_TRACKING_URI``        MLflow server or store (unset: SQLite in ``out/mlflow``)
``MLFLOW_REGISTRY_URI``        model registry, if not the tracking server
``EVAL_MLFLOW_ARTIFACT_LOCATION``  artifact location of new experiments (e.g. ``s3://...``)
``EVAL_ALERT_WEBHOOK_URL``     Slack-compatible webhook for alerts (unset: no alerts)
``EVAL_SPECS_DIR``             folder of model specs (unset: the project's ``evals/``)
``EVAL_SCHEDULE_CRON``         weekly schedule (unset: ``0 6 * * 1``, Monday 06:00 UTC)
``EVAL_REGISTRY_POLL_SECONDS``  registry sensor interval (unset: 60)
``EVAL_MAX_CONCURRENT_STEPS``  model steps one run executes at once (unset: 4; see below)
=============================  ==============================================================

Every job runs on the multiprocess executor: one run of ``weekly_evaluation`` (the schedule's
run of a week, or a single-run backfill of many weeks) holds one step per model, and up to
``max_concurrent`` of them execute at once, each in its own process. The instance's
``warehouse`` pool (``pool="warehouse"`` on every step that queries the warehouse; its limit
in ``dagster.yaml``) caps how many of them query the warehouse at once, across all runs; a
step waiting for a slot holds no process. ``max_concurrent`` defaults to
``$EVAL_MAX_CONCURRENT_STEPS`` and can be set per run in the launchpad
(``execution: {config: {max_concurrent: N}}``). deploy/README.md, "Concurrency", lists every
knob.
"""

import os

from dagster import (
    Definitions,
    EnvVar,
    ExecutorDefinition,
    Field,
    IntSource,
    multiprocess_executor,
)

from assets.candidates import build_candidate_assets
from assets.evaluation import build_weekly_assets
from assets.jobs import build_weekly_jobs
from assets.sensors import build_registry_sensor
from assets.spec_errors import build_spec_error_asset, build_spec_errors_sensor
from assets.specs import SpecProblem, scan_specs
from eval_pipelines.errors import SpecError
from eval_pipelines.spec import EvalSpec
from resources import AlertsResource, ArtifactStoreResource, MlflowResource, WarehouseResource


def _from_env(**fields: str) -> dict:
    """``{field: EnvVar(name)}`` for the variables that are set; unset ones keep defaults."""
    return {field: EnvVar(name) for field, name in fields.items() if os.environ.get(name)}


def resources_from_env() -> dict:
    return {
        "warehouse": WarehouseResource(**_from_env(url="EVAL_WAREHOUSE_URL")),
        "artifacts": ArtifactStoreResource(
            **_from_env(
                root="EVAL_ARTIFACTS_ROOT",
                endpoint_url="AWS_ENDPOINT_URL",
                results_store="EVAL_RESULTS_STORE_URL",
            )
        ),
        "mlflow": MlflowResource(
            **_from_env(
                tracking_uri="MLFLOW_TRACKING_URI",
                registry_uri="MLFLOW_REGISTRY_URI",
                artifact_location="EVAL_MLFLOW_ARTIFACT_LOCATION",
            )
        ),
        "alerts": AlertsResource(**_from_env(webhook_url="EVAL_ALERT_WEBHOOK_URL")),
    }


MAX_CONCURRENT_ENV = "EVAL_MAX_CONCURRENT_STEPS"
DEFAULT_MAX_CONCURRENT = 4


def max_concurrent_steps() -> int:
    """``$EVAL_MAX_CONCURRENT_STEPS`` (a positive integer), else ``DEFAULT_MAX_CONCURRENT``."""
    value = os.environ.get(MAX_CONCURRENT_ENV, "").strip()
    if not value:
        return DEFAULT_MAX_CONCURRENT
    if not value.isdigit() or int(value) < 1:
        raise SpecError(f"{MAX_CONCURRENT_ENV}: expected a positive integer, got {value!r}")
    return int(value)


def executor_from_env() -> ExecutorDefinition:
    """The multiprocess executor, at most ``max_concurrent`` steps of a run at once.

    ``max_concurrent`` is the run's own config (default: :func:`max_concurrent_steps`), so one
    run can be given more or fewer processes from the launchpad; the warehouse pool still
    decides how many of them query the warehouse."""
    return multiprocess_executor.configured(
        lambda config: {"max_concurrent": config["max_concurrent"]},
        name="multiprocess",
        config_schema={
            "max_concurrent": Field(
                IntSource,
                default_value=max_concurrent_steps(),
                description=(
                    "Steps (one per model) of this run that may execute at once, each in its "
                    "own process; the warehouse pool limit caps those querying the warehouse."
                ),
            )
        },
    )


def build_definitions(
    specs: list[EvalSpec] | None = None, problems: list[SpecProblem] | None = None
) -> Definitions:
    """The code location for ``specs`` (default: every spec of the specs folder that loads).

    A spec that does not load (``problems``; found by ``scan_specs`` when ``specs`` is not
    given) is one ``<file stem>/spec_error`` asset whose check fails with its SpecError; the
    good models keep their assets, job, schedule requests and registry sensor."""
    if specs is None:
        scanned = scan_specs()
        specs, problems = scanned.specs, scanned.problems
    problems = problems or []
    errors = [build_spec_error_asset(problem) for problem in problems]
    error_sensors = [build_spec_errors_sensor(problems)] if problems else []
    weekly = [build_weekly_assets(spec) for spec in specs]
    candidates = [build_candidate_assets(spec) for spec in specs]
    if not specs:  # every spec is broken: only the errors to show, nothing to schedule
        return Definitions(
            assets=errors,
            resources=resources_from_env(),
            sensors=error_sensors,
            executor=executor_from_env(),
        )
    # One weekly job and schedule per calendar (start_week): a job has one partitioning.
    weekly_jobs, schedules = build_weekly_jobs(weekly, specs)
    return Definitions(
        assets=[*weekly, *(c.asset for c in candidates), *errors],
        resources=resources_from_env(),
        jobs=[*weekly_jobs, *(c.job for c in candidates)],
        schedules=schedules,
        sensors=[build_registry_sensor(candidates), *error_sensors],
        executor=executor_from_env(),
    )


defs = build_definitions()
