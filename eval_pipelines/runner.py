"""One published evaluation: evaluate, decide, write artifacts, publish, track, alert.

The CLI, the weekly Dagster assets and the registry-triggered candidate evaluation all call
:func:`run_evaluation`, so a week evaluated from a terminal, by the schedule or by a backfill
leaves the same artifacts, the same MLflow run and the same alert.

Order matters for lineage and for faults. The MLflow run is opened (or found again, by its
run key) before the warehouse is touched, so a run that fails on bad input is recorded as
FAILED with the reason instead of vanishing. Local artifacts are written atomically first;
publishing to S3 and to MLflow come after, so a failed upload leaves a complete local folder
and a re-run of the same key finishes the job in the same MLflow run.

The run key names the week (or the registry version); the spec hash picks the run. A re-run
with the same spec updates the key's run; a changed spec starts a new run and tags the old one
``eval.superseded_by`` the new one (:mod:`eval_pipelines.tracking`), because MLflow cannot
change the params of a run and would otherwise show the old gates beside the new results.

Faults (docs/reliability.md): a tracking server that cannot be reached when the run starts
stops the run before the warehouse is read (:class:`TrackingError`, nothing written); one
that fails during the publish leaves the complete local folder (and the S3 copy, if any) and
a run that is FAILED, or still RUNNING when the server could not even be told; never
FINISHED. Every MLflow failure is one sentence naming the tracking host, within the
Tracker's bounded retries.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from eval_pipelines.decisions import TRIGGER_TAG, DecisionLog, DecisionRecord
from eval_pipelines.errors import EvalError
from eval_pipelines.gates import Verdict
from eval_pipelines.pipeline import Evaluation, evaluate
from eval_pipelines.progress import SILENT, Progress
from eval_pipelines.spec import EvalSpec
from eval_pipelines.tracking import TrackedRun, Tracker, TrackingError, tracking_errors
from eval_pipelines.warehouse import Warehouse
from eval_pipelines.windows import Window, week_window

_log = logging.getLogger(__name__)

# What `alert` says happened, for logs and asset metadata.
ALERT_SENT = "sent"
ALERT_NOT_NEEDED = "nothing to alert"
ALERT_NOT_CONFIGURED = "alert due, but no webhook is configured"
ALERT_FAILED = "failed"


@dataclass(frozen=True)
class Publishing:
    """Where a run's results go besides the local artifact folder."""

    tracker: Tracker | None = None
    s3_url: str | None = None  # s3://bucket/prefix/<model>/<week> for this run
    s3_endpoint_url: str | None = None
    webhook_url: str | None = None
    # The results store whose decision log gets the verdict (eval_pipelines/decisions.py);
    # None: not recorded.
    results_store: str | None = None


@dataclass(frozen=True)
class RunOutcome:
    evaluation: Evaluation
    verdict: Verdict
    folder: Path
    report_uri: str
    mlflow_run: TrackedRun | None
    alert: str
    decision: DecisionRecord | None = None  # the row appended to the decision log


