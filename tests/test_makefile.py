"""`make install` / `make demo` say what they are doing; an installed checkout stays quiet.

The real Makefile recipes run with stand-ins for python, pip and eval-pipelines (in a
temporary VENV), so nothing is downloaded and the checkout's .venv is not touched.
"""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PIP = """#!/bin/sh
echo "pip $*" >> "{log}"
case "$*" in *--quiet*) ;; *) echo "Collecting dagster (from eval-pipelines)";; esac
"""
VENV_PYTHON = f"""#!/bin/sh
exec {sys.executable} "$@"
"""
EVAL_PIPELINES = """#!/bin/sh
echo "eval-pipelines $*"
"""


def _executable(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(0o755)


@pytest.fixture
def fake_python(tmp_path) -> Path:
    """A `python3 -m venv DIR` that lays out DIR/bin with the stand-ins."""
    log = tmp_path / "pip.log"
    script = tmp_path / "python3"
    _executable(
        script,
        f"""#!/bin/sh
[ "$1 $2" = "-m venv" ] || exit 9
mkdir -p "$3/bin"
cat > "$3/bin/pip" <<'EOF'
{PIP.format(log=log)}EOF
cat > "$3/bin/python" <<'EOF'
{VENV_PYTHON}EOF
cat > "$3/bin/eval-pipelines" <<'EOF'
{EVAL_PIPELINES}EOF
chmod +x "$3/bin/pip" "$3/bin/python" "$3/bin/eval-pipelines"
""",
    )
    return script


def make(target: str, venv: Path, python: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            "make",
            "--no-print-directory",
            "-C",
            str(ROOT),
            target,
            f"VENV={venv}",
            f"PYTHON={python}",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_a_first_install_says_what_it_installs_then_an_installed_one_is_quiet(
    tmp_path, fake_python
):
    venv = tmp_path / "venv"
    result = make("demo", venv, fake_python)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    direct = len(project["dependencies"]) + len(project["optional-dependencies"]["dev"])

    def index(start: str) -> int:
        return next(i for i, line in enumerate(lines) if line.startswith(start))

    steps = [
        index(f"==> creating the virtualenv {venv}"),
        index("==> upgrading pip"),
        index(f"==> installing eval-pipelines (editable) and its {direct} direct dependencies"),
        index("Collecting dagster"),  # pip's own listing is shown, not --quiet
        index(f"==> installed: {venv}/bin/eval-pipelines"),
        index("==> eval-pipelines demo:"),
        index("eval-pipelines demo"),
    ]
    assert steps == sorted(steps)
    pip_calls = (tmp_path / "pip.log").read_text().splitlines()
    assert pip_calls == ["pip install --quiet --upgrade pip", "pip install -e .[dev]"]

    again = make("install", venv, fake_python)  # what `make test` runs first
    assert again.returncode == 0, again.stderr
    assert "==>" not in again.stdout
    assert (tmp_path / "pip.log").read_text().splitlines() == pip_calls
