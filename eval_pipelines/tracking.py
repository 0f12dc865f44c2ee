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
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import re
import tempfile
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlflow.entities import (
    Dataset,
    DatasetInput,
    InputTag,
    Metric,
    Param,
    Run,
    RunTag,
    ViewType,
)
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    ErrorCode,
)
from mlflow.tracking import MlflowClient

from eval_pipelines.errors import EvalError
from eval_pipelines.lineage import code_version
from eval_pipelines.spec import OVERALL
from eval_pipelines.tasks import task_named
from eval_pipelines.warehouse import safe_url
from eval_pipelines.windows import naive_utc

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from eval_pipelines.gates import Verdict
    from eval_pipelines.pipeline import Evaluation

__all__ = [
    "EXPERIMENT_KIND",
    "EXPERIMENT_KIND_TAG",
    "PARENT_RUN_TAG",
    "RESULTS_DIGEST_TAG",
    "RUN_KEY_TAG",
    "SPEC_HASH_TAG",
    "SUPERSEDED_BY_TAG",
    "SUPERSEDED_TAG",
    "SUPERSEDES_TAG",
    "RegisteredVersion",
    "TrackedRun",
    "Tracker",
    "TrackingError",
    "evaluation_metrics",
    "evaluation_tables",
    "evaluation_tags",
    "metric_key",
    "metric_token",
    "name_token",
    "results_digest",
    "spec_params",
    "trend_run_key",
    "week_run_key",
    "week_step",
    "window_dataset",
]

_log = logging.getLogger(__name__)

RUN_KEY_TAG = "eval.run_key"
ERROR_TAG = "eval.error"
PUBLISH_COUNT_TAG = "eval.publish_count"
PARAM_CONFLICTS_TAG = "eval.param_conflicts"
SPEC_HASH_TAG = "eval.spec_hash"
SUPERSEDED_TAG = "eval.superseded"  # "true" on a run replaced by a newer spec, else "false"
SUPERSEDED_BY_TAG = "eval.superseded_by"  # on the old run: the id of the run replacing it
SUPERSEDES_TAG = "eval.supersedes"  # on the new run: the id of the run it replaced
SUPERSEDED_REASON_TAG = "eval.superseded_reason"  # on a replaced week run: why
RESULTS_DIGEST_TAG = "eval.results_digest"  # SHA-256 of the headline metrics and the tables
KIND_TAG = "eval.kind"  # "week" under a trend run, "trend" on the trend run
TREND_WEEK_TAG = "eval.trend."  # + week label, on the trend run: "<week run id> <digest>"
PARENT_RUN_TAG = "mlflow.parentRunId"  # MLflow's own nesting tag
LOGGED_ARTIFACTS_TAG = "mlflow.loggedArtifacts"  # MLflow's list of a run's tables
# MLflow 3's UI opens an experiment on the GenAI overview unless this tag says otherwise
# (values from the UI bundle of 3.17: genai_development, custom_model_development, ...).
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"
RESULTS_CHANGED = "results changed"
TREND_ROUNDS = 10
_OWN_TAGS = frozenset(
    {
        RUN_KEY_TAG,
        SPEC_HASH_TAG,
        SUPERSEDED_TAG,
        SUPERSEDED_BY_TAG,
        SUPERSEDES_TAG,
        SUPERSEDED_REASON_TAG,
        RESULTS_DIGEST_TAG,
        KIND_TAG,
    }
)
# Tags that describe one run's own state, not carried over to the run replacing it.
_RUN_STATE_TAGS = frozenset(
    {
        SUPERSEDED_TAG,
        SUPERSEDED_BY_TAG,
        SUPERSEDES_TAG,
        SUPERSEDED_REASON_TAG,
        RESULTS_DIGEST_TAG,
        PUBLISH_COUNT_TAG,
        PARAM_CONFLICTS_TAG,
        ERROR_TAG,
        LOGGED_ARTIFACTS_TAG,
    }
)
CI_LOW, CI_HIGH = "ci_low", "ci_high"
# The per-slice results as MLflow tables (run-relative paths; MlflowClient.log_table's format).
TABLES = {
    "slices": "tables/slices.json",
    "comparison": "tables/comparison.json",
    "drift": "tables/drift.json",
}

# Limits of the installed MLflow (mlflow/utils/validation.py, 3.17).
MAX_PARAM_VALUE = 6000
MAX_TAG_VALUE = 8000
MAX_KEY = 250
MAX_PARAMS_TAGS_PER_BATCH = 100
MAX_METRICS_PER_BATCH = 1000