def run_evaluation(
    spec: EvalSpec,
    week: str | Window,
    warehouse: Warehouse,
    out: Path,
    publishing: Publishing = Publishing(),
    *,
    run_key: str,
    run_name: str,
    tags: Mapping[str, str] | None = None,
    log: Callable[[str], None] = lambda message: None,
    progress: Progress = SILENT,
) -> RunOutcome:
    """Evaluate ``week`` and publish the results; EvalError on bad input or a failed upload.

    ``progress`` reports each step (the CLI's lines on stderr); the default is silent.
    """
    from eval_pipelines.artifacts import write_artifacts

    tracker = publishing.tracker
    window = week if isinstance(week, Window) else week_window(week)
    decision_log = _decision_log(publishing.results_store, warehouse)  # refused before any work
    run = None
    if tracker is not None:
        # Enough to find a failed run by model and week, before anything is computed.
        run_tags = {"eval.model": spec.model, "eval.week": window.label, **(tags or {})}
        with (
            progress.step("starting the MLflow run"),
            tracking_errors(tracker, f"starting the MLflow run {run_key!r}"),
        ):
            run = tracker.start(
                run_key,
                model=spec.model,
                run_name=run_name,
                tags=run_tags,
                spec_hash=spec.fingerprint(),
            )
        if run.superseded is not None:
            log(
                f"the spec changed since MLflow run {run.superseded} of {run_key!r}: "
                f"new run {run.run_id} (the old run is tagged eval.superseded_by)"
            )
    try:
        evaluation = evaluate(spec, window, warehouse, progress)
        verdict = evaluation.decide()
        with progress.step("writing artifacts"):
            runs = {
                "mlflow_run": run.run_id if run is not None else None,
                "dagster_run": (tags or {}).get("dagster.run_id"),
            }
            folder = write_artifacts(evaluation, verdict, out, runs)
        report_uri = str(folder / "report.md")
        if publishing.s3_url:
            from eval_pipelines.object_store import publish_folder

            with progress.step("publishing to S3"):
                published = publish_folder(
                    folder, publishing.s3_url, endpoint_url=publishing.s3_endpoint_url
                )
            report_uri = f"{published.rstrip('/')}/report.md"
            log(f"artifacts published to {published}")
        if tracker is not None and run is not None:
            action = (
                f"publishing run {run.run_id} (the artifacts in {folder} are complete; "
                "a re-run finishes the upload)"
            )
            with progress.step("publishing to MLflow"), tracking_errors(tracker, action):
                # A new run replaces ``run`` when the week's results changed (tracking.py).
                run = tracker.publish(run, evaluation, verdict, folder)  # FAILED on error
            log(f"MLflow run {run.run_id} finished")
    except TrackingError:
        raise  # publish() already tried to mark the run FAILED
    except EvalError as exc:
        if tracker is not None and run is not None:
            _fail_quietly(tracker, run, str(exc))
        raise
    except BaseException as exc:
        # A bug or an interrupt: the run must not stay RUNNING forever.
        if tracker is not None and run is not None:
            _fail_quietly(tracker, run, f"interrupted by {type(exc).__name__}")
        raise
    alert = _alert(evaluation, verdict, report_uri, run, publishing.webhook_url)
    log(f"alert: {alert}")
    decision = None
    if decision_log is not None:
        tags = tags or {}
        decision = DecisionRecord.of(
            verdict,
            window,
            spec_hash=spec.fingerprint(),
            trigger=tags.get(TRIGGER_TAG) or "manual",
            artifacts=report_uri.rsplit("/", 1)[0] if publishing.s3_url else str(folder),
            report=report_uri,
            mlflow_run_id=run.run_id if run is not None else None,
            mlflow_run_url=run.url if run is not None else None,
            dagster_run_id=tags.get("dagster.run_id"),
        )
        decision_log.append(decision)  # quick: no progress line of its own
        log(f"decision {decision.decision_id} appended to {decision_log.safe_url}")
    return RunOutcome(evaluation, verdict, folder, report_uri, run, alert, decision)


def _decision_log(url: str | None, warehouse: Warehouse) -> DecisionLog | None:
    """The decision log of ``url``; EvalError when it is the source warehouse itself or a
    server that cannot be reached."""
    if url is None:
        return None
    decision_log = DecisionLog(url)
    if decision_log.same_database_as(warehouse.url):
        raise EvalError(
            f"results store {decision_log.safe_url} is the source warehouse: the decision log "
            "is never written next to the data it judges; give another results store "
            "(--results-store, $EVAL_RESULTS_STORE_URL)"
        )
    decision_log.check_reachable()
    return decision_log


def _fail_quietly(tracker: Tracker, run: TrackedRun, message: str) -> None:
    """Mark ``run`` FAILED; if the tracking server is unreachable too, only log it, so the
    error being raised (the one that matters) is not replaced."""
    try:
        with tracking_errors(tracker, f"marking run {run.run_id} FAILED"):
            tracker.fail(run, message)
    except TrackingError as exc:
        _log.warning("%s", exc)


def _alert(
    evaluation: Evaluation,
    verdict: Verdict,
    report_uri: str,
    run: TrackedRun | None,
    webhook_url: str | None,
) -> str:
    """Post a Slack-compatible message on a hold, a significant regression or drift."""
    from eval_pipelines.alerts import build_alert, send_webhook

    payload = build_alert(
        verdict.to_dict(),
        evaluation.comparison,
        evaluation.drift,
        report_url=report_uri,
        run_url=run.url if run is not None else None,
    )
    if payload is None:
        return ALERT_NOT_NEEDED
    if not webhook_url:
        return ALERT_NOT_CONFIGURED
    try:
        send_webhook(webhook_url, payload)
    except EvalError as exc:
        # The results are complete and recorded; the caller decides how loudly to fail.
        return f"{ALERT_FAILED}: {exc}"
    return ALERT_SENT


# The default MLflow store: a SQLite file and an artifact folder under out/, no server needed
# (the registry needs a database store, which a plain mlruns/ folder is not).
LOCAL_MLFLOW_FOLDER = Path("out/mlflow")


def local_tracking_uri(folder: Path = LOCAL_MLFLOW_FOLDER) -> str:
    """``sqlite:///<abs folder>/mlflow.db``, creating the folder (SQLite will not)."""
    folder = folder.resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{folder / 'mlflow.db'}"


def local_artifact_location(folder: Path = LOCAL_MLFLOW_FOLDER) -> str:
    return str((folder / "artifacts").resolve())
