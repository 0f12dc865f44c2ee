"""Writing a run's artifacts atomically, and reading them back (``gate DIR``).

The folder is built under a temporary sibling name and renamed into place only when every
file is written, so a failed or killed run never leaves a half-written folder; a re-run
replaces the previous folder in one rename.

Staging names are ``.{name}.tmp-{host}~{pid}~{random}`` (and ``.{name}.old-...`` for the
folder being replaced). A process killed mid-write (SIGKILL, OOM) cannot clean up after
itself, so every successful write of ``{name}`` removes the staging folders of the same
target left by processes that are gone: on this host, whose pid no longer runs; from any
host, older than :data:`STALE_AFTER_S`. A live writer's staging folder is never touched.
"""

import json
import os
import shutil
import socket
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval_pipelines.errors import EvalError

if TYPE_CHECKING:  # `gate DIR` only reads JSON: keep it free of the numeric stack's imports
    from eval_pipelines.gates import Verdict
    from eval_pipelines.pipeline import Evaluation


def _json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def write_artifacts(
    evaluation: "Evaluation",
    verdict: "Verdict",
    out: str | os.PathLike,
    runs: Mapping[str, str | None] | None = None,
) -> Path:
    """Write every artifact to ``out`` atomically and return the final folder.

    ``runs``: the ids of the runs this evaluation belongs to (``mlflow_run``,
    ``dagster_run``), recorded in run.json and the report's lineage footer.
    """
    import pandas as pd

    from eval_pipelines.lineage import run_record
    from eval_pipelines.model_card import render_model_card
    from eval_pipelines.report import build_report_model, markdown
    from eval_pipelines.report_artifacts import dashboard_link
    from eval_pipelines.report_html import render_html

    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.tmp-{_owner()}~{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        evaluation.metrics.to_parquet(staging / "metrics.parquet", index=False)
        comparison = evaluation.comparison if evaluation.comparison is not None else pd.DataFrame()
        comparison.to_parquet(staging / "comparison.parquet", index=False)
        evaluation.drift.to_parquet(staging / "drift.parquet", index=False)
        evaluation.coverage.to_parquet(staging / "coverage.parquet", index=False)
        evaluation.curves.to_parquet(staging / "curves.parquet", index=False)
        for name, table in evaluation.tables.items():
            table.to_parquet(staging / f"{name}.parquet", index=False)
        _json(staging / "validation.json", evaluation.validation.to_dict())
        _json(staging / "verdict.json", verdict.to_dict())
        record = run_record(evaluation, runs)
        _json(staging / "run.json", record)
        # The same cost record on its own, for MLflow and for comparing runs' costs.
        _json(staging / "queries.json", {"cost": record["cost"], "queries": record["query_costs"]})
        report = build_report_model(evaluation, verdict, record)
        report.dashboard = dashboard_link(out, evaluation.spec.model)
        (staging / "report.md").write_text(markdown(report))
        (staging / "report.html").write_text(render_html(report), encoding="utf-8")
        (staging / "model_card.md").write_text(render_model_card(evaluation, verdict))
        _replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    remove_stale_staging(out)
    return out


STALE_AFTER_S = 24 * 3600


def _owner() -> str:
    host = socket.gethostname().replace("~", "_").replace("/", "_") or "host"
    return f"{host}~{os.getpid()}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_staging(out: Path) -> list[Path]:
    """Remove ``.{out.name}.tmp-*`` / ``.old-*`` folders whose writer is gone (see module)."""
    removed = []
    host = _owner().split("~")[0]
    for kind in ("tmp", "old"):
        for path in out.parent.glob(f".{out.name}.{kind}-*"):
            owner = path.name[len(f".{out.name}.{kind}-") :].split("~")
            try:
                age = time.time() - path.stat().st_mtime
            except OSError:
                continue
            if len(owner) == 3 and owner[1].isdigit():
                gone = (owner[0] == host and not _pid_alive(int(owner[1]))) or (age > STALE_AFTER_S)
            else:  # an older naming scheme: only by age
                gone = age > STALE_AFTER_S
            if gone and path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
    return removed


def _replace_dir(staging: Path, out: Path) -> None:
    if not out.exists():
        staging.rename(out)
        return
    if not out.is_dir():
        raise EvalError(f"--out {out} exists and is not a folder")
    retired = out.parent / f".{out.name}.old-{_owner()}~{uuid.uuid4().hex[:8]}"
    out.rename(retired)
    try:
        staging.rename(out)
    except BaseException:
        retired.rename(out)
        raise
    shutil.rmtree(retired, ignore_errors=True)


def read_verdict(folder: str | os.PathLike) -> dict:
    path = Path(folder) / "verdict.json"
    if not path.is_file():
        raise EvalError(f"{folder}: no verdict.json here; is this the --out folder of a run?")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise EvalError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