# System tags a caller may set; every other ``mlflow.*`` key is MLflow's own.
_CALLER_SYSTEM_TAGS = frozenset(
    {
        "mlflow.runName",
        "mlflow.note.content",
        "mlflow.user",
        "mlflow.source.name",
        "mlflow.source.type",
        "mlflow.source.git.commit",
        "mlflow.source.git.branch",
        "mlflow.source.git.repoURL",
    }
)
_EPOCH_MONDAY = date(1970, 1, 5)
_WORD = r"[A-Za-z0-9_]+"
_PLAIN_NAME = re.compile(rf"{_WORD}(?:[.-]{_WORD})*")
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
_MAX_NAME, _LOSSY_KEEP, _HASH_DIGITS = 64, 48, 10
_FILTER_UNSAFE = re.compile(r"['\"\\\n\r]")


class TrackingError(EvalError):
    """A tracking call could not be made as asked (message names the run, model or key)."""


# ------------------------------------------------------------------- bounds and failures
# MLflow's HTTP client retries a failed call up to MLFLOW_HTTP_REQUEST_MAX_RETRIES times (7 by
# default, exponential backoff factor 2) with MLFLOW_HTTP_REQUEST_TIMEOUT (120 s) per attempt:
# a dead tracking server hangs a run for minutes. Our bounds are explicit (Tracker options,
# MlflowResource fields) and are applied here, the one place that sets MLflow's knobs. MLflow
# reads them from the environment at every call, so they are process-wide: the last Tracker
# created in a process wins (every Tracker of this project uses the same defaults). MLflow
# parses all three as integers. Worst case per call: (retries + 1) * timeout plus the backoff
# sleeps (0, 2, 4, ... * factor seconds); a refused connection fails in about
# factor * (2**retries - 2) seconds.
HTTP_TIMEOUT_S = 20
HTTP_MAX_RETRIES = 2
HTTP_BACKOFF_FACTOR = 1
_HTTP_ENV = {
    "timeout_s": "MLFLOW_HTTP_REQUEST_TIMEOUT",
    "max_retries": "MLFLOW_HTTP_REQUEST_MAX_RETRIES",
    "backoff_factor": "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR",
}


def configure_http(*, timeout_s: int, max_retries: int, backoff_factor: int) -> None:
    """Set MLflow's HTTP timeout, retries and backoff for this process (see above)."""
    for name, value in (
        ("timeout_s", timeout_s),
        ("max_retries", max_retries),
        ("backoff_factor", backoff_factor),
    ):
        if int(value) != value or value < (1 if name == "timeout_s" else 0):
            raise ValueError(f"MLflow HTTP {name} must be a whole number >= 0 (got {value!r})")
        os.environ[_HTTP_ENV[name]] = str(int(value))
    # MLflow prints "View run ... at: <tracking URI>/#/..." to stdout when a run ends, with
    # any user:password@ of the URI; our own links (TrackedRun.url) are scrubbed instead.
    os.environ["MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"] = "true"


def describe_uri(uri: str) -> str:
    """A tracking URI without credentials: scheme, host and port (or the store's path)."""
    parts = urllib.parse.urlsplit(uri)
    if parts.scheme in ("http", "https"):
        try:
            port = f":{parts.port}" if parts.port else ""
        except ValueError:
            port = ""
        return f"{parts.scheme}://{parts.hostname or '?'}{port}"
    return _scrub_text(uri)


