"""An empty MLflow SQLite store, migrated once per test session and copied where a test needs one.

Typical use::

    tracking = migrated_store(tmp_path / "mlflow.db")   # "sqlite:////.../mlflow.db"

Creating an MLflow SQLite store runs MLflow's alembic migrations (about a hundred): 5-8 s on a
busy 2-core machine, paid by every test that evaluates into a new ``sqlite:///.../mlflow.db``
and by every ``mlflow server`` a test starts on a new backend store. A byte copy of an empty
store that MLflow itself created and migrated is that same store (the same schema at the same
alembic revision, holding only the ``Default`` experiment), as a user's existing store would
be: it opens in a tenth of a second. The template is made once per session by MLflow in a
child process whose working folder is the template's own temporary folder (the ``Default``
experiment's artifact location points there, never into the checkout; a store an ``mlflow
server`` creates would say ``mlflow-artifacts:/0`` instead, but the engine, and every test,
logs to named experiments only, whose locations are set when they are created).

Tests whose subject is the creation of a store (first use by concurrent writers, migrations
under the store lock) must start from no file, not from this copy.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

__all__ = ["migrated_store"]

_CREATE = """
import sys
from mlflow import MlflowClient

uri = sys.argv[1]
MlflowClient(tracking_uri=uri, registry_uri=uri).search_experiments()
"""

_template: Path | None = None


def _template_path() -> Path:
    """The session's migrated empty store, made on first use."""
    global _template
    if _template is None:
        folder = Path(tempfile.mkdtemp(prefix="mlflow-template-"))
        atexit.register(shutil.rmtree, folder, True)
        database = folder / "mlflow.db"
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        done = subprocess.run(
            [sys.executable, "-c", _CREATE, f"sqlite:///{database}"],
            cwd=folder,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0 or not database.is_file():
            raise RuntimeError(f"could not create the MLflow template store:\n{done.stderr}")
        _template = database
    return _template


def migrated_store(path: str | os.PathLike, *, exist_ok: bool = False) -> str:
    """Copy the migrated empty store to ``path``; return its ``sqlite:///`` URI.

    An existing file at ``path`` is a store in use: with ``exist_ok`` it is kept as it is (a
    helper called again for the same store), else ``FileExistsError``.
    """
    target = Path(path).resolve()
    if target.exists():
        if exist_ok:
            return f"sqlite:///{target}"
        raise FileExistsError(f"{target} exists: a copy would replace a store in use")
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(_template_path(), target)
    return f"sqlite:///{target}"
