"""The ``eval-pipelines`` command line.

``run`` evaluates one week and writes the artifacts; ``gate`` turns a run folder into an exit
status (0 ship, 1 hold, 2 inconclusive, 5 ship with guardrails) so a CI job can gate a release with
``eval-pipelines run ... && eval-pipelines gate DIR``. Errors caused by input are printed as
one sentence (exit 3; 4 when input checks failed), never as a traceback.

Exit status, every command (:data:`EXIT_STATUS_HELP`, also in ``--help`` and the README)::

    0    run, validate-spec, decisions, demo-warehouse, demo, metrics, report, dashboard: done
         (run exits 0 whatever the verdict); gate: ship
    1    gate: hold
    2    gate: inconclusive
    3    input error: bad spec or --week, unreachable warehouse, missing table, a folder
         without a readable verdict.json, a failed upload (one sentence on stderr)
    4    input checks failed: the week's data did not pass its checks (no metrics), or
         validate-spec --connect found a missing column or a type it does not accept
    5    gate: ship_with_guardrails (no blocking gate failed; a severity: warn gate did)
    64   usage error: unknown flag, missing required option or argument (usage on stderr);
       report: a folder missing an artifact it needs;
         report: a folder missing an artifact it needs
    70   internal error: a bug in eval-pipelines (--debug shows the traceback)
    130  interrupted (Ctrl-C)

Streams: stdout holds the result (the verdict, or with ``--json`` one JSON document and
nothing else); errors and progress go to stderr. Progress lines (:mod:`eval_pipelines.progress`)
appear when stderr is a terminal, never under ``--quiet``, and always under ``--progress`` or
``EVAL_PROGRESS=1``.
"""

import argparse
import contextlib
import json
import os
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import NoReturn

from eval_pipelines.errors import EvalError, ValidationFailed
from eval_pipelines.progress import choose as choose_progress
from eval_pipelines.reasons import group_reasons

# ship_with_guardrails is not 0: a CI step that ships on 0 alone must opt in to guardrails.
EXIT_CODES = {"ship": 0, "hold": 1, "inconclusive": 2, "ship_with_guardrails": 5}
EXIT_ERROR = EvalError.exit_code  # 3
EXIT_VALIDATION = ValidationFailed.exit_code  # 4
# sysexits.h: EX_USAGE, EX_SOFTWARE; 130 = 128 + SIGINT, what a shell reports for Ctrl-C.
EXIT_USAGE = 64
EXIT_INTERNAL = 70
EXIT_INTERRUPTED = 130
EXIT_STATUS_HELP = """\
exit status:
  0    run, validate-spec, decisions, demo-warehouse, demo, metrics, report, dashboard: done
       (run exits 0 whatever the verdict); gate: ship
  1    gate: hold
  2    gate: inconclusive
  3    input error: bad spec or --week, unreachable warehouse, missing table, a folder
       without a readable verdict.json, a failed upload (one sentence on stderr)
  4    input checks failed: the week's data did not pass its checks (no metrics), or
       validate-spec --connect found a missing column or a type it does not accept
  5    gate: ship_with_guardrails (no blocking gate failed; a severity: warn gate did)
  64   usage error: unknown flag, missing required option or argument (usage on stderr);
       report: a folder missing an artifact it needs
  70   internal error: a bug in eval-pipelines (--debug shows the traceback)
  130  interrupted (Ctrl-C)

progress: long steps of `run` are reported on stderr with their elapsed time when stderr
is a terminal; --quiet silences them, --progress or EVAL_PROGRESS=1 forces them on.
"""
RESULTS_STORE_HELP = (
    "SQLAlchemy URL of the results store holding the decision log, never the warehouse "
    "(default: $EVAL_RESULTS_STORE_URL, else duckdb:///out/results.duckdb)"
)
# What `run --json` and `gate --json` list under "paths", when the folder has them.
ARTIFACT_FILES = {
    "report": "report.md",
    "model_card": "model_card.md",
    "report_html": "report.html",
    "verdict": "verdict.json",
    "run": "run.json",
    "validation": "validation.json",
    "metrics": "metrics.parquet",
    "comparison": "comparison.parquet",
    "drift": "drift.parquet",
    "coverage": "coverage.parquet",
}
DEMO_SPECS = Path("evals")
DEMO_SPEC = DEMO_SPECS / "fraud_detector.yaml"
DEMO_WAREHOUSE = Path("data/warehouse.duckdb")
DASHBOARD_ROOT = Path("out/dagster")  # ArtifactStoreResource's default root


