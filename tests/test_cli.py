"""The command line end to end on the demo warehouse, and its error behaviour."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml
from support.data import METRICS_COLUMNS

from eval_pipelines.cli import main
from eval_pipelines.demo import build_demo_warehouse

WEEK = "2026-11-16"
DEMO_SPEC = Path(__file__).resolve().parents[1] / "evals" / "fraud_detector.yaml"


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


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "eval_pipelines.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_run_then_gate_finds_both_planted_truths(demo):
    out = demo["root"] / "out"
    result = run_cli("run", "--spec", str(demo["spec"]), "--week", WEEK, "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "verdict: HOLD" in result.stdout
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
