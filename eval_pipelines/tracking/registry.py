"""Model Registry lookups and registration (the package docstring of
:mod:`eval_pipelines.tracking`, "Model Registry")."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow.exceptions import MlflowException

from eval_pipelines.tracking.client import _EXISTS, _MISSING, MlflowStore, _local_path
from eval_pipelines.tracking.errors import TrackingError
from eval_pipelines.tracking.naming import _filter_literal
from eval_pipelines.tracking.records import RegisteredVersion

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion


class ModelRegistry(MlflowStore):
    """Registered model versions, their aliases and tags."""

    def _aliases(self, name: str) -> dict[str, list[str]] | None:
        """version -> aliases of registered model ``name``; None if it is not registered."""
        try:
            model = self.client.get_registered_model(name)
        except MlflowException as exc:
            if exc.error_code == _MISSING:
                return None
            raise
        by_version: dict[str, list[str]] = {}
        for alias, version in (model.aliases or {}).items():
            by_version.setdefault(str(version), []).append(alias)
        return by_version

    @staticmethod
    def _record(version: ModelVersion, aliases: Iterable[str]) -> RegisteredVersion:
        return RegisteredVersion(
            name=version.name,
            version=int(version.version),
            status=str(version.status),
            aliases=tuple(sorted(aliases)),
            tags=dict(version.tags or {}),
            run_id=version.run_id or None,
        )

    def model_versions(self, name: str) -> list[RegisteredVersion]:
        """Every version of registered model ``name``, by version; [] if not registered."""
        _filter_literal(name, "registered model name")
        aliases = self._aliases(name)
        if aliases is None:
            return []
        versions: list[ModelVersion] = []
        page_token = None
        while True:
            page = self.client.search_model_versions(
                f"name = '{name}'", max_results=1000, page_token=page_token
            )
            versions.extend(page)
            page_token = page.token
            if not page_token:
                break
        records = [self._record(v, aliases.get(str(v.version), [])) for v in versions]
        return sorted(records, key=lambda record: record.version)

    def alias_version(self, name: str, alias: str) -> RegisteredVersion | None:
        """The version ``alias`` points to; None if the model or the alias does not exist."""
        aliases = self._aliases(name)
        if aliases is None:
            return None
        for version, names in aliases.items():
            if alias in names:
                return self._record(self.client.get_model_version(name, version), names)
        return None

    def tag_version(self, name: str, version: int, tags: Mapping[str, str]) -> None:
        for key, value in sorted(tags.items()):
            self.client.set_model_version_tag(name, str(version), key, str(value))

    def register_version(
        self,
        name: str,
        *,
        source: str,
        tags: Mapping[str, str] | None = None,
        aliases: Sequence[str] = (),
        run_id: str | None = None,
    ) -> RegisteredVersion:
        """Register a new version of ``name`` (created if needed) from ``source``.

        ``source`` is any URI MLflow accepts (``s3://...``, ``runs:/RUN/path`` with
        ``run_id``, ...). A local folder or file (path or ``file:`` URI) is uploaded first as
        the artifact ``model`` of a run in ``{prefix}/registry`` (module docstring). Each of
        ``aliases`` is moved to the new version.
        """
        try:
            self.client.create_registered_model(name)
        except MlflowException as exc:
            if exc.error_code != _EXISTS:
                raise
        local = _local_path(source)
        if local is not None:
            if not local.exists():
                raise TrackingError(f"register {name}: source {source} does not exist")
            source, run_id = self._upload_source(name, local)
        created = self.client.create_model_version(
            name,
            source,
            run_id=run_id,
            tags={k: str(v) for k, v in (tags or {}).items()},
        )
        for alias in aliases:
            self.client.set_registered_model_alias(name, alias, str(created.version))
        version = self.client.get_model_version(name, str(created.version))
        return self._record(version, (self._aliases(name) or {}).get(str(version.version), []))

    def _upload_source(self, name: str, local: Path) -> tuple[str, str]:
        experiment_id = self._experiment(f"{self.experiment_prefix}/registry")
        run = self.client.create_run(
            experiment_id,
            run_name=f"register {name}",
            tags={"eval.kind": "registration", "eval.registered_model": name},
        )
        run_id = run.info.run_id
        if local.is_dir():
            self.client.log_artifacts(run_id, str(local), "model")
        else:
            self.client.log_artifact(run_id, str(local), "model")
        self.client.set_terminated(run_id, "FINISHED")
        return f"runs:/{run_id}/model", run_id
