"""MLflow lineage: one MLflow run per evaluation, written through an explicit ``MlflowClient``.

Nothing here touches MLflow's process-global ("fluent") state: no ``mlflow.start_run``, no
``mlflow.set_tracking_uri``. Every call names its run id, so concurrent steps in one process
(Dagster's in-process executor, a notebook) cannot log into each other's runs.

Runs
----
One experiment per model, ``{experiment_prefix}/{model}``, created on first use (with
``artifact_location`` when one is given). A run is found again by its tag
``eval.run_key``: the key's *current* run is the newest non-deleted run carrying the key that
is not tagged ``eval.superseded = true`` (:meth:`Tracker.find_run`). :meth:`Tracker.start`
reuses the current run (a retried or re-run step keeps its run) and creates one otherwise.

Spec versions: one run per (run key, spec hash)
-----------------------------------------------
MLflow params cannot change, so a run holds one version of the spec. When
:meth:`Tracker.start` is given the spec hash (:func:`eval_pipelines.runner.run_evaluation`
always gives it) it is written to the tag ``eval.spec_hash`` at once, and a current run whose
``eval.spec_hash`` differs is not reused: a NEW run is created with the tag
``eval.supersedes`` = the old run id, and then the old run is tagged ``eval.superseded`` =
``true`` and ``eval.superseded_by`` = the new run id (its params, metrics, artifacts and status
stay as they were: the record of what the old spec decided). The new run is created first, so
a failure between the two steps still leaves the new run as the newest, current one. A run
started with the same spec hash (or a run without the tag, e.g. one that failed before its
first publish under an older version of this code) is reused and updated as before. Every run
started here carries ``eval.superseded = false`` until it is superseded, so the MLflow UI
filter ``tags.`eval.superseded` = 'false'`` lists current runs only. Going back to an earlier
spec starts another new run (the history stays linear; superseded runs are never revived).

:meth:`Tracker.publish` logs, in this order, params, tags (with the results digest), metrics,
the tables, the evaluated window as a dataset input and every file of the artifact folder,
updates the trend run, then marks the week run ``FINISHED``. If any of it fails the run is
marked ``FAILED`` with the error in the tag ``eval.error``; a re-run with the same results
completes the same run.

Params (immutable in MLflow)
----------------------------
The spec, flattened with dotted keys (``confidence.level``, ``compare.baseline``), lists and
the gates as compact JSON, plus ``window.start`` / ``window.end``. The warehouse is always
``safe_url(spec.warehouse_template)``: the URL as written, ``${VAR}`` unexpanded, any literal
password masked. Values are cut to MLflow's 6000-character param limit (ending in ``...``).

MLflow refuses to change a param of a run. On a reused run a param that is already logged with
the same value is skipped; one whose value differs (the spec changed between two attempts of
the same run key) keeps its first value, and the current values of all such params are written
as JSON to the tag ``eval.param_conflicts`` (removed again once they agree). The tags
``eval.spec_hash`` and ``eval.data_fingerprint`` always describe the latest publish. A caller
that passes the spec hash to :meth:`Tracker.start` (the runner does) never meets a conflict:
a changed spec gets its own run (above); the conflict tag remains for callers that do not.

Layout: week runs nested under one trend run per model
------------------------------------------------------
MLflow users read a run's metrics as charts and an experiment's runs as a table. So:

* A **week run** (run key ``<model>/week/<week>``) logs the *headline* metrics only (below),
  the per-slice results as MLflow tables (``tables/slices.json``, ``tables/comparison.json``,
  ``tables/drift.json``: the JSON ``split`` format of ``MlflowClient.log_table``, listed in
  the run's ``mlflow.loggedArtifacts`` tag, so ``load_table`` and the UI read them) and the
  artifact folder (the Parquet files hold every number).
* A **trend run** per model (run key ``<model>/trend``, tag ``eval.kind = trend``, run name
  ``<model> weekly trend``) is the parent of the week runs (tag ``mlflow.parentRunId``) and
  carries each week's headline metrics as one point per week: one chart per metric shows the
  model's whole history. It is created by the model's first publish; a week run started
  before it exists is nested when it publishes. Registry candidate runs are not weekly and
  stay top level.
* The experiment is tagged ``mlflow.experimentKind = custom_model_development`` when the
  tracker first uses it (unless the tag is already set), so MLflow 3's UI opens it on the
  runs page, not on the empty GenAI overview.

Why a parent per model, not a run per model-month: MLflow charts one line per run, so a run
per month cuts the trend into twelve segments a year, and a month run would hold several
weeks' params (one spec each: the supersede rule below needs one run per week and spec). The
parent holds no params; it is derived data, rebuilt from the week runs when needed.

Metrics: step, timestamp and headline keys
------------------------------------------
Every metric of a week is logged at ``step = week_step(window.start)`` (weeks since Monday
1970-01-05, so consecutive weeks are consecutive steps; 2026-11-16 is step 2967) and
``timestamp`` = the window start in ms since the epoch (UTC), in the week run and in the trend
run, so MLflow's step and time axes read as weeks. NaN and infinite values are not logged.
Headline keys (the overall slice; everything per slice is in the tables):

* ``{metric}/{version}``: the metric on all labeled rows, e.g. ``roc_auc/v2`` (a cutoff's
  ``@`` reads ``_at_``: ``ndcg_at_10/v2``);
  ``{metric}/{version}/ci_low`` and ``.../ci_high``: its confidence interval. MLflow's UI
  groups charts by the text before the first ``/``: one section per metric, a line per
  version.
* ``delta/{metric}/overall`` (candidate - baseline) and its ``/ci_low``, ``/ci_high``.
* ``rows``, ``labeled_rows``, ``label_coverage``: the window (all versions), and
  ``rows/{version}``, ``labeled_rows/{version}``, ``label_coverage/{version}``.

Cost of the run
---------------
A week run also logs what its warehouse queries cost, at the same step and timestamp
(:mod:`eval_pipelines.query_cost`): ``cost_queries``, ``cost_seconds``, ``cost_rows_scanned``
and ``cost_bytes_scanned`` (the last two only where the engine reports them: DuckDB, not
PostgreSQL), and the artifact ``queries.json`` lists each query. Cost measures an attempt, not
the week's results: it is not part of ``eval.results_digest`` nor of the trend run, so a
re-run with the same results keeps its run, and adds its own cost point at the week's step
(the metric's latest value is the latest attempt's cost; its history holds every attempt).

One point per week: re-runs replace, never duplicate
----------------------------------------------------
MLflow cannot delete or overwrite a metric point, and re-logging a step adds a second point.
Each publish therefore computes ``eval.results_digest`` (SHA-256 of the headline metrics and
the tables) and writes it to the run before anything else:

* the run has no results yet (new, or failed before logging any): log into it;
* the same digest (a retry, an idempotent re-run): log again into the same run; MLflow stores
  an identical (key, value, step, timestamp) point once, and files are overwritten;
* another digest (labels arrived, data changed, a partial publish of an older version of this
  code): the numbers of the week changed under the same spec. A **new** week run replaces the
  old one: it gets the old run's tags and ``eval.supersedes`` = the old id; the old run is
  tagged ``eval.superseded = true``, ``eval.superseded_by``, ``eval.superseded_reason =
  results changed`` and then **deleted** (soft: MLflow's "Deleted" view and ``mlflow runs
  restore`` still have it until ``mlflow gc``). :meth:`Tracker.publish` returns the run it
  published to. ``eval.publish_count`` counts the publishes into one run. A spec change
  keeps the old run visible instead (below): it records what another spec decided, while a
  same-spec re-run is a newer version of the same evaluation.

The trend run records which week run and digest each of its weeks came from in the tag
``eval.trend.<week>`` = ``<run id> <digest>``. A week whose tag is missing is appended (one
point per key); the same tag means nothing to do; another tag means the week changed, and
the trend run is **rebuilt**: a new trend run gets the current week runs' values (one point
per week), the week runs (superseded ones too) are re-parented to it, and the old trend run
is tagged superseded and deleted. Concurrent writers converge: the current trend run is the
*oldest* non-superseded one, a writer that created a duplicate deletes it, and each writer
checks after appending that its trend run is still current (else it writes again into the
current one, at most ten rounds).

MLflow 3.17 allows only word characters, ``_ - . / :`` and spaces in metric names (``:`` not
on Windows) and rejects names that ``posixpath.normpath`` would change; ``/`` separates the
segments above. Metric and version names go through :func:`name_token`: a **plain** name
(ASCII word characters separated by single ``.`` or ``-``, at most 64 characters: ``v2``,
``model-2.1``) maps to itself; anything else is **lossy**: every run of other characters ->
``_``, cut to 48 characters, then ``--`` and the first 10 hex digits of the MD5 of the
original text (``v2/rc 1`` -> ``v2_rc_1--<md5>``). Plain tokens never contain ``--`` and
lossy tokens always do, so the two never collide; two lossy tokens are equal only if their
MD5 prefixes (40 bits) are. A metric name's cutoff ``@`` reads ``_at_`` first
(:func:`metric_token`: ``ndcg@10`` -> ``ndcg_at_10``, plain). Keys stay below MLflow's
250-character key limit.

Dataset input
-------------
The window is logged as an MLflow dataset input named ``{model}_window_{week}`` whose digest
is our own content hash of the window (``evaluation.fingerprint["content_hash"]``; MLflow's
own digest would hash a few sample rows) and whose source is JSON naming the warehouse (safe
URL), the predictions and labels tables or queries and the window bounds.

Model Registry
--------------
:meth:`Tracker.register_version` registers any URI MLflow accepts. A local folder or
``file:`` URI cannot be registered through a tracking server without a run (the server
requires a ``run_id`` whose artifact folder contains the path), so a local source is first
uploaded as the artifact ``model`` of a run in the experiment ``{experiment_prefix}/registry``
and registered as ``runs:/{run_id}/model``; this works with a server and a local store alike.

Modules
-------
:mod:`~eval_pipelines.tracking.schema` (tag names, table paths, MLflow's limits),
:mod:`~eval_pipelines.tracking.errors` (:class:`TrackingError`, HTTP bounds, scrubbed messages),
:mod:`~eval_pipelines.tracking.naming` (run keys, metric keys and tokens, week steps),
:mod:`~eval_pipelines.tracking.payloads` (params, tags, metrics, tables, digest, dataset),
:mod:`~eval_pipelines.tracking.records` (:class:`TrackedRun`, :class:`RegisteredVersion`),
:mod:`~eval_pipelines.tracking.client` (the store: experiments, run links, batched writes),
:mod:`~eval_pipelines.tracking.trend` (trend runs), :mod:`~eval_pipelines.tracking.registry`
(Model Registry) and :mod:`~eval_pipelines.tracking.tracker` (:class:`Tracker`: runs started,
published, failed). Import from this package; the modules' split is not part of the API.
"""