def _print_verdict(verdict: dict, out: Path | None = None) -> None:
    decision = verdict["decision"]
    print(f"\nverdict: {decision.upper()}  ({verdict.get('model')}, week {verdict.get('window')})")
    # One line per gate and outcome, worst case first; verdict.json keeps every reason.
    groups = group_reasons(verdict.get("reasons", []))
    width = max((len(g.gate) for g in groups), default=4)
    for group in groups:
        marker = {"pass": "ok  ", "hold": "HOLD", "inconclusive": "??  ", "warn": "WARN"}[
            group.outcome
        ]
        print(f"  {marker}  {group.gate:<{width}}  {group.message}")
    if out is not None:
        print(f"\nartifacts: {out}")
        print(f"report:    {out / 'report.md'}")


def _artifact_paths(folder: Path) -> dict[str, str]:
    folder = folder.resolve()
    paths = {"folder": str(folder)}
    for key, name in ARTIFACT_FILES.items():
        if (folder / name).is_file():
            paths[key] = str(folder / name)
    return paths


def _tracker(uri: str | None):
    """The MLflow tracker for ``--mlflow``: a URI, ``local`` (the SQLite store in out/mlflow)."""
    if not uri:
        return None
    from eval_pipelines.runner import local_artifact_location, local_tracking_uri
    from eval_pipelines.tracking import Tracker

    if uri == "local":
        return Tracker(local_tracking_uri(), artifact_location=local_artifact_location())
    return Tracker(uri, artifact_location=os.environ.get("EVAL_MLFLOW_ARTIFACT_LOCATION"))


def cmd_run(args: argparse.Namespace) -> int:
    """Evaluate the week; print the verdict, or under ``--json`` leave the run's document in
    ``args.document`` for :func:`main` (``cmd_demo`` passes none of the output flags)."""
    from eval_pipelines.decisions import results_store_url
    from eval_pipelines.runner import ALERT_FAILED, Publishing, run_evaluation
    from eval_pipelines.spec import load_spec
    from eval_pipelines.warehouse import Warehouse
    from eval_pipelines.windows import week_window

    spec = load_spec(args.spec)
    if args.warehouse:
        spec = spec.model_copy(
            update={"warehouse": args.warehouse, "warehouse_template": args.warehouse}
        )
    week = week_window(args.week).label  # a bad --week fails before any connection
    publishing = Publishing(
        tracker=_tracker(args.mlflow),
        s3_url=args.publish,
        s3_endpoint_url=os.environ.get("AWS_ENDPOINT_URL"),
        webhook_url=os.environ.get("EVAL_ALERT_WEBHOOK_URL"),
        results_store=results_store_url(getattr(args, "results_store", None)),
    )
    quiet = getattr(args, "quiet", False)
    progress = choose_progress(sys.stderr, quiet=quiet, forced=getattr(args, "progress", False))
    started = time.perf_counter()
    with Warehouse(spec.warehouse) as warehouse:
        outcome = run_evaluation(
            spec,
            week,
            warehouse,
            args.out,
            publishing,
            run_key=f"{spec.model}/week/{week}",
            run_name=f"{spec.model} week {week}",
            tags={"eval.trigger": "cli"},
            progress=progress,
        )
    if getattr(args, "json", False):
        mlflow_run = outcome.mlflow_run
        args.document = {
            **outcome.verdict.to_dict(),
            "paths": _artifact_paths(outcome.folder),
            "report_uri": outcome.report_uri,
            "mlflow_run": None
            if mlflow_run is None
            else {
                "run_id": mlflow_run.run_id,
                "experiment_id": mlflow_run.experiment_id,
                "url": mlflow_run.url,
            },
            "alert": outcome.alert,
            "decision_id": outcome.decision.decision_id if outcome.decision else None,
            "elapsed_s": round(time.perf_counter() - started, 3),
            "exit_code": 0,
        }
        return 0
    if quiet:
        if outcome.alert.startswith(ALERT_FAILED):  # the one line --quiet must not swallow
            print(f"alert:     {outcome.alert}", file=sys.stderr)
        return 0
    _print_verdict(outcome.verdict.to_dict(), outcome.folder)
    print(f"html:      {outcome.folder / 'report.html'}")  # the page to open in a browser
    if outcome.report_uri != str(outcome.folder / "report.md"):
        print(f"published: {outcome.report_uri}")
    if outcome.mlflow_run is not None:
        where = outcome.mlflow_run.url or (
            f"run {outcome.mlflow_run.run_id} (experiment {outcome.mlflow_run.experiment_id})"
        )
        print(f"mlflow:    {where}")
    if outcome.alert != "nothing to alert":
        print(f"alert:     {outcome.alert}")
    if outcome.decision is not None:
        print(f"logged:    decision {outcome.decision.decision_id} (eval-pipelines decisions)")
    print(f"elapsed:   {time.perf_counter() - started:.2f} s")
    return 0


