"""Dagster resources wrapping the engine's adapters; configured in ``assets/definitions.py``."""

from resources.alerts import AlertsResource
from resources.artifact_store import ArtifactStoreResource
from resources.mlflow import MlflowResource
from resources.warehouse import WarehouseResource

__all__ = ["AlertsResource", "ArtifactStoreResource", "MlflowResource", "WarehouseResource"]
