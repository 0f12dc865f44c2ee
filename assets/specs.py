"""Finding the models to evaluate: every ``*.yaml`` spec in one folder.

Adding a model is adding a spec file; the code location picks it up on its next load.
"""

import os
import re
from pathlib import Path

from eval_pipelines.errors import SpecError
from eval_pipelines.spec import EvalSpec, load_spec

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPECS_DIR_ENV = "EVAL_SPECS_DIR"


def specs_dir() -> Path:
    """``$EVAL_SPECS_DIR`` if set, else the project's ``evals/`` folder."""
    configured = os.environ.get(SPECS_DIR_ENV)
    return Path(configured) if configured else PROJECT_ROOT / "evals"


def asset_prefix(model: str) -> str:
    """The model name as Dagster accepts it in asset and group names (``[A-Za-z0-9_]``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", model)


def load_specs(folder: Path | None = None) -> list[EvalSpec]:
    """Every spec in ``folder``, sorted by file name; a bad or duplicate spec is a SpecError."""
    folder = folder or specs_dir()
    paths = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not paths:
        raise SpecError(
            f"no model specs (*.yaml) in {folder}; add one or point {SPECS_DIR_ENV} at the "
            "folder that holds them"
        )
    specs: list[EvalSpec] = []
    seen: dict[str, Path] = {}
    for path in paths:
        spec = load_spec(path)
        prefix = asset_prefix(spec.model)
        if prefix in seen:
            raise SpecError(
                f"{path}: model {spec.model!r} gives the same asset names as {seen[prefix]}; "
                "each spec needs its own model name"
            )
        seen[prefix] = path
        specs.append(spec)
    return specs