def cmd_gate(args: argparse.Namespace) -> int:
    from eval_pipelines.artifacts import read_verdict

    verdict = read_verdict(args.dir)
    code = EXIT_CODES.get(verdict.get("decision"), EXIT_ERROR)
    if args.json:
        args.document = {**verdict, "paths": _artifact_paths(args.dir), "exit_code": code}
    elif not args.quiet:
        _print_verdict(verdict)
    return code


def cmd_decisions(args: argparse.Namespace) -> int:
    """The decision log, newest first, filtered; as a table, JSON or CSV on stdout."""
    from datetime import date

    from eval_pipelines.decisions import DecisionLog, render_decisions

    since = None
    if args.since:
        try:
            since = date.fromisoformat(args.since)
        except ValueError:
            raise EvalError(f"--since {args.since!r} is not a date (YYYY-MM-DD)") from None
    log = DecisionLog(args.results_store)
    rows = log.read(
        model=args.model,
        since=since,
        decision=args.decision,
        trigger=args.trigger,
        limit=args.limit,
    )
    sys.stdout.write(render_decisions(rows, args.format, source=log.safe_url))
    return 0


def cmd_validate_spec(args: argparse.Namespace) -> int:
    """Every spec parses (exit 3 otherwise); with ``--connect`` its tables, columns and column
    types are also checked in the warehouse, reading no row (exit 3 when a table cannot be
    read or the warehouse reached, 4 when a column is missing or has a type the engine does
    not accept)."""
    from eval_pipelines.spec import load_spec

    for path in args.specs:
        spec = load_spec(path)
        if args.warehouse:
            spec = spec.model_copy(
                update={"warehouse": args.warehouse, "warehouse_template": args.warehouse}
            )
        line = f"{path}: ok (model {spec.model}, spec hash {spec.fingerprint()[:12]})"
        if args.connect:
            from eval_pipelines.column_types import check_warehouse
            from eval_pipelines.warehouse import Warehouse

            with Warehouse(spec.warehouse) as warehouse:
                check_warehouse(spec, warehouse)
                line += f"; tables, columns and types checked in {warehouse.safe_url}"
        print(line)
    return 0


