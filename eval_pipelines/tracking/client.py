"""The MLflow client a tracker talks through: one store (tracking server or local store),
its experiments, run links and batched writes. :class:`~eval_pipelines.tracking.Tracker`
builds on it."""

from __future__ import annotations

import logging
import urllib.parse
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)
from mlflow.tracking import MlflowClient

from eval_pipelines.tracking.errors import (
    HTTP_BACKOFF_FACTOR,
    HTTP_MAX_RETRIES,
    HTTP_TIMEOUT_S,
    _scrub_text,
    configure_http,
    describe_uri,
)
from eval_pipelines.tracking.naming import _cut
from eval_pipelines.tracking.schema import (
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    MAX_METRICS_PER_BATCH,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VALUE,
)

_log = logging.getLogger(__name__)

_MISSING = ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)
_EXISTS = ErrorCode.Name(RESOURCE_ALREADY_EXISTS)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _is_http(uri: str) -> bool:
    return urllib.parse.urlparse(uri).scheme in ("http", "https")


def _local_path(source: str) -> Path | None:
    """The local file or folder ``source`` names (a path or ``file:`` URI), else None."""
    parsed = urllib.parse.urlparse(source)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.path))
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and source[1:3] in (":\\", ":/")):
        return Path(source)
    return None


def _artifact_uri(location: str | None) -> str | None:
    """A folder path becomes an absolute ``file:`` URI; URIs (s3://, file:) pass unchanged."""
    if location is None:
        return None
    if _local_path(location) is not None and urllib.parse.urlparse(location).scheme != "file":
        return Path(location).expanduser().resolve().as_uri()
    return location


def _prepare_sqlite_store(uri: str) -> None:
    """Create or migrate a local SQLite store under an exclusive file lock.

    MLflow creates and migrates the tables on a store's first use; parallel runs starting on a
    new store raced in those migrations ("table ... already exists", alembic "expected to match
    one row"). After this, concurrent writers only meet SQLite's busy timeout.
    """
    if not uri.startswith("sqlite:///"):
        return
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock, MLflow's own behaviour
        return
    database = Path(urllib.parse.unquote(uri.removeprefix("sqlite:///")).split("?")[0])
    database.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{database}.init-lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            MlflowClient(tracking_uri=uri, registry_uri=uri)._tracking_client.store  # noqa: B018
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


class MlflowStore:
    """One MLflow tracking server or local store: experiments, run links, batched writes."""

    def __init__(
        self,
        tracking_uri: str,
        *,
        registry_uri: str | None = None,
        experiment_prefix: str = "eval-pipelines",
        artifact_location: str | None = None,
        http_timeout_s: int = HTTP_TIMEOUT_S,
        http_max_retries: int = HTTP_MAX_RETRIES,
        http_backoff_factor: int = HTTP_BACKOFF_FACTOR,
        ui_url: str | None = None,
    ) -> None:
        configure_http(
            timeout_s=http_timeout_s,
            max_retries=http_max_retries,
            backoff_factor=http_backoff_factor,
        )
        self.tracking_uri = tracking_uri
        self.host = describe_uri(tracking_uri)  # for messages: never credentials
        _prepare_sqlite_store(tracking_uri)
        self.registry_uri = registry_uri or tracking_uri
        self.experiment_prefix = experiment_prefix.rstrip("/")
        self.artifact_location = _artifact_uri(artifact_location)
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=self.registry_uri)
        # Run links: the UI serving this store; a server's own URL by default. A local store
        # has no UI unless one is named (e.g. `make ui`'s http://127.0.0.1:5000).
        self.ui_url = ui_url or (tracking_uri if _is_http(tracking_uri) else None)
        self._experiments: dict[str, str] = {}

    # ------------------------------------------------------------------------ experiments
    def experiment_name(self, model: str) -> str:
        return f"{self.experiment_prefix}/{model}"

    def experiment_id(self, model: str) -> str:
        """The id of ``{prefix}/{model}``, creating it (or restoring it if deleted)."""
        return self._experiment(self.experiment_name(model))

    def _experiment(self, name: str) -> str:
        if name in self._experiments:
            return self._experiments[name]
        experiment = self.client.get_experiment_by_name(name)
        if experiment is None:
            try:
                experiment_id = self.client.create_experiment(
                    name,
                    artifact_location=self.artifact_location,
                    tags={EXPERIMENT_KIND_TAG: EXPERIMENT_KIND},
                )
            except MlflowException as exc:  # created concurrently by another step
                if exc.error_code != _EXISTS:
                    raise
                experiment = self.client.get_experiment_by_name(name)
                if experiment is None:
                    raise
                experiment_id = experiment.experiment_id
        if experiment is not None:
            experiment_id = experiment.experiment_id
            if experiment.lifecycle_stage == "deleted":
                # The name stays taken until MLflow's garbage collection; tracking into it is
                # an explicit wish (the caller configured this prefix), so bring it back.
                _log.warning("restoring the deleted MLflow experiment %r", name)
                self.client.restore_experiment(experiment_id)
            if EXPERIMENT_KIND_TAG not in (experiment.tags or {}):
                # An experiment made before this rule (or by hand): open it on runs too. A
                # kind someone chose in the UI is kept.
                self.client.set_experiment_tag(experiment_id, EXPERIMENT_KIND_TAG, EXPERIMENT_KIND)
        self._experiments[name] = experiment_id
        return experiment_id

    def _run_url(self, experiment_id: str, run_id: str) -> str | None:
        if not self.ui_url:
            return None
        base = _scrub_text(self.ui_url).rstrip("/")  # no user:password@ in links
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}"

    # ------------------------------------------------------------------------ batched writes
    def _log_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        entries = [RunTag(k, _cut(str(v), MAX_TAG_VALUE)) for k, v in sorted(tags.items())]
        for chunk in _chunks(entries, MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(run_id, tags=list(chunk))

    def _log_metrics(
        self, run_id: str, metrics: Mapping[str, float], step: int, timestamp: int
    ) -> None:
        entries = [Metric(key, value, timestamp, step) for key, value in metrics.items()]
        for chunk in _chunks(entries, MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=list(chunk))
