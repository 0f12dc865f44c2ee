"""Per-model assets: one asset group per spec, partitioned by week.

``<model>__evaluation`` validates the week's data and computes metrics, the paired comparison,
drift and the verdict with the same engine calls as ``eval-pipelines run``, then writes the
artifacts to ``<root>/<model>/<week>/``. ``<model>__verdict`` publishes that week's decision.
The frames stay on disk as Parquet; the assets return only metadata.

No ``from __future__ import annotations`` here: Dagster reads the context and resource
annotations at definition time (see the field notes).
"""

import time
from dataclasses import dataclass

from dagster import (
    AssetChecksDefinition,
    AssetExecutionContext,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from assets.checks import build_input_check
from assets.metadata import headline_metrics, label_coverage, markdown_table
from assets.partitions import weekly_partitions
from assets.specs import asset_prefix
from eval_pipelines.artifacts import read_verdict, write_artifacts
from eval_pipelines.errors import EvalError, ValidationFailed
from eval_pipelines.gates import PASS
from eval_pipelines.pipeline import evaluate
from eval_pipelines.spec import EvalSpec
from resources import ArtifactStoreResource, WarehouseResource

WAREHOUSE_POOL = "warehouse"


@dataclass(frozen=True)
class ModelAssets:
    """What one spec contributes to the code location."""

    evaluation: AssetsDefinition
    verdict: AssetsDefinition
    input_check: AssetChecksDefinition

    @property
    def assets(self) -> list[AssetsDefinition]:
        return [self.evaluation, self.verdict]


def build_model_assets(spec: EvalSpec) -> ModelAssets:
    prefix = asset_prefix(spec.model)
    evaluation_asset = _evaluation_asset(spec, prefix)
    return ModelAssets(
        evaluation=evaluation_asset,
        verdict=_verdict_asset(spec, prefix, evaluation_asset),
        input_check=build_input_check(spec, evaluation_asset),
    )


def _evaluation_asset(spec: EvalSpec, prefix: str) -> AssetsDefinition:
    compare = f"{spec.compare.candidate} vs {spec.compare.baseline}" if spec.compare else "none"

    @asset(
        name=f"{prefix}__evaluation",
        group_name=prefix,
        partitions_def=weekly_partitions,
        kinds={"duckdb", "python"},
        pool=WAREHOUSE_POOL,
        description=(
            f"Input checks, sliced metrics with confidence intervals, paired comparison "
            f"({compare}), drift and the verdict for {spec.model}, one week per partition. "
            "Artifacts (Parquet, JSON, report.md) go to <artifacts root>/"
            f"{spec.model}/<week>/."
        ),
        metadata={"spec_hash": spec.fingerprint()[:12]},
    )
    def evaluation(
        context: AssetExecutionContext,
        warehouse: WarehouseResource,
        artifacts: ArtifactStoreResource,
    ) -> MaterializeResult:
        week = context.partition_key
        run_spec = warehouse.spec_for(spec)
        started = time.perf_counter()
        try:
            with warehouse.connect(spec) as connection:
                result = evaluate(run_spec, week, connection)
        except ValidationFailed as exc:
            raise Failure(
                description=str(exc),
                metadata={"failed_checks": MetadataValue.md(_bullets(exc.failures))},
                allow_retries=False,
            ) from None
        except EvalError as exc:
            raise Failure(description=str(exc)) from None
        verdict = result.decide()
        folder = write_artifacts(result, verdict, artifacts.folder(spec.model, week))
        context.log.info(f"{spec.model} week {week}: {verdict.decision}; artifacts in {folder}")
        fingerprint = result.fingerprint
        return MaterializeResult(
            metadata={
                "rows": MetadataValue.int(int(fingerprint["rows"])),
                "labeled_rows": MetadataValue.int(int(fingerprint["labeled_rows"])),
                "label_coverage": MetadataValue.float(label_coverage(fingerprint)),
                **{k: MetadataValue.float(v) for k, v in headline_metrics(result).items()},
                "metric_rows": MetadataValue.int(len(result.metrics)),
                "data_fingerprint": MetadataValue.text(str(fingerprint["content_hash"])),
                "rows_per_version": MetadataValue.json(dict(fingerprint["versions"])),
                "window": MetadataValue.text(str(result.window)),
                "artifacts": MetadataValue.path(str(folder)),
                "elapsed_s": MetadataValue.float(round(time.perf_counter() - started, 3)),
            }
        )

    return evaluation


def _verdict_asset(
    spec: EvalSpec, prefix: str, evaluation_asset: AssetsDefinition
) -> AssetsDefinition:
    @asset(
        name=f"{prefix}__verdict",
        group_name=prefix,
        partitions_def=weekly_partitions,
        deps=[evaluation_asset],
        kinds={"python"},
        description=(
            f"The release decision for {spec.model} (ship, hold or inconclusive, failing "
            "closed) with every reason that did not pass, read from the week's verdict.json."
        ),
    )
    def verdict(
        context: AssetExecutionContext, artifacts: ArtifactStoreResource
    ) -> MaterializeResult:
        week = context.partition_key
        folder = artifacts.folder(spec.model, week)
        if not folder.is_dir():
            raise Failure(
                description=(
                    f"no artifacts for week {week} in {folder}; materialize "
                    f"{evaluation_asset.key.to_user_string()} for {week} first"
                )
            )
        try:
            decision = read_verdict(folder)
        except EvalError as exc:
            raise Failure(description=str(exc)) from None
        if decision.get("window") != week:
            raise Failure(
                description=(
                    f"{folder / 'verdict.json'} is for week {decision.get('window')!r}, not "
                    f"{week}; re-materialize {evaluation_asset.key.to_user_string()} for {week}"
                )
            )
        reasons = decision.get("reasons", [])
        open_reasons = [r for r in reasons if r["outcome"] != PASS]
        table = markdown_table(
            ["outcome", "gate", "slice / feature", "message"],
            (
                [r["outcome"], r["gate"], r.get("slice") or r.get("feature"), r["message"]]
                for r in open_reasons
            ),
        )
        return MaterializeResult(
            metadata={
                "decision": MetadataValue.text(str(decision["decision"])),
                "holding_reasons": MetadataValue.int(
                    sum(1 for r in reasons if r["outcome"] == "hold")
                ),
                "inconclusive_reasons": MetadataValue.int(
                    sum(1 for r in reasons if r["outcome"] == "inconclusive")
                ),
                "passed_reasons": MetadataValue.int(len(reasons) - len(open_reasons)),
                "reasons": MetadataValue.md(table if open_reasons else "Every gate passed."),
                "candidate": MetadataValue.text(str(decision.get("candidate"))),
                "baseline": MetadataValue.text(str(decision.get("baseline"))),
                "verdict_file": MetadataValue.path(str(folder / "verdict.json")),
            }
        )

    return verdict


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)