def cmd_demo_warehouse(args: argparse.Namespace) -> int:
    from eval_pipelines.demo import build_demo_warehouse

    started = time.perf_counter()
    summary = build_demo_warehouse(args.path, rows=args.rows, seed=args.seed)
    print(
        f"demo warehouse: {summary.path} ({summary.rows:,} predictions, {summary.weeks} weeks "
        f"from {summary.start}) in {time.perf_counter() - started:.1f} s"
    )
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Build the demo warehouse, evaluate its last weeks, register the demo models.

    The demo's eight weeks end at ``--end-week`` (default: the last complete week, UTC, so
    the calendar `make ui` shows has data in every week): the same seed and the same numbers
    whatever the end, only the dates move. data/warehouse.duckdb is rebuilt when its weeks or
    size differ from those asked for (a week later, `make demo` moves the demo to the new last
    week) or with ``--rebuild``. Each spec's last ``--weeks`` weeks up to ``--week`` (default:
    the demo's last week) are evaluated into ``<out>/<model>/<week>/``, the layout of the
    Dagster assets, and the model's trend dashboard is built beside them, so the demo shows a
    trend and not one week. The runs go to the local MLflow store (out/mlflow), where the
    demo's champion (v1) and candidate (v2) are also registered, so `make ui` shows the runs
    and the registry sensor evaluates the candidate.
    """
    from datetime import timedelta

    from eval_pipelines.artifacts import read_verdict
    from eval_pipelines.dashboard import write_dashboard
    from eval_pipelines.demo import (
        DEMO_NUM_WEEKS,
        build_demo_warehouse,
        latest_demo_start,
        read_demo_warehouse,
        register_demo_models,
    )
    from eval_pipelines.spec import load_spec
    from eval_pipelines.windows import week_window

    if args.end_week:  # a bad --end-week fails before anything is written
        end_week = week_window(args.end_week).start.date()
        start = end_week - timedelta(weeks=DEMO_NUM_WEEKS - 1)
    else:
        start = latest_demo_start()
        end_week = start + timedelta(weeks=DEMO_NUM_WEEKS - 1)
    last = week_window(args.week).start.date() if args.week else end_week
    # The weeks to evaluate, oldest first, never before the demo's first week.
    weeks = [
        last - timedelta(weeks=k)
        for k in reversed(range(args.weeks))
        if last - timedelta(weeks=k) >= start
    ]
    wanted = (start, end_week + timedelta(weeks=1), 2 * (args.rows // 2))
    existing = None if args.rebuild else read_demo_warehouse(DEMO_WAREHOUSE)
    if args.rebuild or existing is None or (existing.start, existing.end, existing.rows) != wanted:
        started = time.perf_counter()
        summary = build_demo_warehouse(DEMO_WAREHOUSE, rows=args.rows, seed=42, start=start)
        print(
            f"demo warehouse: {summary.path} ({summary.rows:,} predictions, {summary.weeks} "
            f"weeks {summary.start} to {end_week}) in {time.perf_counter() - started:.1f} s"
        )
    tracker = _tracker("local")
    verdicts: list[tuple[str, str, str, Path | None]] = []
    dashboards: list[Path] = []
    status = 0
    for path in demo_specs():
        try:
            spec = load_spec(path)
            root = Path(args.out) / spec.model
            print(f"\n==> {spec.model} ({spec.task}): {path}")
            for week in weeks:
                out = root / week.isoformat()
                quiet = week != weeks[-1]  # the earlier weeks in one line each
                run_args = argparse.Namespace(
                    spec=path,
                    week=week.isoformat(),
                    out=out,
                    warehouse=None,
                    mlflow="local",
                    publish=None,
                    quiet=quiet,
                )
                cmd_run(run_args)
                if quiet:
                    decision = read_verdict(out)["decision"]
                    print(f"week:      {week}  {decision.upper()}  {out / 'report.html'}")
        except EvalError as exc:  # one broken demo spec must not hide the others' verdicts
            print(f"error: {exc}", file=sys.stderr)
            status = status or exc.exit_code
            verdicts.append((path.stem, "?", "error", None))
            continue
        decision = read_verdict(out)["decision"]
        verdicts.append((spec.model, spec.task, decision, out / "report.html"))
        dashboard = write_dashboard(args.out, spec.model)
        dashboards.append(dashboard)
        print(f"trend:     {dashboard} ({len(weeks)} weeks)")
        for line in register_demo_models(tracker, spec):
            print(line)
    width = max(len(model) for model, *_ in verdicts)
    task_width = max(len(task) for _, task, *_ in verdicts)
    decision_width = max(len(decision) for _, _, decision, _ in verdicts)
    print(f"\ndemo verdicts, week {weeks[-1]}:")
    for model, task, decision, report in verdicts:
        where = report if report is not None else "(see the error above)"
        print(
            f"  {model:<{width}}  {task:<{task_width}}  "
            f"{decision.upper():<{decision_width}}  {where}"
        )
    if dashboards:
        print(f"\ntrend dashboards, weeks {weeks[0]} to {weeks[-1]}:")
        for dashboard in dashboards:
            print(f"  {dashboard}")
    print(
        "\nnext:      make ui  (Dagster on http://127.0.0.1:3000, MLflow on http://127.0.0.1:5000)"
    )
    return status


def cmd_metrics(args: argparse.Namespace) -> int:
    """Print the metric catalogue (:mod:`eval_pipelines.catalogue`) of one task or all."""
    from eval_pipelines.catalogue import render

    sys.stdout.write(render(args.task, args.format))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Re-render report.html and report.md of a past run from its artifact folder alone."""
    from eval_pipelines.report_artifacts import rerender_report

    for path in rerender_report(args.dir):
        print(path)
    return 0


def cmd_dashboard(args: argparse.Namespace) -> int:
    """Rebuild ``<out-root>/<model>/dashboard.html`` from the model's week folders."""
    from eval_pipelines.dashboard import write_dashboard

    print(write_dashboard(args.out_root, args.model))
    return 0


