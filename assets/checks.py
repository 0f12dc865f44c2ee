"""The blocking input check on each evaluation: did the week's data pass its input checks?

The engine refuses to compute metrics on a window that failed a blocking input check (the
evaluation asset then fails with every reason listed), so in a normal run this check reads a
passing ``validation.json`` and records what was checked. It fails, with ERROR severity and so
stopping the verdict, when the file is missing, unreadable, for another week, or not passed:
the verdict is never published from artifacts that do not vouch for their inputs.
"""

import json

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetChecksDefinition,
    AssetCheckSeverity,
    AssetsDefinition,
    MetadataValue,
    asset_check,
)

from assets.metadata import markdown_table
from eval_pipelines.spec import EvalSpec
from eval_pipelines.windows import week_window
from resources import ArtifactStoreResource

CHECK_NAME = "input_checks_passed"


def build_input_check(spec: EvalSpec, evaluation_asset: AssetsDefinition) -> AssetChecksDefinition:
    @asset_check(
        asset=evaluation_asset,
        name=CHECK_NAME,
        blocking=True,
        description=(
            f"Every blocking input check on {spec.model}'s window passed (columns present, "
            "well-formed rows, one label per prediction), per the week's validation.json."
        ),
    )
    def input_checks_passed(
        context: AssetCheckExecutionContext, artifacts: ArtifactStoreResource
    ) -> AssetCheckResult:
        week = _week(context, evaluation_asset)
        if week is None:
            return _failed(f"{evaluation_asset.key.to_user_string()} has no materialized week yet")
        path = artifacts.folder(spec.model, week) / "validation.json"
        try:
            report = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            return _failed(f"cannot read {path}: {exc}", week)
        expected = str(week_window(week))
        if report.get("window") != expected:
            return _failed(f"{path} is for {report.get('window')}, not {expected}", week)
        checks = report.get("checks", [])
        failed = [c for c in checks if not c.get("passed")]
        table = markdown_table(
            ["check", "passed", "blocking", "message"],
            ([c["name"], c["passed"], c.get("blocking", True), c["message"]] for c in checks),
        )
        return AssetCheckResult(
            passed=bool(report.get("passed")),
            severity=AssetCheckSeverity.ERROR,
            description=f"{len(checks) - len(failed)} of {len(checks)} input checks passed",
            metadata={
                "week": MetadataValue.text(week),
                "failed_checks": MetadataValue.int(len(failed)),
                "checks": MetadataValue.md(table),
                "validation_file": MetadataValue.path(str(path)),
            },
        )

    return input_checks_passed


def _week(context: AssetCheckExecutionContext, evaluation_asset: AssetsDefinition) -> str | None:
    """The run's partition; for a check launched on its own, the last materialized week."""
    if context.has_partition_key:
        return context.partition_key
    event = context.instance.get_latest_materialization_event(evaluation_asset.key)
    if event is None or event.asset_materialization is None:
        return None
    return event.asset_materialization.partition


def _failed(message: str, week: str | None = None) -> AssetCheckResult:
    metadata = {"week": MetadataValue.text(week)} if week else {}
    return AssetCheckResult(
        passed=False, severity=AssetCheckSeverity.ERROR, description=message, metadata=metadata
    )
