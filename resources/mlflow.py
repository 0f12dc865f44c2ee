"""MLflow lineage as a Dagster resource: a thin wrapper that builds the engine's Tracker.

Run links in the asset metadata (``mlflow_run``) point at ``ui_url``: by default the
tracking server itself, and for the default local store the MLflow UI that ``make ui``
serves on it (http://127.0.0.1:5000). ``EVAL_MLFLOW_UI_URL`` names another UI; a store with
no UI (another ``sqlite:///`` URI, unset ``EVAL_MLFLOW_UI_URL``) gives the run id as text.

Not dagster-mlflow: that resource drives MLflow's global fluent state, which is shared by
every step in a process; the Tracker talks to one ``MlflowClient`` with explicit run ids.
"""

import os

from dagster import ConfigurableResource
from pydantic import Field

from eval_pipelines.runner import local_artifact_location, local_tracking_uri
from eval_pipelines.tracking import (
    HTTP_BACKOFF_FACTOR,
    HTTP_MAX_RETRIES,
    HTTP_TIMEOUT_S,
    Tracker,
)

# `make ui` serves the default local store here.
LOCAL_UI_URL = "http://127.0.0.1:5000"
UI_URL_ENV = "EVAL_MLFLOW_UI_URL"


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
    ui_url: str | None = Field(
        default=None,
        description=(
            "MLflow UI address for run links (unset: $EVAL_MLFLOW_UI_URL, else the tracking "
            f"server, else {LOCAL_UI_URL} for the local store)."
        ),
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
        ui_url = self.ui_url or os.environ.get(UI_URL_ENV) or None
        if self.tracking_uri:
            return Tracker(
                self.tracking_uri,
                ui_url=ui_url,
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
            ui_url=ui_url or LOCAL_UI_URL,
            **bounds,
        )
