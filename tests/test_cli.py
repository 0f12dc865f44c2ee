"""The command line end to end on the demo warehouse, and its error behaviour."""

import importlib.metadata
import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from support.data import METRICS_COLUMNS

import eval_pipelines.cli
from eval_pipelines.cli import (
    EXIT_CODES,
    EXIT_ERROR,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    EXIT_VALIDATION,
    main,
)
from eval_pipelines.demo import build_demo_warehouse

WEEK = "2026-11-16"
ROOT = Path(__file__).resolve().parents[1]
DEMO_SPEC = ROOT / "evals" / "fraud_detector.yaml"
# What `run` reports on the demo spec (it compares two versions and checks drift), in order.
DEMO_STEPS = [
    "input checks",
    "aggregate query",
    "metrics and bootstrap intervals",
    "paired comparison",
    "drift",
    "curves",
    "writing artifacts",
]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("demo")
    warehouse = root / "warehouse.duckdb"
    build_demo_warehouse(warehouse, rows=80_000)
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["warehouse"] = f"duckdb:///{warehouse}"
    spec_path = root / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    return {"root": root, "spec": spec_path, "raw": spec, "warehouse": warehouse}


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "eval_pipelines.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=None if env is None else {**os.environ, **env},
    )


def run_cli_on_a_terminal(*args: str) -> tuple[int, str, str]:
    """The command with stderr on a pseudo-terminal, as typed in a shell: (exit, stdout, stderr).
    stdout stays a pipe, so what a terminal user would see is told apart from the result."""
    terminal, child_end = pty.openpty()
    with subprocess.Popen(
        [sys.executable, "-m", "eval_pipelines.cli", *args],
        stdout=subprocess.PIPE,
        stderr=child_end,
    ) as process:
        os.close(child_end)
        chunks = []
        while True:
            try:
                chunk = os.read(terminal, 4096)
            except OSError:  # EIO: the command closed the terminal (it exited)
                break
            if not chunk:
                break
            chunks.append(chunk)
        stdout = process.stdout.read().decode()
        code = process.wait(timeout=300)
    os.close(terminal)
    return code, stdout, b"".join(chunks).decode().replace("\r\n", "\n")


def progress_steps(stderr: str) -> list[str]:
    """The steps announced on stderr, in order (lines ``[  3.2s] <step> ...``); each must also
    have its ``[  5.3s] <step> done in 2.1s`` line."""
    steps = re.findall(r"^\[ *\d+\.\ds\] (.+) \.\.\.$", stderr, flags=re.MULTILINE)
    for step in steps:
        assert re.search(
            rf"^\[ *\d+\.\ds\] {re.escape(step)} done in \d+\.\ds$", stderr, re.MULTILINE
        ), step
    return steps


