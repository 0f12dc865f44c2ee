"""A past run's report model from its artifact folder alone (``eval-pipelines report DIR``).

An artifact folder holds everything its report was built from: the tables
(``metrics``, ``comparison``, ``drift``, ``coverage`` Parquet files), the verdict, the input
checks and ``run.json``, whose ``spec`` (warehouse URL masked), window and data fingerprint are
the rest. :func:`evaluation_from_artifacts` reads them back into an :class:`Evaluation`, and
:func:`report_model_from_artifacts` hands it to the same builder a run uses
(:func:`eval_pipelines.report.build_report_model`), so a re-rendered report is the report the
run wrote, byte for byte; no warehouse, no MLflow. The queries, timings and sufficient
statistics sizes are not part of any report and are left empty.

The trend dashboard of a model (:mod:`eval_pipelines.dashboard`) sits beside its week folders
(``<root>/<model>/<week>/``): :func:`dashboard_link` says whether a folder is in that layout,
and every report in it links the dashboard.
"""

import json
import os
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import TypeAdapter

from eval_pipelines.errors import EvalError
from eval_pipelines.gates import Reason, Verdict
from eval_pipelines.pipeline import Evaluation
from eval_pipelines.report import build_report_model, markdown
from eval_pipelines.report_html import render_html
from eval_pipelines.report_model import ReportModel
from eval_pipelines.spec import EvalSpec
from eval_pipelines.validation import CheckResult, ValidationReport
from eval_pipelines.windows import Window

# What a report is built from. ``curves.parquet`` and the task's own tables (any other
# ``<name>.parquet``: multiclass ``confusion``) are drawn when present; a folder written
# before they existed re-renders without them.
REQUIRED = (
    "run.json",
    "verdict.json",
    "validation.json",
    "metrics.parquet",
    "comparison.parquet",
    "drift.parquet",
    "coverage.parquet",
)
DASHBOARD_FILE = "dashboard.html"
CURVES_FILE = "curves.parquet"
# run.json dumps durations (labels.max_delay, validation.max_staleness) as ISO 8601
# ("P14D", "PT36H"); the spec's own syntax is "14d", so they are read back as timedeltas.
_ISO_DURATION = re.compile(r"^P(?=\d|T\d)(\d+D)?(T(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?$")
_TIMEDELTA = TypeAdapter(timedelta)


class MissingArtifact(EvalError):
    """A folder lacks a file its report is built from: a usage error (the wrong folder)."""

    exit_code = 64  # the CLI's usage-error code (sysexits.h EX_USAGE)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise EvalError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None


def _durations(value: Any) -> Any:
    """``value`` (a JSON document) with its ISO 8601 durations as timedeltas."""
    if isinstance(value, dict):
        return {key: _durations(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_durations(item) for item in value]
    if isinstance(value, str) and _ISO_DURATION.match(value):
        return _TIMEDELTA.validate_python(value)
    return value


def _check_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise MissingArtifact(f"{folder}: no such folder; give the artifact folder of a run")
    for name in REQUIRED:
        if not (folder / name).is_file():
            raise MissingArtifact(
                f"{folder}: {name} is missing; a report is re-rendered from a complete "
                "artifact folder (the --out folder of a run)"
            )


def evaluation_from_artifacts(folder: str | os.PathLike) -> tuple[Evaluation, Verdict, dict]:
    """The evaluation, verdict and ``run.json`` record a folder was written from."""
    folder = Path(folder)
    _check_folder(folder)
    record = _read_json(folder / "run.json")
    try:
        spec = EvalSpec.model_validate(_durations(record["spec"]))
        window = Window(
            datetime.fromisoformat(record["window"]["start"]),
            datetime.fromisoformat(record["window"]["end"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise EvalError(
            f"{folder / 'run.json'}: no readable spec or window in it ({exc})"
        ) from None
    verdict_doc = _read_json(folder / "verdict.json")
    verdict = Verdict(
        decision=verdict_doc["decision"],
        reasons=[Reason(**reason) for reason in verdict_doc.get("reasons", [])],
        window=verdict_doc.get("window", ""),
        model=verdict_doc.get("model", ""),
        candidate=verdict_doc.get("candidate"),
        baseline=verdict_doc.get("baseline"),
    )
    checks = _read_json(folder / "validation.json")
    validation = ValidationReport(
        window=checks["window"],
        results=[CheckResult(**check) for check in checks.get("checks", [])],
        per_version=checks.get("per_version", []),
    )
    # A run without a ``compare`` writes an empty comparison.parquet for its None.
    comparison = pd.read_parquet(folder / "comparison.parquet")
    evaluation = Evaluation(
        spec=spec,
        window=window,
        validation=validation,
        metrics=pd.read_parquet(folder / "metrics.parquet"),
        comparison=comparison if spec.compare is not None else None,
        drift=pd.read_parquet(folder / "drift.parquet"),
        coverage=pd.read_parquet(folder / "coverage.parquet"),
        queries={},
        fingerprint=record.get("data_fingerprint") or {},
        tables={
            path.stem: pd.read_parquet(path)
            for path in sorted(folder.glob("*.parquet"))
            if path.name not in (*REQUIRED, CURVES_FILE)
        },
    )
    if (folder / CURVES_FILE).exists():
        evaluation.curves = pd.read_parquet(folder / CURVES_FILE)
    return evaluation, verdict, record


def dashboard_link(folder: str | os.PathLike, model: str) -> str | None:
    """``../dashboard.html`` when ``folder`` is a week of ``<root>/<model>/<week>/`` (where
    the model's dashboard is written), else None."""
    folder = Path(folder)
    try:
        date.fromisoformat(folder.name)
    except ValueError:
        return None
    return f"../{DASHBOARD_FILE}" if folder.parent.name == model else None


def report_model_from_artifacts(folder: str | os.PathLike) -> ReportModel:
    """The report model of a past run, from its artifact folder alone."""
    evaluation, verdict, record = evaluation_from_artifacts(folder)
    report = build_report_model(evaluation, verdict, record)
    report.dashboard = dashboard_link(Path(folder).resolve(), evaluation.spec.model)
    return report


def rerender_report(folder: str | os.PathLike) -> list[Path]:
    """Write ``report.html`` and ``report.md`` of ``folder`` again from its artifacts, each
    through a temporary file renamed into place; return their paths."""
    folder = Path(folder)
    report = report_model_from_artifacts(folder)
    written = []
    for name, text in (("report.md", markdown(report)), ("report.html", render_html(report))):
        target = folder / name
        staging = folder / f".{name}.tmp-{os.getpid()}"
        try:
            staging.write_text(text, encoding="utf-8")
            staging.replace(target)
        except BaseException:
            staging.unlink(missing_ok=True)
            raise
        written.append(target)
    return written
