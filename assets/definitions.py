"""The code location: one asset group per model spec, the weekly job and its schedule.

Loaded by ``workspace.yaml`` (``dagster dev -w workspace.yaml``). Resources are chosen here,
once, from the environment:

* ``EVAL_WAREHOUSE_URL``: the warehouse for every model (unset: each spec's ``warehouse``).
* ``EVAL_ARTIFACTS_ROOT``: where ``<model>/<week>/`` artifact folders go (unset: out/dagster).
* ``EVAL_SPECS_DIR``: the folder of model specs (unset: the project's ``evals/``).
"""

import os

from dagster import Definitions, EnvVar

from assets.factory import build_model_assets
from assets.jobs import weekly_evaluation_job, weekly_evaluation_schedule
from assets.specs import load_specs
from resources import ArtifactStoreResource, WarehouseResource


def _warehouse() -> WarehouseResource:
    if os.environ.get("EVAL_WAREHOUSE_URL"):
        return WarehouseResource(url=EnvVar("EVAL_WAREHOUSE_URL"))
    return WarehouseResource()


def _artifact_store() -> ArtifactStoreResource:
    if os.environ.get("EVAL_ARTIFACTS_ROOT"):
        return ArtifactStoreResource(root=EnvVar("EVAL_ARTIFACTS_ROOT"))
    return ArtifactStoreResource()


def build_definitions() -> Definitions:
    models = [build_model_assets(spec) for spec in load_specs()]
    return Definitions(
        assets=[a for m in models for a in m.assets],
        asset_checks=[m.input_check for m in models],
        resources={"warehouse": _warehouse(), "artifacts": _artifact_store()},
        jobs=[weekly_evaluation_job],
        schedules=[weekly_evaluation_schedule],
    )


defs = build_definitions()
