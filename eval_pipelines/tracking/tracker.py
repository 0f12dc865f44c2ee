"""The :class:`Tracker`: evaluation runs started, published and failed (the package
docstring of :mod:`eval_pipelines.tracking`)."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from mlflow.entities import DatasetInput, InputTag, Param, Run, ViewType

from eval_pipelines.tracking.client import _chunks
from eval_pipelines.tracking.errors import TrackingError, _reason
from eval_pipelines.tracking.naming import _cut, _filter_literal, _week_point, week_run_key
from eval_pipelines.tracking.payloads import (
    cost_metrics,
    evaluation_metrics,
    evaluation_tables,
    evaluation_tags,
    results_digest,
    spec_params,
    window_dataset,
)
from eval_pipelines.tracking.records import TrackedRun
from eval_pipelines.tracking.registry import ModelRegistry
from eval_pipelines.tracking.schema import (
    _CALLER_SYSTEM_TAGS,
    _OWN_TAGS,
    _RUN_STATE_TAGS,
    ERROR_TAG,
    KIND_TAG,
    LOGGED_ARTIFACTS_TAG,
    MAX_PARAMS_TAGS_PER_BATCH,
    MAX_TAG_VALUE,
    PARAM_CONFLICTS_TAG,
    PARENT_RUN_TAG,
    PUBLISH_COUNT_TAG,
    RESULTS_CHANGED,
    RESULTS_DIGEST_TAG,
    RUN_KEY_TAG,
    SPEC_HASH_TAG,
    SUPERSEDED_BY_TAG,
    SUPERSEDED_REASON_TAG,
    SUPERSEDED_TAG,
    SUPERSEDES_TAG,
)
from eval_pipelines.tracking.trend import TrendRuns

if TYPE_CHECKING:
    from eval_pipelines.gates import Verdict
    from eval_pipelines.pipeline import Evaluation

_log = logging.getLogger(__name__)


def _results_changed(run: Run, digest: str) -> bool:
    """Whether publishing results with ``digest`` into ``run`` would change its numbers: it
    holds another digest, or metrics without one (an older layout)."""
    logged = run.data.tags.get(RESULTS_DIGEST_TAG)
    if logged is None:
        return bool(run.data.metrics)
    return logged != digest


class Tracker(TrendRuns, ModelRegistry):
    """Evaluation runs and model versions in one MLflow tracking server or local store."""

    # ------------------------------------------------------------------------------ runs
    def _current_run(self, run_key: str, experiment_id: str) -> Run | None:
        """The newest non-deleted run tagged ``run_key`` that is not superseded, if any."""
        page_token = None
        while True:
            page = self.client.search_runs(
                [experiment_id],
                filter_string=f"tags.`{RUN_KEY_TAG}` = '{run_key}'",
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=100,
                order_by=["attributes.start_time DESC"],
                page_token=page_token,
            )
            for run in page:
                if run.data.tags.get(SUPERSEDED_TAG) != "true":
                    return run
            page_token = page.token
            if not page_token:
                return None

    def find_run(self, run_key: str, *, model: str) -> TrackedRun | None:
        """The current run of ``run_key`` in ``model``'s experiment: the newest non-deleted
        run carrying the key and not tagged ``eval.superseded = true``; None if there is none.
        """
        _filter_literal(run_key, "run_key")
        experiment_id = self.experiment_id(model)
        run = self._current_run(run_key, experiment_id)
        if run is None:
            return None
        run_id = run.info.run_id
        return TrackedRun(run_id, experiment_id, self._run_url(experiment_id, run_id))

    def start(
        self,
        run_key: str,
        *,
        model: str,
        run_name: str,
        tags: Mapping[str, str],
        spec_hash: str | None = None,
    ) -> TrackedRun:
        """Get-or-create the current run of ``run_key`` in the model's experiment and mark it
        RUNNING.

        A reused run (a retried or re-run step) gets ``tags`` and ``run_name`` again and loses
        the ``eval.error`` of a previous failed attempt. With ``spec_hash``, a current run
        whose ``eval.spec_hash`` differs is superseded by a new run instead (module
        docstring); the returned run's ``superseded`` names the replaced run. Two concurrent
        first starts of the same key can create two runs; :meth:`find_run` then returns the
        newer one.
        """
        all_tags = {
            **self._caller_tags(tags),
            RUN_KEY_TAG: run_key,
            "eval.model": model,
            SUPERSEDED_TAG: "false",
        }
        if spec_hash is not None:
            all_tags[SPEC_HASH_TAG] = str(spec_hash)
        _filter_literal(run_key, "run_key")
        experiment_id = self.experiment_id(model)
        week = tags.get("eval.week")
        if week is not None and run_key == week_run_key(model, week):
            all_tags[KIND_TAG] = "week"
            # Nested at once when the trend run exists; the first publish creates it (so a
            # store where nothing was published yet holds no empty trend run).
            trends = self._trend_runs(model, experiment_id)
            if trends:
                all_tags[PARENT_RUN_TAG] = trends[0].info.run_id
        existing = self._current_run(run_key, experiment_id)
        if existing is None:
            return self._create(experiment_id, run_name, all_tags)
        old_id = existing.info.run_id
        old_hash = existing.data.tags.get(SPEC_HASH_TAG)
        if spec_hash is not None and old_hash and old_hash != spec_hash:
            created = self._create(
                experiment_id, run_name, {**all_tags, SUPERSEDES_TAG: old_id}, superseded=old_id
            )
            self._log_tags(old_id, {SUPERSEDED_TAG: "true", SUPERSEDED_BY_TAG: created.run_id})
            _log.info(
                "MLflow run %s of %r has spec hash %s; spec hash %s starts run %s, "
                "and %s is tagged %s=%s",
                old_id,
                run_key,
                old_hash[:12],
                str(spec_hash)[:12],
                created.run_id,
                old_id,
                SUPERSEDED_BY_TAG,
                created.run_id,
            )
            return created
        self._log_tags(old_id, all_tags)
        if ERROR_TAG in existing.data.tags:
            self.client.delete_tag(old_id, ERROR_TAG)
        self.client.update_run(old_id, status="RUNNING", name=run_name)
        return TrackedRun(old_id, experiment_id, self._run_url(experiment_id, old_id))

    def _create(
        self,
        experiment_id: str,
        run_name: str,
        tags: Mapping[str, str],
        *,
        superseded: str | None = None,
    ) -> TrackedRun:
        created = self.client.create_run(experiment_id, run_name=run_name, tags=dict(tags))
        run_id = created.info.run_id
        return TrackedRun(
            run_id, experiment_id, self._run_url(experiment_id, run_id), superseded=superseded
        )

    @staticmethod
    def _caller_tags(tags: Mapping[str, str]) -> dict[str, str]:
        for key in tags:
            if key.startswith("mlflow.") and key not in _CALLER_SYSTEM_TAGS:
                raise ValueError(f"tag {key!r}: keys starting with 'mlflow.' are MLflow's own")
            if key in _OWN_TAGS:
                raise ValueError(f"tag {key!r} is set by the tracker (run key, spec hash)")
        return {key: _cut(str(value), MAX_TAG_VALUE) for key, value in tags.items()}

    # ------------------------------------------------------------------------- publishing
    def publish(
        self, run: TrackedRun, evaluation: Evaluation, verdict: Verdict, folder: Path
    ) -> TrackedRun:
        """Log params, tags, headline metrics, tables, the window dataset and ``folder``,
        update the model's trend run (week runs); then FINISHED. Returns the run published
        to: ``run``, or the run replacing it when the week's results changed (module
        docstring, "One point per week").

        On any error that run is marked FAILED (tag ``eval.error``) and the error re-raised.
        """
        folder = Path(folder)
        target = run
        try:
            if not folder.is_dir():
                raise TrackingError(f"artifact folder {folder} does not exist")
            metrics = evaluation_metrics(evaluation)
            tables = evaluation_tables(evaluation)
            digest = results_digest(metrics, tables)
            current = self.client.get_run(run.run_id)
            if _results_changed(current, digest):
                target = self._replace(run, current)
                current = self.client.get_run(target.run_id)
            trend_id = self._publish(
                target, current, evaluation, verdict, folder, metrics, tables, digest
            )
            if trend_id is not None:
                trend_url = self._run_url(target.experiment_id, trend_id)
                target = replace(target, trend_url=trend_url)
        except BaseException as exc:
            try:
                self.fail(target, f"publish failed: {type(exc).__name__}: {_reason(exc)}")
            except Exception as again:  # the original error matters more than this one
                _log.warning(
                    "could not mark MLflow run %s as FAILED at %s: %s",
                    target.run_id,
                    self.host,
                    _reason(again),
                )
            raise
        return target

    def _replace(self, run: TrackedRun, current: Run) -> TrackedRun:
        """A new run for ``run``'s key with its tags; ``run`` is tagged superseded (results
        changed) and deleted. Created first, so a fault in between leaves the new run current.
        """
        old_id = run.run_id
        tags = {
            key: value
            for key, value in current.data.tags.items()
            if key not in _RUN_STATE_TAGS
            and (not key.startswith("mlflow.") or key in _CALLER_SYSTEM_TAGS | {PARENT_RUN_TAG})
        }
        run_name = tags.pop("mlflow.runName", None)
        tags |= {SUPERSEDES_TAG: old_id, SUPERSEDED_TAG: "false"}
        created = self._create(run.experiment_id, run_name, tags, superseded=old_id)
        self._log_tags(
            old_id,
            {
                SUPERSEDED_TAG: "true",
                SUPERSEDED_BY_TAG: created.run_id,
                SUPERSEDED_REASON_TAG: RESULTS_CHANGED,
            },
        )
        self.client.set_terminated(old_id, "FINISHED")  # it holds an earlier publish
        self.client.delete_run(old_id)
        _log.info(
            "the results of MLflow run %s (%s) changed: run %s replaces it; %s is deleted",
            old_id,
            current.data.tags.get(RUN_KEY_TAG),
            created.run_id,
            old_id,
        )
        return created

    def _publish(
        self,
        run: TrackedRun,
        current_run: Run,
        evaluation: Evaluation,
        verdict: Verdict,
        folder: Path,
        metrics: Mapping[str, float],
        tables: Mapping[str, str],
        digest: str,
    ) -> str | None:
        """Everything of one publish; returns the trend run's id for a week run."""
        current = current_run.data
        publish_count = int(current.tags.get(PUBLISH_COUNT_TAG, "0") or 0)

        params, conflicts = {}, {}
        for key, value in spec_params(evaluation).items():
            logged = current.params.get(key)
            if logged is None:
                params[key] = value
            elif logged != value:
                conflicts[key] = value
        for chunk in _chunks([Param(k, v) for k, v in params.items()], MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(run.run_id, params=list(chunk))

        tags = evaluation_tags(evaluation, verdict)
        tags[PUBLISH_COUNT_TAG] = str(publish_count + 1)
        tags[RESULTS_DIGEST_TAG] = digest
        if conflicts:
            _log.warning(
                "MLflow run %s: params %s were logged with other values by an earlier attempt; "
                "MLflow keeps the first values, the current ones are in the tag %s",
                run.run_id,
                ", ".join(sorted(conflicts)),
                PARAM_CONFLICTS_TAG,
            )
            tags[PARAM_CONFLICTS_TAG] = json.dumps(conflicts, sort_keys=True)
        elif PARAM_CONFLICTS_TAG in current.tags:
            self.client.delete_tag(run.run_id, PARAM_CONFLICTS_TAG)
        self._log_tags(run.run_id, tags)

        step, timestamp = _week_point(evaluation.window.start)
        self._log_metrics(run.run_id, metrics, step, timestamp)
        self._log_metrics(run.run_id, cost_metrics(evaluation), step, timestamp)
        self._log_tables(run.run_id, tables, current.tags.get(LOGGED_ARTIFACTS_TAG))

        dataset = window_dataset(evaluation)
        context = InputTag(key="mlflow.data.context", value="evaluation")
        self.client.log_inputs(run.run_id, datasets=[DatasetInput(dataset, tags=[context])])

        self.client.log_artifacts(run.run_id, str(folder))
        trend_id = None
        if current.tags.get(KIND_TAG) == "week":
            model, week = evaluation.spec.model, evaluation.window.label
            trend_id = self._update_trend(run, model, week, metrics, digest)
        self.client.set_terminated(run.run_id, "FINISHED")
        return trend_id

    def _log_tables(self, run_id: str, tables: Mapping[str, str], listed: str | None) -> None:
        """Write the tables as ``MlflowClient.log_table`` does, but replacing the files:
        log_table appends rows to an existing table, which a same-results re-publish would
        duplicate. The run's ``mlflow.loggedArtifacts`` lists them as tables for the UI."""
        with tempfile.TemporaryDirectory() as tmp:
            for path, text in tables.items():
                target = Path(tmp, *path.split("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)
            self.client.log_artifacts(run_id, tmp)
        entries = json.loads(listed or "[]")
        wanted = entries + [
            {"path": path, "type": "table"}
            for path in tables
            if {"path": path, "type": "table"} not in entries
        ]
        if wanted != entries:
            self.client.set_tag(run_id, LOGGED_ARTIFACTS_TAG, json.dumps(wanted))

    def fail(self, run: TrackedRun, message: str) -> None:
        """Record ``message`` (cut to MLflow's tag limit) as ``eval.error``; status FAILED."""
        self.client.set_tag(run.run_id, ERROR_TAG, _cut(str(message), MAX_TAG_VALUE))
        self.client.set_terminated(run.run_id, "FAILED")