from __future__ import annotations

from eval_pipelines.tracking.errors import (
    HTTP_BACKOFF_FACTOR,
    HTTP_MAX_RETRIES,
    HTTP_TIMEOUT_S,
    TrackingError,
    configure_http,
    describe_uri,
    tracking_errors,
)
from eval_pipelines.tracking.naming import (
    metric_key,
    metric_token,
    name_token,
    trend_run_key,
    week_run_key,
    week_step,
)
from eval_pipelines.tracking.payloads import (
    COST_METRICS,
    cost_metrics,
    evaluation_metrics,
    evaluation_tables,
    evaluation_tags,
    results_digest,
    spec_params,
    window_dataset,
)
from eval_pipelines.tracking.records import (
    RegisteredVersion,
    TrackedRun,
)
from eval_pipelines.tracking.schema import (
    CI_HIGH,
    CI_LOW,
    ERROR_TAG,
    EXPERIMENT_KIND,
    EXPERIMENT_KIND_TAG,
    KIND_TAG,
    LOGGED_ARTIFACTS_TAG,
    MAX_KEY,
    MAX_METRICS_PER_BATCH,
    MAX_PARAM_VALUE,
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
    TABLES,
    TREND_ROUNDS,
    TREND_WEEK_TAG,
)
from eval_pipelines.tracking.tracker import (
    Tracker,
)

