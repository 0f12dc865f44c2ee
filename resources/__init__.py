"""Dagster resources wrapping the engine's adapters; configured in ``assets/definitions.py``."""

from resources.artifact_store import ArtifactStoreResource
from resources.warehouse import WarehouseResource

__all__ = ["ArtifactStoreResource", "WarehouseResource"]
