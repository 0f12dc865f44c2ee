"""The MLflow Model Registry sensor: every new version of a model with a spec gets evaluated.

Rules (documented in the README):

* A version is evaluated once it is READY. A version still PENDING_REGISTRATION holds the
  cursor back, so it is picked up when it becomes READY, never skipped; FAILED_REGISTRATION
  versions are passed over.
* The version holding the champion alias is not evaluated against itself, and a version that
  already carries an ``eval.verdict`` tag has been evaluated: it is not requested again.
* On the first tick for a model, versions up to the champion's number are history: the
  sensor starts after the champion. Whenever a model has no champion alias the sensor waits
  (the tick says why) without moving its cursor, so versions registered meanwhile are
  evaluated once a champion is set. Likewise when MLflow cannot be read (server down): the
  tick skips with the reason and the cursor stays where it was.
* Each request's run key is ``<registered model>/<version>``: even with a lost cursor, Dagster
  never launches a second run for a version. The cursor (JSON ``{model: last handled
  version}``) is stored by Dagster, so a restarted daemon resumes where it stopped.

Each request adds the version as a partition of ``<model>/candidate_verdict`` and pins the
evaluated week in the run config (the last complete week at detection, or
``$EVAL_REGISTRY_WEEK`` when set: the demo pins its data's last week), so a re-execution from
the UI evaluates the same data.
"""

import json
import os
from datetime import UTC, datetime

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from assets.candidates import CandidateAssets
from eval_pipelines.errors import EvalError
from eval_pipelines.tracking import tracking_errors
from eval_pipelines.windows import last_complete_week
from resources import MlflowResource

READY, PENDING = "READY", "PENDING_REGISTRATION"
POLL_SECONDS_ENV = "EVAL_REGISTRY_POLL_SECONDS"
WEEK_ENV = "EVAL_REGISTRY_WEEK"
VERDICT_TAG = "eval.verdict"


def build_registry_sensor(candidates: list[CandidateAssets]):
    by_model = {c.spec.registered_model: c for c in candidates if c.spec.registry.enabled}

    @sensor(
        name="mlflow_registry_sensor",
        jobs=[c.job for c in by_model.values()],
        minimum_interval_seconds=int(os.environ.get(POLL_SECONDS_ENV, "60")),
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Evaluates each new READY version of a registered model that has a spec against "
            "its champion alias; the verdict goes back to the version as eval.* tags."
        ),
    )
    def mlflow_registry_sensor(context: SensorEvaluationContext, mlflow: MlflowResource):
        cursor: dict[str, int] = json.loads(context.cursor) if context.cursor else {}
        tracker = mlflow.tracker()
        requests: list[RunRequest] = []
        new_partitions = []
        notes: list[str] = []
        week = os.environ.get(WEEK_ENV) or last_complete_week(datetime.now(UTC))
        for name, candidates in sorted(by_model.items()):
            try:
                # An unreachable or failing server is one sentence naming its host (never
                # credentials); the model keeps its cursor and the tick says why.
                with tracking_errors(tracker, f"reading the versions of {name!r}"):
                    versions = tracker.model_versions(name)
                    champion = tracker.alias_version(name, candidates.spec.registry.champion_alias)
            except EvalError as exc:
                notes.append(f"{name}: {exc}")
                continue
            if champion is None:
                # Without a champion nothing can be compared: hold the cursor, skip nothing.
                notes.append(
                    f"{name}: no {candidates.spec.registry.champion_alias!r} alias; waiting "
                    "for one before evaluating versions"
                )
                continue
            if name not in cursor:
                cursor[name] = champion.version
            handled = cursor[name]
            blocked = False
            for version in versions:
                if version.version <= cursor[name]:
                    continue
                if version.status == PENDING:
                    blocked = True
                    notes.append(f"{name} v{version.version}: still registering")
                    continue
                if (
                    version.status == READY
                    and version.version != champion.version
                    and VERDICT_TAG not in version.tags
                ):
                    requests.append(
                        RunRequest(
                            run_key=f"{name}/{version.version}",
                            job_name=candidates.job.name,
                            partition_key=str(version.version),
                            run_config={
                                "ops": {candidates.asset.op.name: {"config": {"week": week}}}
                            },
                            tags={
                                "eval/registered_model": name,
                                "eval/registry_version": str(version.version),
                                "eval/week": week,
                            },
                        )
                    )
                    new_partitions.append(
                        candidates.partitions.build_add_request([str(version.version)])
                    )
                if not blocked:
                    handled = version.version
            cursor[name] = handled
        if not requests:
            return SensorResult(
                skip_reason=SkipReason("; ".join(notes) or "no new model versions"),
                cursor=json.dumps(cursor, sort_keys=True),
            )
        return SensorResult(
            run_requests=requests,
            dynamic_partitions_requests=new_partitions,
            cursor=json.dumps(cursor, sort_keys=True),
        )

    return mlflow_registry_sensor
