"""A plain (non-editable) install ships the SQL templates, the report template and the CLI
entry point."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Not part of the source: what a build, the demo, the tools and git leave in a checkout.
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "build",
    "dist",
    "*.egg-info",
    "__pycache__",
    ".*_cache",
    "out",
    "data",
    "mlruns",
    ".dagster_home",
    ".tmp_dagster_home_*",
)


@pytest.mark.slow
def test_wheel_contains_sql_templates(tmp_path):
    # pip builds a local directory in place (setuptools writes build/ and *.egg-info next to
    # the sources): build a copy, never the checkout.
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCE)
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(target),
            str(source),
        ],
        check=True,
        timeout=300,
        cwd=tmp_path,
    )

    # Every subpackage of the sources is installed (a package left out of pyproject.toml
    # would still import here through the checkout's editable install).
    def subpackages(root: Path) -> set[str]:
        return {
            str(p.parent.relative_to(root)) for p in (root / "eval_pipelines").rglob("__init__.py")
        }

    assert subpackages(target) >= subpackages(source)
    probe = (
        "import importlib.resources as r, eval_pipelines.sqlbuild as b;"
        "names = sorted(p.name for p in r.files('eval_pipelines.sql').iterdir());"
        "print(b.__file__); print(names); print(len(b.template('sufficient_statistics')))"
    )
    env = {**os.environ, "PYTHONPATH": str(target)}
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    module_file, names, length = result.stdout.splitlines()
    assert module_file.startswith(str(target))
    for name in (
        "window.sql",
        "sufficient_statistics.sql",
        "paired_counts.sql",
        "drift_histograms.sql",
    ):
        assert name in names
    assert int(length) > 500
    # report.html's template ships as package data (a missing one fails every run's artifacts).
    assert (target / "eval_pipelines" / "templates" / "report.html.j2").is_file()
    assert (target / "bin" / "eval-pipelines").exists() or any(
        target.glob("*.dist-info/entry_points.txt")
    )
