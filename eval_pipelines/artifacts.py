"""Writing a run's artifacts atomically, and reading them back (``gate DIR``).

The folder is built under a temporary sibling name and renamed into place only when every
file is written, so a failed or killed run never leaves a half-written folder; a re-run
replaces the previous folder in one rename.
"""

import json
import os
import shutil
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from eval_pipelines.errors import EvalError

if TYPE_CHECKING:  # `gate DIR` only reads JSON: keep it free of the numeric stack's imports
    from eval_pipelines.gates import Verdict
    from eval_pipelines.pipeline import Evaluation


def _json(path: Path, payload: Any) -> None:
    path.write_text(json.dumps(payload, indent=2, sort_keys=False, default=str) + "\n")


def write_artifacts(evaluation: "Evaluation", verdict: "Verdict", out: str | os.PathLike) -> Path:
    """Write every artifact to ``out`` atomically and return the final folder."""
    import pandas as pd

    from eval_pipelines.lineage import run_record
    from eval_pipelines.report import render_markdown

    out = Path(out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = out.parent / f".{out.name}.tmp-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    try:
        evaluation.metrics.to_parquet(staging / "metrics.parquet", index=False)
        comparison = evaluation.comparison if evaluation.comparison is not None else pd.DataFrame()
        comparison.to_parquet(staging / "comparison.parquet", index=False)
        evaluation.drift.to_parquet(staging / "drift.parquet", index=False)
        evaluation.coverage.to_parquet(staging / "coverage.parquet", index=False)
        _json(staging / "validation.json", evaluation.validation.to_dict())
        _json(staging / "verdict.json", verdict.to_dict())
        _json(staging / "run.json", run_record(evaluation))
        (staging / "report.md").write_text(render_markdown(evaluation, verdict))
        _replace_dir(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out


def _replace_dir(staging: Path, out: Path) -> None:
    if not out.exists():
        staging.rename(out)
        return
    if not out.is_dir():
        raise EvalError(f"--out {out} exists and is not a folder")
    retired = out.parent / f".{out.name}.old-{uuid.uuid4().hex[:8]}"
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