def _demo_weeks(value: str) -> int:
    """``demo --weeks``: 1 to the demo's eight weeks; anything else is a usage error."""
    from eval_pipelines.demo import DEMO_NUM_WEEKS

    if not value.isdigit() or not 1 <= int(value) <= DEMO_NUM_WEEKS:
        raise argparse.ArgumentTypeError(f"must be a whole number from 1 to {DEMO_NUM_WEEKS}")
    return int(value)


def _task_name(value: str) -> str:
    """``--task``'s value; an unknown task is a usage error naming the valid ones."""
    from eval_pipelines.tasks import task_named

    try:
        return task_named(value).name
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def demo_specs(folder: Path = DEMO_SPECS) -> list[Path]:
    """The demo's specs: the fraud detector's first (the README walks it), then the others
    of ``evals/`` by name, one per task."""
    specs = sorted(folder.glob("*.yaml"))
    return sorted(specs, key=lambda path: path.name != DEMO_SPEC.name)


class _Parser(argparse.ArgumentParser):
    """argparse exits 2 on a usage error, which a CI gate would read as "inconclusive"."""

    def error(self, message: str) -> NoReturn:
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def _version() -> str:
    try:
        return metadata.version("eval-pipelines")
    except metadata.PackageNotFoundError:  # imported from a source tree that was not installed
        return "unknown (not installed)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="eval-pipelines",
        description="Evaluate a model from its warehouse logs and gate its release.",
        epilog=EXIT_STATUS_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="evaluate one week and write the artifacts")
    run.add_argument("--spec", required=True, type=Path, help="the model's YAML spec")
    run.add_argument("--week", required=True, help="Monday starting the week, YYYY-MM-DD (UTC)")
    run.add_argument("--out", required=True, type=Path, help="folder for the artifacts")
    run.add_argument("--warehouse", help="override the spec's warehouse URL")
    run.add_argument(
        "--mlflow",
        default=os.environ.get("MLFLOW_TRACKING_URI"),
        metavar="URI",
        help="log the run to MLflow: a tracking URI, or 'local' for the SQLite store in "
        "out/mlflow (default: $MLFLOW_TRACKING_URI; unset: no MLflow run)",
    )
    run.add_argument(
        "--publish",
        metavar="S3_URL",
        help="also publish the artifacts to s3://bucket/prefix (credentials from the "
        "environment; $AWS_ENDPOINT_URL for S3-compatible stores)",
    )
    run.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout and nothing else: decision, model, window, "
        "candidate, baseline, reasons, paths of the artifacts, report_uri, mlflow_run, alert "
        "(on an error: error and exit_code)",
    )
    noise = run.add_mutually_exclusive_group()
    noise.add_argument(
        "--quiet",
        action="store_true",
        help="print neither progress nor the verdict (errors still go to stderr)",
    )
    noise.add_argument(
        "--progress",
        action="store_true",
        help="report each step on stderr even when it is not a terminal "
        "(also EVAL_PROGRESS=1; default: only on a terminal)",
    )
    run.add_argument("--results-store", metavar="URL", help=RESULTS_STORE_HELP)
    run.set_defaults(func=cmd_run)

    log = sub.add_parser("decisions", help="list the decision log, newest first")
    log.add_argument("--model", help="only this model's decisions")
    log.add_argument("--since", metavar="DATE", help="decided on or after DATE (YYYY-MM-DD, UTC)")
    log.add_argument("--decision", choices=["ship", "ship_with_guardrails", "hold", "inconclusive"])
    log.add_argument("--trigger", choices=["schedule", "backfill", "sensor", "cli", "manual"])
    log.add_argument("--limit", type=int, default=50, help="at most N rows (default 50)")
    log.add_argument("--format", choices=["table", "json", "csv"], default="table")
    log.add_argument("--results-store", metavar="URL", help=RESULTS_STORE_HELP)
    log.set_defaults(func=cmd_decisions)

    gate = sub.add_parser(
        "gate", help="exit 0 on ship, 1 on hold, 2 on inconclusive, 5 on ship_with_guardrails"
    )
    gate.add_argument("dir", type=Path, help="a run's --out folder")
    gate.add_argument("--quiet", action="store_true", help="print nothing")
    gate.add_argument(
        "--json",
        action="store_true",
        help="print one JSON document on stdout: the verdict, the paths of the artifacts and "
        "exit_code",
    )
    gate.set_defaults(func=cmd_gate)

    check = sub.add_parser(
        "validate-spec",
        help="check specs (with --connect, also their tables, columns and types in the warehouse)",
    )
    check.add_argument("specs", nargs="+", type=Path)
    check.add_argument(
        "--connect",
        action="store_true",
        help="also check, reading no row, that the warehouse has the spec's tables and columns "
        "with accepted types (exit 4 naming the table, column, type found and types accepted)",
    )
    check.add_argument("--warehouse", help="override the specs' warehouse URL")
    check.set_defaults(func=cmd_validate_spec)

    dw = sub.add_parser("demo-warehouse", help="write the deterministic demo DuckDB warehouse")
    dw.add_argument("--path", type=Path, default=DEMO_WAREHOUSE)
    dw.add_argument("--rows", type=int, default=200_000)
    dw.add_argument("--seed", type=int, default=42)
    dw.set_defaults(func=cmd_demo_warehouse)

    demo = sub.add_parser(
        "demo", help="build the demo warehouse (eight weeks up to last week) and evaluate it"
    )
    demo.add_argument(
        "--end-week",
        metavar="MONDAY",
        help="the demo's last week, YYYY-MM-DD (default: the last complete week, UTC); "
        "the same data whatever the week, only the dates move",
    )
    demo.add_argument(
        "--week", help="the last week to evaluate, a Monday (default: the demo's last week)"
    )
    demo.add_argument(
        "--weeks",
        type=_demo_weeks,
        default=4,
        help="how many weeks up to --week to evaluate, each into <out>/<model>/<week>/, "
        "for the trend dashboard (default: 4, the weeks with a full drift reference)",
    )
    demo.add_argument("--out", default="out/demo")
    demo.add_argument("--rows", type=int, default=200_000)
    demo.add_argument("--rebuild", action="store_true")
    demo.set_defaults(func=cmd_demo)

    metrics = sub.add_parser(
        "metrics",
        help="list every metric of every task: definition, formula, direction, interval "
        "method and reference (docs/metrics.md)",
    )
    metrics.add_argument("--task", type=_task_name, help="only this task's metrics")
    metrics.add_argument("--format", choices=("text", "markdown", "json"), default="text")
    metrics.set_defaults(func=cmd_metrics)

    report = sub.add_parser(
        "report",
        help="re-render report.html and report.md of a past run from its artifact folder "
        "(no warehouse, no MLflow); a folder missing an artifact is a usage error (exit 64)",
    )
    report.add_argument("dir", type=Path, help="a run's --out folder")
    report.set_defaults(func=cmd_report)

    dashboard = sub.add_parser(
        "dashboard",
        help="rebuild a model's trend dashboard (<out-root>/<model>/dashboard.html) from its "
        "week folders <out-root>/<model>/<YYYY-MM-DD>/",
    )
    dashboard.add_argument("model", help="the model's name (its spec's `model`)")
    dashboard.add_argument(
        "--out-root",
        type=Path,
        default=DASHBOARD_ROOT,
        help=f"folder holding <model>/<week>/ artifact folders (default: {DASHBOARD_ROOT}, "
        "where the Dagster assets write them)",
    )
    dashboard.set_defaults(func=cmd_dashboard)
    return parser


