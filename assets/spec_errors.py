"""A spec that does not load is one red asset, not a missing code location.

Each broken spec file becomes ``<file stem>/spec_error`` in the group ``<file stem>``: its
description is the engine's SpecError message (visible in the catalog as soon as the
definitions load), and its check ``spec_loads`` fails with ERROR severity and that message.
Nothing has to be run for the check to turn red: the ``spec_errors_sensor`` (on by default)
reports the failed evaluation on its first tick, and again whenever the set of errors
changes. Materializing the asset ("Materialize", or the group's "Materialize all") reports
the same failed check and fails the step with the message. Nothing else of the model exists
until the file is fixed; the other models are untouched. Why an error asset with a check
rather than a check on some other asset: ``docs/architecture.md``.

No ``from __future__ import annotations`` here (Dagster reads the annotations).
"""

import hashlib
import json

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    DefaultSensorStatus,
    Failure,
    MetadataValue,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    sensor,
)

from assets.specs import SpecProblem

ERROR_ASSET = "spec_error"
CHECK_NAME = "spec_loads"
SENSOR_NAME = "spec_errors_sensor"


def spec_error_key(problem: SpecProblem) -> AssetKey:
    return AssetKey([problem.name, ERROR_ASSET])


def _metadata(problem: SpecProblem) -> dict[str, MetadataValue]:
    return {
        "spec_file": MetadataValue.path(str(problem.path)),
        "error": MetadataValue.text(problem.message),
    }


def _failed_check(problem: SpecProblem) -> AssetCheckEvaluation:
    return AssetCheckEvaluation(
        asset_key=spec_error_key(problem),
        check_name=CHECK_NAME,
        passed=False,
        severity=AssetCheckSeverity.ERROR,
        description=problem.message,
        metadata=_metadata(problem),
    )


def build_spec_error_asset(problem: SpecProblem) -> AssetsDefinition:
    key = spec_error_key(problem)
    metadata = _metadata(problem)

    @asset(
        key=key,
        group_name=problem.name,
        description=(
            f"The spec {problem.path.name} could not be loaded, so its model has no assets "
            f"until it is fixed: {problem.message}"
        ),
        metadata=metadata,
        tags={"eval/spec_error": "true"},
        check_specs=[
            AssetCheckSpec(
                CHECK_NAME,
                asset=key,
                blocking=True,
                description=f"{problem.path.name} loads as a model spec.",
            )
        ],
    )
    def spec_error(context: AssetExecutionContext):
        yield AssetCheckResult(
            asset_key=key,
            check_name=CHECK_NAME,
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=problem.message,
            metadata=metadata,
        )
        raise Failure(description=problem.message, metadata=metadata)

    return spec_error


def build_spec_errors_sensor(problems: list[SpecProblem]):
    """Reports each broken spec's ``spec_loads`` check as failed, without a run: on the first
    tick and whenever the errors change (the cursor is a digest of them), so the UI shows
    them red as soon as the code location loads, once per change rather than every tick."""
    digest = hashlib.sha256(
        json.dumps(sorted((p.name, p.message) for p in problems)).encode()
    ).hexdigest()

    @sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        description=(
            "Marks the spec_loads check of each <spec>/spec_error asset as failed with the "
            "spec's error, so broken specs show in red without running anything."
        ),
    )
    def spec_errors_sensor(context: SensorEvaluationContext):
        if context.cursor == digest:
            return SkipReason(f"{len(problems)} broken spec(s) already reported")
        return SensorResult(
            asset_events=[_failed_check(problem) for problem in problems], cursor=digest
        )

    return spec_errors_sensor
