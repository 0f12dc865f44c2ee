"""MLflow lineage as a Dagster resource: a thin wrapper that builds the engine's Tracker.

Not dagster-mlflow: that resource drives MLflow's global fluent state, which is shared by
every step in a process; the Tracker talks to one ``MlflowClient`` with explicit run ids.
"""

from dagster import ConfigurableResource
from pydantic import Field

from eval_pipelines.runner import local_artifact_location, local_tracking_uri
from eval_pipelines.tracking import (
    HTTP_BACKOFF_FACTOR,
    HTTP_MAX_RETRIES,
    HTTP_TIMEOUT_S,
    Tracker,
)


class MlflowResource(ConfigurableResource):
    """Where evaluation runs and registry tags go."""

    tracking_uri: str | None = Field(
        default=None,
        description=(
            "MLflow tracking URI (http://host:5000, sqlite:///path, ...); unset: a local SQLite "
            "store in out/mlflow/ that `make ui` opens."
        ),
    )
    registry_uri: str | None = Field(default=None, description="Unset: the tracking URI.")
    artifact_location: str | None = Field(
        default=None,
        description=(
            "Artifact location of experiments this pipeline creates (a folder or s3://...); "
            "unset: the server's default, or out/mlflow/artifacts for the local store."
        ),
    )
    experiment_prefix: str = Field(
        default="eval-pipelines", description="Experiments are named <prefix>/<model>."
    )
    http_timeout_s: int = Field(
        default=HTTP_TIMEOUT_S, ge=1, description="Timeout of one HTTP call to the server."
    )
    http_max_retries: int = Field(
        default=HTTP_MAX_RETRIES, ge=0, description="Retries of a failed HTTP call."
    )
    http_backoff_factor: int = Field(
        default=HTTP_BACKOFF_FACTOR,
        ge=0,
        description="Exponential backoff between retries: 0, 2, 4, ... times this (seconds).",
    )

    def tracker(self) -> Tracker:
        bounds = {
            "http_timeout_s": self.http_timeout_s,
            "http_max_retries": self.http_max_retries,
            "http_backoff_factor": self.http_backoff_factor,
        }
        if self.tracking_uri:
            return Tracker(
                self.tracking_uri,
                registry_uri=self.registry_uri,
                experiment_prefix=self.experiment_prefix,
                artifact_location=self.artifact_location,
                **bounds,
            )
        return Tracker(
            local_tracking_uri(),
            registry_uri=self.registry_uri,
            experiment_prefix=self.experiment_prefix,
            artifact_location=self.artifact_location or local_artifact_location(),
            **bounds,
        )