def test_run_then_gate_finds_both_planted_truths(demo):
    out = demo["root"] / "out"
    result = run_cli("run", "--spec", str(demo["spec"]), "--week", WEEK, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "verdict: HOLD" in result.stdout
    # The page to open is printed beside report.md, and it exists.
    html = next(line for line in result.stdout.splitlines() if line.startswith("html:"))
    assert Path(html.split(maxsplit=1)[1]) == out.resolve() / "report.html"
    assert (out / "report.html").is_file()
    assert progress_steps(result.stderr) == []  # stderr is not a terminal: no progress
    for name in (
        "metrics.parquet",
        "comparison.parquet",
        "drift.parquet",
        "validation.json",
        "verdict.json",
        "run.json",
        "report.md",
    ):
        assert (out / name).is_file(), name

    verdict = json.loads((out / "verdict.json").read_text())
    holds = [r for r in verdict["reasons"] if r["outcome"] == "hold"]
    assert any(r["slice"] == "device=android" and "recall" in r["message"] for r in holds)
    assert any(r["feature"] == "amount" for r in holds)
    assert not any(r["feature"] not in (None, "amount") for r in holds)

    metrics = pd.read_parquet(out / "metrics.parquet")
    assert list(metrics.columns) == METRICS_COLUMNS
    assert {"overall", "country=US", "country=US, device=ios"} <= set(metrics["slice"])
    overall = metrics.set_index(["model_version", "slice", "metric"])
    assert (
        overall.loc[("v2", "overall", "roc_auc"), "value"]
        > overall.loc[("v1", "overall", "roc_auc"), "value"]
    )
    comparison = pd.read_parquet(out / "comparison.parquet")
    android = comparison[
        (comparison["slice"] == "device=android") & (comparison["metric"] == "recall")
    ]
    assert android["outcome"].item() == "regressed"

    run = json.loads((out / "run.json").read_text())
    assert len(run["spec_hash"]) == 64
    assert "GROUPING SETS" in run["queries"]["sufficient_statistics"]
    assert run["data_fingerprint"]["rows"] > 0
    assert run["seeds"]["bootstrap"] == 7

    report = (out / "report.md").read_text()
    assert "**Verdict: HOLD" in report
    worse = next(line for line in report.splitlines() if line.startswith("- Worse on"))
    assert "recall" in worse and "android" in worse
    drifted = next(line for line in report.splitlines() if line.startswith("- Drifted"))
    assert "amount" in drifted and "account_age_days" not in drifted

    gate = run_cli("gate", str(out))
    assert gate.returncode == 1
    assert "HOLD" in gate.stdout


def test_two_runs_give_identical_results(demo, capsys):
    first, second = demo["root"] / "a", demo["root"] / "b"
    for out in (first, second):
        assert main(["run", "--spec", str(demo["spec"]), "--week", WEEK, "--out", str(out)]) == 0
    for name in ("metrics.parquet", "comparison.parquet", "drift.parquet", "coverage.parquet"):
        pd.testing.assert_frame_equal(pd.read_parquet(first / name), pd.read_parquet(second / name))
    assert (first / "verdict.json").read_text() == (second / "verdict.json").read_text()


def test_rerun_replaces_the_folder_atomically(demo, capsys):
    out = demo["root"] / "rerun"
    assert main(["run", "--spec", str(demo["spec"]), "--week", WEEK, "--out", str(out)]) == 0
    (out / "stale.txt").write_text("from an older run")
    assert main(["run", "--spec", str(demo["spec"]), "--week", WEEK, "--out", str(out)]) == 0
    assert not (out / "stale.txt").exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.")]


def _spec_with(demo, tmp_path, **changes) -> Path:
    raw = json.loads(json.dumps(demo["raw"]))
    for dotted, value in changes.items():
        target = raw
        *parents, last = dotted.split("__")
        for key in parents:
            target = target[key]
        target[last] = value
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.mark.parametrize(
    ("changes", "week", "code", "phrases"),
    [
        ({}, "2026-11-17", 3, ["2026-11-17 is a Tuesday", "did you mean 2026-11-16"]),
        ({}, "17/11/2026", 3, ["expected a date YYYY-MM-DD"]),
        ({"predictions__table": "inference_log"}, WEEK, 3, ["inference_log"]),
        (
            {"predictions__score": "scores"},
            WEEK,
            4,
            ["predictions.score: column 'scores' not found", "did you mean 'score'"],
        ),
        (
            {"compare": {"baseline": "v0", "candidate": "v2"}},
            WEEK,
            4,
            ["compare.baseline: version 'v0' has no predictions"],
        ),
        ({}, "2020-01-06", 4, ["no predictions in inference_logs for the window"]),
        (
            {"warehouse": "postgresql://eval:canary-pw-123@127.0.0.1:9/warehouse"},
            WEEK,
            3,
            ["warehouse postgresql://eval:***@127.0.0.1:9/warehouse"],
        ),
    ],
)
def test_bad_input_is_one_sentence_and_writes_nothing(
    demo, tmp_path, capsys, changes, week, code, phrases
):
    spec = _spec_with(demo, tmp_path, **changes)
    out = tmp_path / "out"
    assert main(["run", "--spec", str(spec), "--week", week, "--out", str(out)]) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "Traceback" not in err
    assert "canary-pw-123" not in err
    for phrase in phrases:
        assert phrase in err
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def test_gate_on_a_folder_without_a_verdict(tmp_path, capsys):
    assert main(["gate", str(tmp_path)]) == 3
    assert "no verdict.json" in capsys.readouterr().err


def test_missing_spec_file(tmp_path, capsys):
    out = tmp_path / "x"
    code = main(["run", "--spec", str(tmp_path / "nope.yaml"), "--week", WEEK, "--out", str(out)])
    assert code == 3
    assert "cannot read spec" in capsys.readouterr().err
    assert not out.exists()


def test_version_is_the_installed_package_version():
    result = run_cli("--version")
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"eval-pipelines {importlib.metadata.version('eval-pipelines')}\n"


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["run", "--spec", "s.yaml", "--week", WEEK, "--out", "o", "--bogus"], "--bogus"),
        (["run", "--week", WEEK, "--out", "o"], "required: --spec"),
        (["run", "--json", "--week", WEEK, "--out", "o"], "required: --spec"),
        (
            ["run", "--spec", "s.yaml", "--week", WEEK, "--out", "o", "--quiet", "--progress"],
            "--progress",
        ),
        (["gate"], "required: dir"),
        (["demo-warehouse", "--rows", "many"], "'many'"),
        ([], "required: command"),
    ],
)
def test_a_usage_error_has_its_own_exit_status_and_prints_usage_on_stderr(
    tmp_path, args, complaint
):
    result = subprocess.run(
        [sys.executable, "-m", "eval_pipelines.cli", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == EXIT_USAGE
    assert EXIT_USAGE not in {*EXIT_CODES.values(), EXIT_ERROR, EXIT_VALIDATION}
    assert result.stdout == ""  # not even under --json: nothing ran
    assert result.stderr.startswith("usage: eval-pipelines")
    assert "error: " in result.stderr and complaint in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_run_json_is_the_only_thing_on_stdout_even_with_progress_forced_on(demo):
    out = demo["root"] / "json"
    result = run_cli(
        "run",
        "--spec",
        str(demo["spec"]),
        "--week",
        WEEK,
        "--out",
        str(out),
        "--json",
        "--progress",
    )
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)  # all of stdout, so nothing else is on it
    verdict = json.loads((out / "verdict.json").read_text())
    for key in ("decision", "model", "window", "candidate", "baseline", "reasons"):
        assert document[key] == verdict[key], key
    assert (document["decision"], document["candidate"], document["baseline"]) == (
        "hold",
        "v2",
        "v1",
    )
    paths = document["paths"]
    assert paths["folder"] == str(out.resolve())
    assert paths["report"] == document["report_uri"] == str(out.resolve() / "report.md")
    assert {"verdict", "run", "metrics", "comparison", "drift", "report_html"} <= set(paths)
    assert all(Path(path).exists() for path in paths.values())
    assert document["mlflow_run"] is None and document["exit_code"] == 0
    assert "verdict:" not in result.stderr  # the human summary is not printed at all

    assert progress_steps(result.stderr) == DEMO_STEPS
    # the progress steps are the timed steps of run.json
    run = json.loads((out / "run.json").read_text())
    steps = {k for k in run["timings_s"] if not k.startswith("input_checks.")}
    assert steps == {
        "validation_s",
        "aggregate_s",
        "metrics_s",
        "comparison_s",
        "drift_s",
        "curves_s",
    }
    # ... and the input checks' own breakdown beside them
    checks = {k.split(".", 1)[1] for k in run["timings_s"] if k.startswith("input_checks.")}
    assert {"column_types", "columns", "window_table", "window_contents"} <= checks
    assert {"gx.window", "gx.labels", "labels_unique"} <= checks
    assert run["input_check_statements"]["warehouse"] > 0

    gate = run_cli("gate", "--json", str(out))
    assert gate.returncode == EXIT_CODES["hold"]
    gated = json.loads(gate.stdout)
    assert gated["decision"] == "hold" and gated["exit_code"] == gate.returncode
    assert gated["reasons"] == verdict["reasons"]
    assert gated["paths"] == paths
    assert gate.stderr == ""


def test_run_json_on_bad_input_is_an_error_document(demo, tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "run", "--spec", str(demo["spec"]), "--week", "2026-11-17", "--out", str(out), "--json"
    )
    assert result.returncode == EXIT_ERROR
    document = json.loads(result.stdout)
    assert document["decision"] is None and document["exit_code"] == EXIT_ERROR
    assert "2026-11-17 is a Tuesday" in document["error"]
    assert result.stderr.startswith("error: week: 2026-11-17 is a Tuesday")
    assert not out.exists()


def test_progress_on_a_terminal_and_silent_under_quiet(demo):
    out = demo["root"] / "terminal"
    args = ["run", "--spec", str(demo["spec"]), "--week", WEEK, "--out", str(out)]
    code, stdout, stderr = run_cli_on_a_terminal(*args)
    assert code == 0, stderr
    assert progress_steps(stderr) == DEMO_STEPS
    assert "verdict: HOLD" in stdout and progress_steps(stdout) == []

    code, stdout, stderr = run_cli_on_a_terminal(*args, "--quiet")
    assert code == 0, stderr
    assert (stdout, stderr) == ("", "")
    assert json.loads((out / "verdict.json").read_text())["decision"] == "hold"


def test_progress_forced_by_the_environment(demo, tmp_path):
    result = run_cli(
        "run",
        *("--spec", str(demo["spec"]), "--week", WEEK, "--out", str(tmp_path / "out")),
        env={"EVAL_PROGRESS": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert progress_steps(result.stderr) == DEMO_STEPS
    assert progress_steps(result.stdout) == []


@pytest.mark.parametrize(
    ("raised", "code", "message"),
    [
        (ZeroDivisionError("boom"), EXIT_INTERNAL, "internal error: ZeroDivisionError: boom"),
        (KeyboardInterrupt(), EXIT_INTERRUPTED, "interrupted"),
    ],
)
def test_unexpected_failures_have_their_own_exit_status_and_json_stays_one_document(
    tmp_path, monkeypatch, capsys, raised, code, message
):
    def read_verdict(folder):
        print("a library talking on stdout")
        raise raised

    monkeypatch.setattr("eval_pipelines.artifacts.read_verdict", read_verdict)
    assert main(["gate", str(tmp_path)]) == code
    assert message in capsys.readouterr().err

    assert main(["gate", "--json", str(tmp_path)]) == code
    stdout, stderr = capsys.readouterr()
    document = json.loads(stdout)
    assert document["exit_code"] == code and message in document["error"]
    assert "a library talking on stdout" in stderr and "Traceback" not in stderr


def _listed_codes(text: str, row: str) -> set[int]:
    return {int(code) for code in re.findall(row, text, flags=re.MULTILINE)}


def test_the_exit_status_table_is_complete_and_documented_everywhere():
    codes = {
        *EXIT_CODES.values(),
        EXIT_ERROR,
        EXIT_VALIDATION,
        EXIT_USAGE,
        EXIT_INTERNAL,
        EXIT_INTERRUPTED,
    }
    assert len(codes) == 9  # no two outcomes share a status
    help_text = run_cli("--help").stdout
    assert _listed_codes(help_text, r"^ {2}(\d+) {2,}\S") == codes
    assert _listed_codes(eval_pipelines.cli.__doc__, r"^ {4}(\d+) {2,}\S") == codes
    readme = (ROOT / "README.md").read_text()
    cli_section = readme.split("\n## Command line\n")[1].split("\n## ")[0]
    assert _listed_codes(cli_section, r"^\| `?(\d+)`? \|") == codes
