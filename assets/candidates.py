"""Registry-triggered evaluation: a new MLflow model version against the current champion.

``<model>/candidate_verdict`` is partitioned by registry version number (dynamic partitions
the registry sensor adds). A run evaluates the candidate's rows against the champion's on
one week (the last complete week when the sensor saw the version, passed in the run config
so a re-run evaluates the same week), logs an MLflow run, and writes the verdict back to the
model version as tags:

* ``eval.verdict``: ship / hold / inconclusive (or ``error`` with ``eval.error``),
* ``eval.mlflow_run_id``, ``eval.report``, ``eval.week``, ``eval.champion_version``,
  ``eval.dagster_run_id``.

An alert that could not be delivered fails the run after all of that is recorded, as in the
weekly evaluation.

No ``from __future__ import annotations`` here (Dagster reads the annotations).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Config,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    define_asset_job,
)
from pydantic import Field

from assets.evaluation import WAREHOUSE_POOL
from assets.metadata import asset_metadata
from assets.specs import asset_prefix
from eval_pipelines.decisions import TRIGGER_TAG, trigger_of
from eval_pipelines.errors import EvalError
from eval_pipelines.runner import ALERT_FAILED, run_evaluation
from eval_pipelines.spec import CompareSpec, EvalSpec
from eval_pipelines.tracking import RegisteredVersion, Tracker
from eval_pipelines.windows import last_complete_week
from resources import AlertsResource, ArtifactStoreResource, MlflowResource, WarehouseResource

if TYPE_CHECKING:  # what define_asset_job returns; not exported by dagster
    from dagster._core.definitions.unresolved_asset_job_definition import (
        UnresolvedAssetJobDefinition,
    )

TAG_PREFIX = "eval."


class CandidateConfig(Config):
    week: str | None = Field(
        default=None,
        description="Monday starting the evaluated week; unset: the last complete week now.",
    )


@dataclass(frozen=True)
class CandidateAssets:
    spec: EvalSpec
    partitions: DynamicPartitionsDefinition
    asset: AssetsDefinition
    job: "UnresolvedAssetJobDefinition"


def candidate_spec(
    spec: EvalSpec, candidate: RegisteredVersion, champion: RegisteredVersion
) -> EvalSpec:
    """``spec`` comparing the candidate's log version with the champion's.

    Drift then describes the candidate's traffic, whatever ``drift.model_version`` says for the
    weekly run.
    """
    compare = CompareSpec(
        baseline=spec.registry.log_version_of(champion.version, champion.tags),
        candidate=spec.registry.log_version_of(candidate.version, candidate.tags),
    )
    update: dict = {"compare": compare}
    if spec.drift is not None:
        update["drift"] = spec.drift.model_copy(update={"model_version": None})
    return spec.model_copy(update=update)


def build_candidate_assets(spec: EvalSpec) -> CandidateAssets:
    prefix = asset_prefix(spec.model)
    name = spec.registered_model
    partitions = DynamicPartitionsDefinition(name=f"{prefix}__registry_versions")

    @asset(
        key=AssetKey([prefix, "candidate_verdict"]),
        group_name=prefix,
        partitions_def=partitions,
        pool=WAREHOUSE_POOL,
        kinds={"mlflow", "python"},
        owners=list(spec.owners),
        tags={"eval/model": prefix},
        description=(
            f"Each new version of the registered model {name!r} against the version aliased "
            f"{spec.registry.champion_alias!r}, on one week; the verdict is written back to "
            "the model version as eval.* tags. Partitions are registry version numbers."
        ),
    )
    def candidate_verdict(
        context: AssetExecutionContext,
        config: CandidateConfig,
        warehouse: WarehouseResource,
        artifacts: ArtifactStoreResource,
        mlflow: MlflowResource,
        alerts: AlertsResource,
    ) -> Iterator[MaterializeResult]:
        version = int(context.partition_key)
        tracker = mlflow.tracker()
        week = config.week or last_complete_week(datetime.now(UTC))
        try:
            candidate, champion = _versions(tracker, spec, version)
            run_spec = candidate_spec(warehouse.spec_for(spec), candidate, champion)
            key = f"candidates/{version}"
            with warehouse.connect(spec) as connection:
                outcome = run_evaluation(
                    run_spec,
                    week,
                    connection,
                    artifacts.folder(spec.model, key),
                    artifacts.publishing(spec.model, key, tracker, alerts.webhook_url),
                    run_key=f"{spec.model}/registry/{name}/{version}",
                    run_name=f"{spec.model} candidate {name} v{version} ({week})",
                    tags={
                        "dagster.run_id": context.run.run_id,
                        "dagster.job": context.run.job_name,
                        "dagster.partition": str(version),
                        "eval.registered_model": name,
                        "eval.registry_version": str(version),
                        "eval.champion_version": str(champion.version),
                        TRIGGER_TAG: trigger_of(context.run.tags),
                    },
                    log=context.log.info,
                )
        except EvalError as exc:
            tracker.tag_version(
                name,
                version,
                {
                    "eval.verdict": "error",
                    "eval.error": str(exc)[:4000],
                    "eval.week": week,
                    "eval.dagster_run_id": context.run.run_id,
                },
            )
            raise Failure(description=f"{name} version {version}: {exc}") from None
        run_id = outcome.mlflow_run.run_id if outcome.mlflow_run else ""
        tracker.tag_version(
            name,
            version,
            {
                "eval.verdict": outcome.verdict.decision,
                "eval.mlflow_run_id": run_id,
                "eval.report": outcome.report_uri,
                "eval.week": week,
                "eval.champion_version": str(champion.version),
                "eval.dagster_run_id": context.run.run_id,
            },
        )
        context.log.info(
            f"{name} version {version} vs champion {champion.version}, week {week}: "
            f"{outcome.verdict.decision}"
        )
        metadata = asset_metadata(outcome)
        yield MaterializeResult(
            metadata={
                **metadata["verdict"],
                **{k: v for k, v in metadata["metrics"].items() if k != "metrics_file"},
                "significant_regressions": metadata["comparison"]["significant_regressions"],
                "regressions": metadata["comparison"]["regressions"],
                "week": MetadataValue.text(week),
                "champion_version": MetadataValue.int(champion.version),
                "report": metadata["report"]["report"],
                "report_location": metadata["report"]["report_location"],
                "alert": metadata["report"]["alert"],
            }
        )
        if outcome.alert.startswith(ALERT_FAILED):
            # Recorded first (version tags, MLflow run, materialization), then loud: a hold
            # nobody was told about must not look like a successful run.
            raise Failure(description=f"{name} version {version}: alert {outcome.alert}")

    job = define_asset_job(
        name=f"{prefix}__candidate_evaluation",
        selection=[AssetKey([prefix, "candidate_verdict"])],
        description=f"Evaluate one registry version of {name!r} against its champion.",
    )
    return CandidateAssets(spec, partitions, candidate_verdict, job)


def _versions(
    tracker: Tracker, spec: EvalSpec, version: int
) -> tuple[RegisteredVersion, RegisteredVersion]:
    name = spec.registered_model
    versions = {v.version: v for v in tracker.model_versions(name)}
    if version not in versions:
        raise EvalError(f"registered model {name!r} has no version {version}")
    alias = spec.registry.champion_alias
    champion = tracker.alias_version(name, alias)
    if champion is None:
        raise EvalError(
            f"registered model {name!r} has no {alias!r} alias: set it on the version in "
            "production (registry.champion_alias in the spec names the alias)"
        )
    if champion.version == version:
        raise EvalError(f"version {version} of {name!r} is the {alias!r} itself")
    return versions[version], champion
