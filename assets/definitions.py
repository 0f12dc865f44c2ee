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
=============================  ==============================================================
"""

import os

from dagster import Definitions, EnvVar

from assets.candidates import build_candidate_assets
from assets.evaluation import build_weekly_assets
from assets.jobs import build_weekly_jobs
from assets.sensors import build_registry_sensor
from assets.spec_errors import build_spec_error_asset, build_spec_errors_sensor
from assets.specs import SpecProblem, scan_specs
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
        return Definitions(assets=errors, resources=resources_from_env(), sensors=error_sensors)
    # One weekly job and schedule per calendar (start_week): a job has one partitioning.
    weekly_jobs, schedules = build_weekly_jobs(weekly, specs)
    return Definitions(
        assets=[*weekly, *(c.asset for c in candidates), *errors],
        resources=resources_from_env(),
        jobs=[*weekly_jobs, *(c.job for c in candidates)],
        schedules=schedules,
        sensors=[build_registry_sensor(candidates), *error_sensors],
    )


defs = build_definitions()
