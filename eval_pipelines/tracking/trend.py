"""Trend runs: one parent run per model carrying each week's headline metrics as one point
per week (the package docstring of :mod:`eval_pipelines.tracking`, "Layout" and "One point
per week")."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date

from mlflow.entities import Metric, Run, ViewType
from mlflow.exceptions import MlflowException

from eval_pipelines.tracking.client import MlflowStore, _chunks
from eval_pipelines.tracking.errors import TrackingError
from eval_pipelines.tracking.naming import _week_point, trend_run_key
from eval_pipelines.tracking.records import TrackedRun
from eval_pipelines.tracking.schema import (
    KIND_TAG,
    MAX_METRICS_PER_BATCH,
    PARENT_RUN_TAG,
    RESULTS_DIGEST_TAG,
    RUN_KEY_TAG,
    SUPERSEDED_BY_TAG,
    SUPERSEDED_TAG,
    SUPERSEDES_TAG,
    TREND_ROUNDS,
    TREND_WEEK_TAG,
)

_log = logging.getLogger(__name__)


class TrendRuns(MlflowStore):
    """The model's trend run: found, created, appended to and rebuilt."""

    def _trend_runs(self, model: str, experiment_id: str) -> list[Run]:
        """The model's non-deleted, non-superseded trend runs, oldest first."""
        runs: list[Run] = []
        page_token = None
        while True:
            page = self.client.search_runs(
                [experiment_id],
                filter_string=f"tags.`{RUN_KEY_TAG}` = '{trend_run_key(model)}'",
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=100,
                page_token=page_token,
            )
            runs += [r for r in page if r.data.tags.get(SUPERSEDED_TAG) != "true"]
            page_token = page.token
            if not page_token:
                break
        return sorted(runs, key=lambda r: (r.info.start_time, r.info.run_id))

    def _trend(self, model: str, experiment_id: str) -> Run:
        """The model's current trend run (the oldest current one), created if there is none.

        Two writers creating one at once both keep the oldest and the other's creator
        deletes its own, so every writer ends on the same run.
        """
        runs = self._trend_runs(model, experiment_id)
        if runs:
            return runs[0]
        created = self._create_trend(model, experiment_id, {})
        runs = self._trend_runs(model, experiment_id)
        if runs and runs[0].info.run_id != created:
            self.client.delete_run(created)
            return runs[0]
        return self.client.get_run(created)

    def _create_trend(self, model: str, experiment_id: str, tags: Mapping[str, str]) -> str:
        created = self.client.create_run(
            experiment_id,
            run_name=f"{model} weekly trend",
            tags={
                RUN_KEY_TAG: trend_run_key(model),
                "eval.model": model,
                KIND_TAG: "trend",
                SUPERSEDED_TAG: "false",
                **tags,
            },
        )
        # Finished at once: it is a container that later weeks log into (allowed on a
        # finished run), never a job that is running.
        self.client.set_terminated(created.info.run_id, "FINISHED")
        return created.info.run_id

    def trend_run(self, model: str) -> TrackedRun | None:
        """The model's current trend run (parent of its week runs), None if there is none."""
        experiment_id = self.experiment_id(model)
        runs = self._trend_runs(model, experiment_id)
        if not runs:
            return None
        run_id = runs[0].info.run_id
        return TrackedRun(run_id, experiment_id, self._run_url(experiment_id, run_id))

    def _update_trend(
        self,
        run: TrackedRun,
        model: str,
        week: str,
        metrics: Mapping[str, float],
        digest: str,
    ) -> str:
        """Put ``week``'s headline metrics into the model's trend run: appended when the week
        is new there, nothing when the same run and digest are recorded, else a rebuild.
        ``run`` ends as a child of the trend run that is current afterwards."""
        experiment_id = run.experiment_id
        tag, value = TREND_WEEK_TAG + week, f"{run.run_id} {digest}"
        step, timestamp = _week_point(date.fromisoformat(week))
        for _ in range(TREND_ROUNDS):
            trend = self._trend(model, experiment_id)
            trend_id = trend.info.run_id
            logged = trend.data.tags.get(tag)
            try:
                if logged is None:
                    self._log_metrics(trend_id, metrics, step, timestamp)
                    self._log_tags(trend_id, {tag: value})
                elif logged != value:
                    rebuilt = self._rebuild_trend(model, trend, week, run.run_id, metrics, value)
                    if rebuilt is None:  # another writer's rebuild won: write into that one
                        continue
                    trend_id = rebuilt
            except MlflowException:
                # Deleted by a concurrent rebuild while we wrote: write into the current one.
                current = self._trend_runs(model, experiment_id)
                if current and current[0].info.run_id == trend_id:
                    raise
                continue
            current = self._trend_runs(model, experiment_id)
            if current and current[0].info.run_id == trend_id:
                self._log_tags(run.run_id, {PARENT_RUN_TAG: trend_id})
                return trend_id
        raise TrackingError(
            f"the trend run of {model!r} kept being replaced by concurrent writers "
            f"({TREND_ROUNDS} rounds); a re-run of week {week} updates it"
        )

    def _children(self, experiment_id: str, parent_id: str) -> list[Run]:
        runs: list[Run] = []
        page_token = None
        while True:
            page = self.client.search_runs(
                [experiment_id],
                filter_string=f"tags.`{PARENT_RUN_TAG}` = '{parent_id}'",
                run_view_type=ViewType.ACTIVE_ONLY,
                max_results=1000,
                page_token=page_token,
            )
            runs += list(page)
            page_token = page.token
            if not page_token:
                return runs

    def _rebuild_trend(
        self,
        model: str,
        old: Run,
        week: str,
        run_id: str,
        metrics: Mapping[str, float],
        value: str,
    ) -> str | None:
        """A new trend run with one point per week: ``week`` from ``metrics``, every other
        week from its newest current, FINISHED week run under ``old``. The children move to
        it, ``old`` is tagged superseded and deleted. None if a concurrent rebuild won."""
        experiment_id, old_id = old.info.experiment_id, old.info.run_id
        children = self._children(experiment_id, old_id)
        newest: dict[str, Run] = {}
        for child in sorted(children, key=lambda r: r.info.start_time):
            tags = child.data.tags
            if (
                tags.get(KIND_TAG) == "week"
                and tags.get(SUPERSEDED_TAG) != "true"
                and child.info.status == "FINISHED"
                and RESULTS_DIGEST_TAG in tags
                and "eval.week" in tags
            ):
                newest[tags["eval.week"]] = child
        newest.pop(week, None)
        week_tags = {TREND_WEEK_TAG + week: value}
        points = []
        for other, child in newest.items():
            step, timestamp = _week_point(date.fromisoformat(other))
            points += [Metric(k, v, timestamp, step) for k, v in child.data.metrics.items()]
            digest = child.data.tags[RESULTS_DIGEST_TAG]
            week_tags[TREND_WEEK_TAG + other] = f"{child.info.run_id} {digest}"
        step, timestamp = _week_point(date.fromisoformat(week))
        points += [Metric(k, v, timestamp, step) for k, v in metrics.items()]

        new_id = self._create_trend(model, experiment_id, {SUPERSEDES_TAG: old_id})
        try:
            for chunk in _chunks(points, MAX_METRICS_PER_BATCH):
                self.client.log_batch(new_id, metrics=list(chunk))
            self._log_tags(new_id, week_tags)
            self._log_tags(old_id, {SUPERSEDED_TAG: "true", SUPERSEDED_BY_TAG: new_id})
            current = self._trend_runs(model, experiment_id)
            won = bool(current) and current[0].info.run_id == new_id
        except MlflowException:  # e.g. ``old`` deleted by a concurrent rebuild meanwhile
            won = False
        if not won:  # never leave a second current trend run behind
            self.client.delete_run(new_id)
            return None
        # Children that joined ``old`` while this ran are moved too; their writers see that
        # ``old`` is no longer current and write their week into the new run themselves.
        for child in {c.info.run_id for c in children + self._children(experiment_id, old_id)}:
            self._log_tags(child, {PARENT_RUN_TAG: new_id})
        self._log_tags(run_id, {PARENT_RUN_TAG: new_id})
        self.client.delete_run(old_id)
        _log.info(
            "week %s of %r changed: trend run %s replaces %s (%d weeks)",
            week,
            model,
            new_id,
            old_id,
            len(newest) + 1,
        )
        return new_id
