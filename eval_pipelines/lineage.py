"""What ``run.json`` records so a result can be traced and reproduced.

Spec hash, the complete query text and what each query cost, a content fingerprint of the
evaluated window (row count and an order-independent hash computed in SQL), seeds, package
versions and the code version.
The warehouse URL is recorded as written in the spec (``${VAR}`` unexpanded), with any literal
password masked.
"""

import platform
import subprocess
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import eval_pipelines
from eval_pipelines.query_cost import cost_record
from eval_pipelines.warehouse import safe_url

PACKAGES = (
    "eval-pipelines",
    "numpy",
    "pandas",
    "scipy",
    "duckdb",
    "sqlalchemy",
    "pyarrow",
    "pydantic",
    "great-expectations",
    "mlflow",
    "dagster",
)


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["python"] = platform.python_version()
    return versions


def code_version() -> dict[str, str | None]:
    """The package version and, when running from a git checkout, the commit."""
    root = Path(eval_pipelines.__file__).resolve().parent.parent
    commit = None
    dirty = None
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout
        dirty = "yes" if status.strip() else "no"
    except (OSError, subprocess.SubprocessError):
        pass
    return {"package": eval_pipelines.__version__, "git_commit": commit, "git_dirty": dirty}


def run_record(evaluation, runs: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """run.json; ``runs`` names the MLflow and Dagster runs of the evaluation, when known.

    ``queries`` holds each query's text by name; ``query_costs`` what each query cost, in
    the order they ran, and ``cost`` the totals (:mod:`eval_pipelines.query_cost`).
    """
    spec = evaluation.spec
    cost = cost_record(evaluation.query_costs, evaluation.slice_sets)
    return {
        "model": spec.model,
        "window": {
            "start": evaluation.window.start.isoformat(),
            "end": evaluation.window.end.isoformat(),
            "timezone": "UTC",
        },
        "spec_hash": spec.fingerprint(),
        "spec": {**spec.model_dump(mode="json"), "warehouse": safe_url(spec.warehouse_template)},
        "data_fingerprint": evaluation.fingerprint,
        "seeds": {
            "bootstrap": spec.confidence.seed,
            "buckets": spec.confidence.buckets,
            "replicates": spec.confidence.replicates,
        },
        "queries": evaluation.queries,
        "query_costs": cost["queries"],
        "cost": cost["cost"],
        "timings_s": {k: round(v, 4) for k, v in evaluation.timings.items()},
        "input_check_statements": evaluation.input_statements,
        "packages": package_versions(),
        "code_version": code_version(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "runs": {name: value for name, value in (runs or {}).items() if value},
    }
