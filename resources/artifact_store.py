"""Where a run's artifacts live: ``<root>/<model>/<key>/``, on disk or on S3.

Every run writes its folder locally first, atomically (the engine's ``write_artifacts``).
With an ``s3://bucket/prefix`` root the local folder is a staging copy under ``staging`` and
the run then publishes it to ``s3://bucket/prefix/<model>/<key>/`` through boto3
(credentials from the environment; ``endpoint_url`` for S3-compatible stores). Frames never
travel through an IO manager.
"""

from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field

from eval_pipelines.decisions import results_store_url
from eval_pipelines.runner import Publishing
from eval_pipelines.tracking import Tracker


class ArtifactStoreResource(ConfigurableResource):
    """A folder, or an S3 prefix, of per-model, per-week artifact folders."""

    root: str = Field(
        default="out/dagster",
        description="Folder (relative to the cwd) or s3://bucket/prefix holding <model>/<week>/.",
    )
    staging: str = Field(
        default="out/dagster-staging",
        description="Local folder for the copies of runs published to an s3:// root.",
    )
    endpoint_url: str | None = Field(
        default=None,
        description="S3 endpoint of an S3-compatible store (MinIO, moto); unset: AWS.",
    )
    results_store: str | None = Field(
        default=None,
        description="SQLAlchemy URL of the results store holding the decision log (never "
        "the warehouse); unset: $EVAL_RESULTS_STORE_URL, else duckdb:///out/results.duckdb.",
    )

    @property
    def on_s3(self) -> bool:
        return self.root.startswith("s3://")

    def folder(self, model: str, key: str) -> Path:
        """The local artifact folder of ``model`` for ``key`` (a week, or candidates/<v>)."""
        base = Path(self.staging) if self.on_s3 else Path(self.root)
        return base / model / key

    def s3_url(self, model: str, key: str) -> str | None:
        """Where the folder is published, or None for a local root."""
        if not self.on_s3:
            return None
        return f"{self.root.rstrip('/')}/{model}/{key}"

    def publishing(
        self, model: str, key: str, tracker: Tracker, webhook_url: str | None
    ) -> Publishing:
        """Where a run of ``model`` for ``key`` goes besides its local folder."""
        return Publishing(
            tracker=tracker,
            s3_url=self.s3_url(model, key),
            s3_endpoint_url=self.endpoint_url,
            webhook_url=webhook_url,
            results_store=results_store_url(self.results_store),
        )
