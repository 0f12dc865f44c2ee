"""MLflow lineage as a Dagster resource: a thin wrapper that builds the engine's Tracker.

Not dagster-mlflow: that resource drives MLflow's global fluent state, which is shared by
every step in a process; the Tracker talks to one ``MlflowClient`` with explicit run ids.
"""

from dagster import ConfigurableResource
from pydantic import Field

from eval_pipelines.runner import local_artifact_location, local_tracking_uri
from eval_pipelines.tracking import Tracker


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

    def tracker(self) -> Tracker:
        if self.tracking_uri:
            return Tracker(
                self.tracking_uri,
                registry_uri=self.registry_uri,
                experiment_prefix=self.experiment_prefix,
                artifact_location=self.artifact_location,
            )
        return Tracker(
            local_tracking_uri(),
            registry_uri=self.registry_uri,
            experiment_prefix=self.experiment_prefix,
            artifact_location=self.artifact_location or local_artifact_location(),
        )
