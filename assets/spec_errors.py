"""A spec that does not load is one red asset, not a missing code location.

Each broken spec file becomes ``<file stem>/spec_error`` in the group ``<file stem>``: its
description is the engine's SpecError message (visible in the catalog as soon as the
definitions load, nothing has to run), and its check ``spec_loads`` fails with ERROR severity
and that message whenever the asset is materialized ("Materialize", or the group's
"Materialize all"); the step then fails with the same message. Nothing else of the model
exists until the file is fixed; the other models are untouched. Why an error asset with a
check rather than a check on some other asset: ``docs/architecture.md``.

No ``from __future__ import annotations`` here (Dagster reads the annotations).
"""

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetKey,
    AssetsDefinition,
    Failure,
    MetadataValue,
    asset,
)

from assets.specs import SpecProblem

ERROR_ASSET = "spec_error"
CHECK_NAME = "spec_loads"


def spec_error_key(problem: SpecProblem) -> AssetKey:
    return AssetKey([problem.name, ERROR_ASSET])


def build_spec_error_asset(problem: SpecProblem) -> AssetsDefinition:
    key = spec_error_key(problem)
    metadata = {
        "spec_file": MetadataValue.path(str(problem.path)),
        "error": MetadataValue.text(problem.message),
    }

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
