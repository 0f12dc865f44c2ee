"""A plain (non-editable) install ships the SQL templates and the CLI entry point."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.slow
def test_wheel_contains_sql_templates(tmp_path):
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
            str(ROOT),
        ],
        check=True,
        timeout=300,
        cwd=tmp_path,
    )
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
    assert (target / "bin" / "eval-pipelines").exists() or any(
        target.glob("*.dist-info/entry_points.txt")
    )