def _execute(args: argparse.Namespace) -> tuple[int, str | None]:
    """Run the command: its exit status and, when it failed, the message put on stderr."""
    try:
        return args.func(args), None
    except EvalError as exc:
        code, message = exc.exit_code, f"error: {exc}"
    except KeyboardInterrupt:
        code, message = EXIT_INTERRUPTED, "interrupted; no artifacts were written"
    except Exception as exc:
        if args.debug:
            raise
        code, message = (
            EXIT_INTERNAL,
            f"internal error: {type(exc).__name__}: {exc}\n"
            "This is a bug in eval-pipelines, not in your input; rerun with --debug for the "
            "traceback and report it.",
        )
    print(message, file=sys.stderr)
    return code, message


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "json", False):
        return _execute(args)[0]
    # stdout must parse as one JSON document: whatever else is printed meanwhile, by us or by
    # a library, goes to stderr. A failed command still prints a document: its error.
    stdout = sys.stdout
    args.document = None
    with contextlib.redirect_stdout(sys.stderr):
        code, error = _execute(args)
    if error is not None:
        args.document = {
            "decision": None,
            "error": error.removeprefix("error: "),
            "exit_code": code,
        }
    stdout.write(json.dumps(args.document, indent=2, default=str) + "\n")
    stdout.flush()
    return code


if __name__ == "__main__":
    sys.exit(main())
