"""Finding the models to evaluate: every ``*.yaml`` spec in one folder.

Adding a model is adding a spec file; the code location picks it up on its next load.

``scan_specs`` is what the code location uses: one broken spec (bad YAML, an unknown key, an
unset ``${VAR}``, a model name another file already uses) is set aside as a ``SpecProblem``
and every other spec still loads, so one file cannot take every model out of Dagster.
``load_specs`` is the strict form: the first problem is raised.
"""

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

from eval_pipelines.errors import SpecError
from eval_pipelines.spec import EvalSpec, load_spec

PROJECT_ROOT = Path(__file__).resolve().parent.parent
SPECS_DIR_ENV = "EVAL_SPECS_DIR"

logger = logging.getLogger(__name__)


def specs_dir() -> Path:
    """``$EVAL_SPECS_DIR`` if set, else the project's ``evals/`` folder."""
    configured = os.environ.get(SPECS_DIR_ENV)
    return Path(configured) if configured else PROJECT_ROOT / "evals"


def asset_prefix(model: str) -> str:
    """The model name as Dagster accepts it in asset and group names (``[A-Za-z0-9_]``)."""
    return re.sub(r"[^A-Za-z0-9_]", "_", model)


@dataclass(frozen=True)
class SpecProblem:
    """A spec file that could not be loaded, and the engine's SpecError message for it."""

    path: Path
    message: str
    # The file's stem as Dagster accepts it in asset and group names (``a-b.yaml``: ``a_b``;
    # ``_2``, ``_3``... when two broken files' stems give the same name).
    name: str


@dataclass(frozen=True)
class ScannedSpecs:
    specs: list[EvalSpec]
    problems: list[SpecProblem]


_URL_PASSWORD = re.compile(r"(://[^:/@\s]+:)(?!\$\{)[^@\s]+@")  # ${VAR} stays
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_SHORTEST_SECRET = 4  # shorter values would mangle the message ("line 1") and hide nothing


def redact(message: str, path: Path) -> str:
    """``message`` without secrets: the value of every ``${VAR}`` the spec file references
    is put back as ``${VAR}``, and any ``user:password@`` in a URL loses its password.

    The engine's messages should never hold the expanded warehouse URL; this makes sure
    nothing expanded at load time reaches the UI or the log even if one did."""
    try:
        names = set(_ENV_REFERENCE.findall(path.read_text(errors="replace")))
    except OSError:
        names = set()
    for name in sorted(names):
        value = os.environ.get(name, "")
        if len(value) >= _SHORTEST_SECRET:
            message = message.replace(value, "${" + name + "}")
    return _URL_PASSWORD.sub(r"\1***@", message)


def _spec_paths(folder: Path) -> list[Path]:
    paths = sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")])
    if not paths:
        raise SpecError(
            f"no model specs (*.yaml) in {folder}; add one or point {SPECS_DIR_ENV} at the "
            "folder that holds them"
        )
    return paths


def scan_specs(folder: Path | None = None) -> ScannedSpecs:
    """Every spec in ``folder`` that loads, sorted by file name, and a ``SpecProblem`` (logged
    as a warning) for each one that does not. Of two specs with the same model name (same
    asset names), the first file wins and the second is a problem. An empty folder is still
    a SpecError: there would be nothing to show."""
    folder = folder or specs_dir()
    specs: list[EvalSpec] = []
    problems: list[SpecProblem] = []
    seen: dict[str, Path] = {}
    for path in _spec_paths(folder):
        try:
            spec = load_spec(path)
            prefix = asset_prefix(spec.model)
            if prefix in seen:
                raise SpecError(
                    f"{path}: model {spec.model!r} gives the same asset names as "
                    f"{seen[prefix]}; each spec needs its own model name"
                )
        except SpecError as exc:
            name = asset_prefix(path.stem)
            taken = {p.name for p in problems}
            name = next(
                candidate
                for candidate in (name, *(f"{name}_{n}" for n in range(2, len(problems) + 3)))
                if candidate not in taken
            )
            problem = SpecProblem(path=path, message=redact(str(exc), path), name=name)
            logger.warning(
                "spec %s is not loaded (its model has no assets until it is fixed): %s",
                path,
                problem.message,
            )
            problems.append(problem)
            continue
        seen[prefix] = path
        specs.append(spec)
    return ScannedSpecs(specs=specs, problems=problems)


def load_specs(folder: Path | None = None) -> list[EvalSpec]:
    """Every spec in ``folder``, sorted by file name; a bad or duplicate spec is a SpecError."""
    folder = folder or specs_dir()
    specs: list[EvalSpec] = []
    seen: dict[str, Path] = {}
    for path in _spec_paths(folder):
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