def _scrub_text(text: str) -> str:
    """``text`` without URL user info and without MLflow credential values from the env."""
    text = re.sub(r"(?<=//)[^/@\s'\"]*@", "", text)
    for name in ("MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        value = os.environ.get(name)
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return text


def _reason(exc: BaseException) -> str:
    text = str(exc)
    if "timeout" in text.lower() or "timed out" in text.lower():
        return "no answer in time"
    if "Connection refused" in text or "NewConnectionError" in text:
        return "connection refused"
    if "Max retries exceeded" in text or "ConnectionError" in text:
        return "connection failed"
    first = _scrub_text(text).strip().splitlines()[0] if text.strip() else type(exc).__name__
    return first[:300]


@contextmanager
def tracking_errors(tracker: Tracker, action: str) -> Iterator[None]:
    """Turn a failed MLflow call into one :class:`TrackingError` sentence naming the tracking
    host and ``action`` (never credentials; the MLflow exception is not chained)."""
    try:
        yield
    except TrackingError:
        raise
    except (MlflowException, OSError) as exc:
        raise TrackingError(
            f"MLflow tracking server {tracker.host}: {action} failed ({_reason(exc)}; "
            f"timeout {os.environ.get(_HTTP_ENV['timeout_s'])} s, "
            f"{os.environ.get(_HTTP_ENV['max_retries'])} retries)"
        ) from None
    except Exception as exc:
        import requests

        if not isinstance(exc, requests.RequestException):
            raise
        raise TrackingError(
            f"MLflow tracking server {tracker.host}: {action} failed ({_reason(exc)})"
        ) from None


# ---------------------------------------------------------------------------------- naming


def week_step(window_start: date | datetime) -> int:
    """Weeks between the Monday 1970-01-05 and the week containing ``window_start``.

    ``(day - 1970-01-05).days // 7``: consecutive ISO weeks get consecutive steps, any day of
    a week maps to that week's step, and weeks before 1970-01-05 get negative steps. An aware
    datetime is converted to UTC first.
    """
    if isinstance(window_start, datetime):
        window_start = naive_utc(window_start).date()
    return (window_start - _EPOCH_MONDAY).days // 7


def _week_point(week_start: date | datetime) -> tuple[int, int]:
    """(step, timestamp in ms) of every metric point of the week starting ``week_start``."""
    if isinstance(week_start, datetime):
        week_start = naive_utc(week_start).date()
    moment = datetime(week_start.year, week_start.month, week_start.day, tzinfo=UTC)
    return week_step(week_start), max(0, int(moment.timestamp() * 1000))


def week_run_key(model: str, week: str) -> str:
    """The run key of ``model``'s evaluation of ``week``: the runs nested in the trend run."""
    return f"{model}/week/{week}"


def trend_run_key(model: str) -> str:
    return f"{model}/trend"


def _results_changed(run: Run, digest: str) -> bool:
    """Whether publishing results with ``digest`` into ``run`` would change its numbers: it
    holds another digest, or metrics without one (an older layout)."""
    logged = run.data.tags.get(RESULTS_DIGEST_TAG)
    if logged is None:
        return bool(run.data.metrics)
    return logged != digest


def _lossy(text: str) -> str:
    readable = _UNSAFE.sub("_", text.replace(", ", "-").replace("=", "."))[:_LOSSY_KEEP]
    digest = hashlib.md5(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_DIGITS]
    return f"{readable}--{digest}"


def name_token(text: str) -> str:
    """A model version, feature, method or metric name as one metric-key segment.

    Plain names (ASCII word characters separated by single ``.`` or ``-``, at most 64
    characters) are kept; anything else gets the lossy form with an MD5 suffix (module
    docstring).
    """
    text = str(text)
    if len(text) <= _MAX_NAME and _PLAIN_NAME.fullmatch(text):
        return text
    return _lossy(text)


def metric_token(name: str) -> str:
    """A metric's name as one key segment: a cutoff's ``@`` reads ``_at_`` (ranking's
    ``ndcg@10`` is ``ndcg_at_10``; no registry has a name with ``_at_``, so keys stay
    distinct), every other character as :func:`name_token`."""
    return name_token(str(name).replace("@", "_at_"))


def metric_key(*parts: str) -> str:
    """Join already-tokenized segments with ``/`` (checked against MLflow's key limit)."""
    key = "/".join(parts)
    if len(key) > MAX_KEY:  # cannot happen with name_token segments
        raise TrackingError(f"metric key {key[:80]!r}... is longer than {MAX_KEY} characters")
    return key


def _cut(value: str, limit: int) -> str:
    return value if len(value) <= limit else value[: limit - 3] + "..."


def _filter_literal(value: str, what: str) -> str:
    if _FILTER_UNSAFE.search(value):
        raise ValueError(f"{what} {value!r} may not contain quotes, backslashes or newlines")
    return value


_MISSING = ErrorCode.Name(RESOURCE_DOES_NOT_EXIST)
_EXISTS = ErrorCode.Name(RESOURCE_ALREADY_EXISTS)


def _chunks(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


# ---------------------------------------------------------------------------------- records


@dataclass(frozen=True)
class TrackedRun:
    run_id: str
    experiment_id: str
    url: str | None  # the run in the MLflow UI when the tracking URI is http(s); else None
    # Set by Tracker.start when this new run replaced the key's run of another spec version.
    superseded: str | None = field(default=None, compare=False)
    # Set by Tracker.publish on a week run: the model's trend run in the UI (None: no UI).
    trend_url: str | None = field(default=None, compare=False)


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: int
    status: str  # READY / PENDING_REGISTRATION / FAILED_REGISTRATION
    aliases: tuple[str, ...]
    tags: dict[str, str]
    run_id: str | None


# ------------------------------------------------------------------------- what gets logged


def _flatten(value: Any, prefix: str, out: dict[str, str]) -> None:
    if isinstance(value, dict) and value:
        for key, item in value.items():
            _flatten(item, f"{prefix}.{key}" if prefix else str(key), out)
    elif value is None:
        return
    elif isinstance(value, str):
        out[prefix] = value
    elif isinstance(value, bool):
        out[prefix] = "true" if value else "false"
    elif isinstance(value, int | float):
        out[prefix] = repr(value)
    else:  # lists (slices, metrics, gates, features), empty dicts
        out[prefix] = json.dumps(value, separators=(",", ":"), sort_keys=True)


def spec_params(evaluation: Evaluation) -> dict[str, str]:
    """The spec as flat MLflow params (warehouse masked), plus the window bounds."""
    spec = evaluation.spec
    payload = spec.model_dump(mode="json")
    payload["warehouse"] = safe_url(spec.warehouse_template or spec.warehouse)
    params: dict[str, str] = {}
    _flatten(payload, "", params)
    params["window.start"] = evaluation.window.start.isoformat()
    params["window.end"] = evaluation.window.end.isoformat()
    return {key: _cut(value, MAX_PARAM_VALUE) for key, value in sorted(params.items())}


def _code_version() -> str:
    version = code_version()
    if version.get("git_commit"):
        dirty = "+dirty" if version.get("git_dirty") == "yes" else ""
        return f"{version['git_commit']}{dirty}"
    return f"eval-pipelines {version['package']}"


def evaluation_tags(evaluation: Evaluation, verdict: Verdict) -> dict[str, str]:
    fingerprint = evaluation.fingerprint
    tags = {
        "eval.model": evaluation.spec.model,
        "eval.week": evaluation.window.label,
        SPEC_HASH_TAG: evaluation.spec.fingerprint(),
        "eval.data_fingerprint": str(fingerprint.get("content_hash", "")),
        "eval.rows": str(fingerprint.get("rows", "")),
        "eval.decision": verdict.decision,
        "eval.code_version": _code_version(),
    }
    validation = evaluation.validation
    failed = sorted({r.name for r in validation.results if r.blocking and not r.passed})
    warned = sorted({r.name for r in validation.results if not r.blocking and not r.passed})
    tags["eval.validation.passed"] = str(validation.passed).lower()
    tags["eval.validation.failed_checks"] = ",".join(failed)[:5000]
    tags["eval.validation.warnings"] = ",".join(warned)[:5000]
    if verdict.candidate is not None:
        tags["eval.candidate"] = verdict.candidate
    if verdict.baseline is not None:
        tags["eval.baseline"] = verdict.baseline
    return tags


def _finite(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def evaluation_metrics(evaluation: Evaluation) -> dict[str, float]:
    """The headline metrics of a week (the overall slice; module docstring for the keys)."""
    values: dict[str, float] = {}

    def put(key: str, value: Any) -> None:
        if key in values:  # the scheme is collision-free; a duplicate is a bug, not data
            raise TrackingError(f"metric key {key!r} would be logged twice")
        number = _finite(value)
        if number is not None:
            values[key] = number

    metrics = evaluation.metrics
    for row in metrics[metrics["slice"] == OVERALL].itertuples(index=False):
        metric, version = metric_token(row.metric), name_token(row.model_version)
        put(metric_key(metric, version), row.value)
        put(metric_key(metric, version, CI_LOW), row.ci_low)
        put(metric_key(metric, version, CI_HIGH), row.ci_high)

    comparison = evaluation.comparison
    if comparison is not None and not comparison.empty:
        for row in comparison[comparison["slice"] == OVERALL].itertuples(index=False):
            metric = metric_token(row.metric)
            put(metric_key("delta", metric, OVERALL), row.delta)
            put(metric_key("delta", metric, OVERALL, CI_LOW), row.delta_ci_low)
            put(metric_key("delta", metric, OVERALL, CI_HIGH), row.delta_ci_high)

    fingerprint = evaluation.fingerprint
    rows, labeled = fingerprint.get("rows"), fingerprint.get("labeled_rows")
    put("rows", rows)
    put("labeled_rows", labeled)
    if rows:
        put("label_coverage", labeled / rows)
    coverage = evaluation.coverage
    if not coverage.empty:
        for row in coverage[coverage["slice"] == OVERALL].itertuples(index=False):
            version = name_token(row.model_version)
            put(metric_key("rows", version), row.rows)
            put(metric_key("labeled_rows", version), row.labeled)
            put(metric_key("label_coverage", version), row.coverage)
    return dict(sorted(values.items()))


def evaluation_tables(evaluation: Evaluation) -> dict[str, str]:
    """Run-relative path -> JSON text of each per-slice table, in ``MlflowClient.log_table``'s
    format (pandas ``split`` orientation, no index; 15 significant digits, pandas' maximum,
    where log_table keeps pandas' default 10). Empty frames keep their columns."""
    frames = {
        TABLES["slices"]: evaluation.metrics,
        TABLES["comparison"]: evaluation.comparison,
        TABLES["drift"]: evaluation.drift,
    }
    return {
        path: frame.to_json(orient="split", index=False, date_format="iso", double_precision=15)
        for path, frame in frames.items()
        if frame is not None
    }


def results_digest(metrics: Mapping[str, float], tables: Mapping[str, str]) -> str:
    """SHA-256 over the headline metrics (``repr`` of each float) and the tables' JSON: two
    publishes of a week have the same digest exactly when MLflow would show the same numbers.
    """
    payload = json.dumps(
        {"metrics": {k: repr(v) for k, v in sorted(metrics.items())}, "tables": dict(tables)},
        sort_keys=True,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _source_of(source: Any) -> dict[str, str]:
    if source.table is not None:
        return {"table": source.table}
    return {"query": _cut(source.query, 8000)}


def window_dataset(evaluation: Evaluation) -> Dataset:
    """The evaluated window as an MLflow dataset (our digest, safe warehouse URL)."""
    spec, window, fingerprint = evaluation.spec, evaluation.window, evaluation.fingerprint
    source = {
        "warehouse": safe_url(spec.warehouse_template or spec.warehouse),
        "predictions": _source_of(spec.predictions),
        "labels": _source_of(spec.labels),
        "window": {"start": window.start.isoformat(), "end": window.end.isoformat()},
    }
    p, lab = spec.predictions, spec.labels
    columns = [
        (p.id, "string"),
        (p.timestamp, "datetime"),
        (p.model_version, "string"),
        (spec.output_column, "string" if task_named(spec.task).categorical else "double"),
        (lab.label, "string" if task_named(spec.task).categorical else "long"),
        (lab.timestamp, "datetime"),
        *((column, "string") for column in spec.slice_columns),
    ]
    if spec.drift is not None:
        categorical = set(spec.drift.categorical)
        if not evaluation.drift.empty:
            kinds = dict(zip(evaluation.drift["feature"], evaluation.drift["kind"], strict=True))
            categorical |= {f for f, kind in kinds.items() if kind == "categorical"}
        columns += [(f, "string" if f in categorical else "double") for f in spec.drift.features]
    seen: set[str] = set()
    colspec = []
    for name, kind in columns:
        if name not in seen:
            seen.add(name)
            colspec.append({"name": name, "type": kind})
    profile = {
        "rows": fingerprint.get("rows"),
        "labeled_rows": fingerprint.get("labeled_rows"),
        "versions": fingerprint.get("versions", {}),
    }
    return Dataset(
        name=f"{spec.model}_window_{window.label}",
        digest=str(fingerprint.get("content_hash", "")),
        source_type="warehouse",
        source=json.dumps(source, sort_keys=True),
        schema=json.dumps({"mlflow_colspec": colspec}),
        profile=json.dumps(profile, sort_keys=True),
    )


# ------------------------------------------------------------------------------- the client


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


class Tracker:
    """Evaluation runs and model versions in one MLflow tracking server or local store."""

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

    # ---------------------------------------------------------------- experiments and runs
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

    def _log_tags(self, run_id: str, tags: Mapping[str, str]) -> None:
        entries = [RunTag(k, _cut(str(v), MAX_TAG_VALUE)) for k, v in sorted(tags.items())]
        for chunk in _chunks(entries, MAX_PARAMS_TAGS_PER_BATCH):
            self.client.log_batch(run_id, tags=list(chunk))

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

    def _log_metrics(
        self, run_id: str, metrics: Mapping[str, float], step: int, timestamp: int
    ) -> None:
        entries = [Metric(key, value, timestamp, step) for key, value in metrics.items()]
        for chunk in _chunks(entries, MAX_METRICS_PER_BATCH):
            self.client.log_batch(run_id, metrics=list(chunk))

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

    # ------------------------------------------------------------------------ trend runs
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

    def fail(self, run: TrackedRun, message: str) -> None:
        """Record ``message`` (cut to MLflow's tag limit) as ``eval.error``; status FAILED."""
        self.client.set_tag(run.run_id, ERROR_TAG, _cut(str(message), MAX_TAG_VALUE))
        self.client.set_terminated(run.run_id, "FAILED")

    # ---------------------------------------------------------------------- model registry
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