__all__ = [
    "CI_HIGH",
    "CI_LOW",
    "COST_METRICS",
    "ERROR_TAG",
    "EXPERIMENT_KIND",
    "EXPERIMENT_KIND_TAG",
    "HTTP_BACKOFF_FACTOR",
    "HTTP_MAX_RETRIES",
    "HTTP_TIMEOUT_S",
    "KIND_TAG",
    "LOGGED_ARTIFACTS_TAG",
    "MAX_KEY",
    "MAX_METRICS_PER_BATCH",
    "MAX_PARAMS_TAGS_PER_BATCH",
    "MAX_PARAM_VALUE",
    "MAX_TAG_VALUE",
    "PARAM_CONFLICTS_TAG",
    "PARENT_RUN_TAG",
    "PUBLISH_COUNT_TAG",
    "RESULTS_CHANGED",
    "RESULTS_DIGEST_TAG",
    "RUN_KEY_TAG",
    "SPEC_HASH_TAG",
    "SUPERSEDED_BY_TAG",
    "SUPERSEDED_REASON_TAG",
    "SUPERSEDED_TAG",
    "SUPERSEDES_TAG",
    "TABLES",
    "TREND_ROUNDS",
    "TREND_WEEK_TAG",
    "RegisteredVersion",
    "TrackedRun",
    "Tracker",
    "TrackingError",
    "configure_http",
    "cost_metrics",
    "describe_uri",
    "evaluation_metrics",
    "evaluation_tables",
    "evaluation_tags",
    "metric_key",
    "metric_token",
    "name_token",
    "results_digest",
    "spec_params",
    "tracking_errors",
    "trend_run_key",
    "week_run_key",
    "week_step",
    "window_dataset",
]
