"""Release evidence: every verdict lands as a row of the decision log in the results store,
``decisions`` lists and filters it (DuckDB by default, PostgreSQL for concurrent
deployments), and each run folder holds a model card naming what improved and regressed."""

import csv
import io
import json
import os
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
import sqlalchemy as sa
import yaml
from dagster import instance_for_test, materialize
from support.mlflow_store import migrated_store

from assets.evaluation import build_weekly_assets
from eval_pipelines.cli import build_parser, main
from eval_pipelines.decisions import (
    DECISIONS,
    DEFAULT_RESULTS_STORE,
    TRIGGERS,
    DecisionLog,
    DecisionRecord,
    trigger_of,
)
from eval_pipelines.demo import build_demo_warehouse
from eval_pipelines.errors import EvalError
from eval_pipelines.gates import Reason, Verdict
from eval_pipelines.spec import load_spec
from eval_pipelines.windows import week_window
from resources import AlertsResource, ArtifactStoreResource, MlflowResource, WarehouseResource

WEEK = "2026-11-16"
ROOT = Path(__file__).resolve().parents[1]
DEMO_SPEC = ROOT / "evals" / "fraud_detector.yaml"


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("decisions")
    warehouse = root / "warehouse.duckdb"
    build_demo_warehouse(warehouse, rows=40_000)
    spec = yaml.safe_load(DEMO_SPEC.read_text())
    spec["warehouse"] = f"duckdb:///{warehouse}"
    spec_path = root / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    return {"root": root, "spec": spec_path, "warehouse": warehouse}


@pytest.fixture(scope="module")
def logged(demo) -> dict:
    """The demo week run twice from the CLI into one results store."""
    store = f"duckdb:///{demo['root'] / 'results.duckdb'}"
    outs = [demo["root"] / "first", demo["root"] / "second"]
    for out in outs:
        args = ["run", "--spec", str(demo["spec"]), "--week", WEEK, "--out", str(out)]
        assert main([*args, "--results-store", store, "--quiet"]) == 0
    return {"store": store, "outs": outs}


def decisions(capsys, *args: str) -> str:
    capsys.readouterr()
    assert main(["decisions", *args]) == 0
    return capsys.readouterr().out


def test_each_cli_run_appends_one_row_with_its_evidence(logged, demo):
    rows = DecisionLog(logged["store"]).read()
    assert len(rows) == 2  # a re-run of the week appends; the first row stays
    newest = rows.iloc[0]
    verdict = json.loads((logged["outs"][1] / "verdict.json").read_text())
    assert newest["decision"] == verdict["decision"] == "hold"
    assert newest["model"] == "fraud_detector"
    assert (newest["baseline_version"], newest["candidate_version"]) == ("v1", "v2")
    assert newest["week_start"] == datetime(2026, 11, 16)
    assert newest["week_end"] == datetime(2026, 11, 23)
    assert newest["trigger"] == "cli"
    assert newest["artifacts"] == str(logged["outs"][1])
    assert newest["report"] == str(logged["outs"][1] / "report.md")
    assert json.loads(newest["reasons"]) == verdict["reasons"]
    run = json.loads((logged["outs"][1] / "run.json").read_text())
    assert newest["spec_hash"] == run["spec_hash"]
    assert newest["code_version"].startswith(run["code_version"]["package"])
    decided = newest["decided_at"]
    assert abs(datetime.now(UTC).replace(tzinfo=None) - decided) < timedelta(minutes=30)
    assert rows.iloc[1]["artifacts"] == str(logged["outs"][0])
    assert rows["decision_id"].nunique() == 2


def test_decisions_lists_newest_first_and_filters(logged, capsys):
    store = ["--results-store", logged["store"]]
    table = decisions(capsys, *store)
    lines = table.splitlines()
    assert lines[0].split() == [
        "decided_at", "model", "week", "versions", "decision", "trigger", "artifacts"
    ]  # fmt: skip
    assert len(lines) == 3 and str(logged["outs"][1]) in lines[1]
    assert lines[1].split()[2:9] == [
        "fraud_detector",
        "2026-11-16",
        "v1",
        "->",
        "v2",
        "hold",
        "cli",
    ]

    shown = json.loads(decisions(capsys, *store, "--format", "json", "--limit", "1"))
    assert [r["artifacts"] for r in shown] == [str(logged["outs"][1])]
    assert shown[0]["reasons"][0]["gate"] and isinstance(shown[0]["guardrails"], list)

    def count(*filters: str) -> int:
        return len(json.loads(decisions(capsys, *store, "--format", "json", *filters)))

    assert count("--model", "fraud_detector") == 2
    assert count("--model", "churn") == 0
    assert count("--decision", "hold") == 2
    assert count("--decision", "ship") == 0
    assert count("--trigger", "cli") == 2
    assert count("--trigger", "schedule") == 0
    today = datetime.now(UTC).date()
    assert count("--since", (today - timedelta(days=1)).isoformat()) == 2
    assert count("--since", (today + timedelta(days=2)).isoformat()) == 0

    parsed = list(csv.DictReader(io.StringIO(decisions(capsys, *store, "--format", "csv"))))
    assert [r["decision"] for r in parsed] == ["hold", "hold"]
    assert json.loads(parsed[0]["reasons"])[0]["outcome"]


def test_decisions_on_an_empty_store_says_so_and_creates_nothing(tmp_path, capsys):
    store = tmp_path / "none.duckdb"
    out = decisions(capsys, "--results-store", f"duckdb:///{store}")
    assert out == f"no decisions recorded in duckdb:///{store}\n"
    assert not store.exists()


def test_a_bad_since_is_one_sentence_naming_the_flag(tmp_path, capsys):
    code = main(["decisions", "--since", "last week", "--results-store", f"duckdb:///{tmp_path}/r"])
    assert code == 3
    assert "--since 'last week' is not a date (YYYY-MM-DD)" in capsys.readouterr().err


def test_the_cli_choices_are_the_engines_vocabulary():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices["decisions"]
    choices = {a.dest: a.choices for a in sub._actions if a.choices}
    assert set(choices["decision"]) == set(DECISIONS)
    assert set(choices["trigger"]) == set(TRIGGERS)


def test_the_source_warehouse_is_never_the_results_store(demo, tmp_path, capsys):
    out = tmp_path / "out"
    args = ["run", "--spec", str(demo["spec"]), "--week", WEEK, "--out", str(out)]
    code = main([*args, "--results-store", f"duckdb:///{demo['warehouse']}"])
    assert code == 3
    assert "is the source warehouse" in capsys.readouterr().err
    assert not out.exists()  # refused before any work
    tables = duckdb.connect(str(demo["warehouse"]), read_only=True).sql("SHOW TABLES").fetchall()
    assert ("decisions",) not in tables


def test_the_default_store_comes_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("EVAL_RESULTS_STORE_URL")
    assert DecisionLog().url.database == str(Path("out/results.duckdb").resolve())
    assert DEFAULT_RESULTS_STORE == "duckdb:///out/results.duckdb"
    monkeypatch.setenv("EVAL_RESULTS_STORE_URL", f"duckdb:///{tmp_path}/env.duckdb")
    assert DecisionLog().path == tmp_path / "env.duckdb"


@pytest.mark.parametrize(
    ("tags", "trigger"),
    [
        ({"dagster/schedule_name": "weekly"}, "schedule"),
        ({"dagster/backfill": "abcd", "dagster/schedule_name": "weekly"}, "backfill"),
        ({"dagster/sensor_name": "registry"}, "sensor"),
        ({}, "manual"),
    ],
)
def test_the_trigger_of_a_dagster_run_comes_from_its_tags(tags, trigger):
    assert trigger_of(tags) == trigger


def test_a_dagster_backfill_run_logs_its_trigger_and_run_id(demo, tmp_path):
    store = f"duckdb:///{tmp_path / 'results.duckdb'}"
    resources = {
        "warehouse": WarehouseResource(url=f"duckdb:///{demo['warehouse']}"),
        "artifacts": ArtifactStoreResource(root=str(tmp_path / "artifacts"), results_store=store),
        "mlflow": MlflowResource(
            tracking_uri=migrated_store(tmp_path / "mlflow.db"),
            artifact_location=str(tmp_path / "mlartifacts"),
        ),
        "alerts": AlertsResource(),
    }
    with instance_for_test() as instance:
        result = materialize(
            [build_weekly_assets(load_spec(demo["spec"]))],
            partition_key=WEEK,
            instance=instance,
            resources=resources,
            tags={"dagster/backfill": "bf-1"},
        )
    [row] = DecisionLog(store).read().to_dict(orient="records")
    assert row["trigger"] == "backfill"
    assert row["dagster_run_id"] == result.run_id
    assert row["artifacts"] == str((tmp_path / "artifacts" / "fraud_detector" / WEEK).resolve())
    assert row["mlflow_run_id"] and row["decision"] == "hold"


def _record(model: str, decision: str = "ship", trigger: str = "cli") -> DecisionRecord:
    verdict = Verdict(decision, [Reason("g", "pass", "ok")], WEEK, model, "v2", "v1")
    return DecisionRecord.of(verdict, week_window(WEEK), spec_hash="h", trigger=trigger)


APPENDER = """
import sys
from test_decisions import _record
from eval_pipelines.decisions import DecisionLog
log = DecisionLog(sys.argv[1])
for i in range(int(sys.argv[3])):
    log.append(_record(sys.argv[2]))
"""


def _append_concurrently(url: str, writers: int, rows: int) -> None:
    """``writers`` processes appending ``rows`` rows each, all at once."""
    env = {"PYTHONPATH": str(Path(__file__).parent)}
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", APPENDER, url, f"writer{w}", str(rows)],
            env={**os.environ, **env},
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(writers)
    ]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err


def test_concurrent_appends_to_a_duckdb_file_lose_no_row(tmp_path):
    url = f"duckdb:///{tmp_path / 'results.duckdb'}"
    _append_concurrently(url, writers=3, rows=15)
    counts = DecisionLog(url).read()["model"].value_counts().to_dict()
    assert counts == {"writer0": 15, "writer1": 15, "writer2": 15}


def test_a_duckdb_file_locked_too_long_is_one_sentence(tmp_path):
    path = tmp_path / "results.duckdb"
    holder = duckdb.connect(str(path))  # this process holds the file's write lock
    try:
        code = (
            "from eval_pipelines.decisions import DecisionLog\n"
            "from test_decisions import _record\n"
            f"DecisionLog('duckdb:///{path}', lock_timeout_s=0.5).append(_record('m'))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "PYTHONPATH": str(Path(__file__).parent)},
        )
    finally:
        holder.close()
    assert done.returncode != 0
    assert "stayed locked by another process for 0.5 s" in done.stderr
    assert "use a PostgreSQL results store" in done.stderr


@pytest.fixture
def postgres_store(postgres_url: str):
    """A fresh database on the test PostgreSQL server."""
    name = f"decisions_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f"CREATE DATABASE {name}"))
    yield sa.engine.make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f"DROP DATABASE {name} WITH (FORCE)"))
    admin.dispose()


@pytest.mark.postgres
def test_postgres_results_store_appends_and_filters(postgres_store):
    log = DecisionLog(postgres_store)
    log.append(_record("a", "ship", "schedule"))
    log.append(_record("b", "hold", "sensor"))
    log.append(_record("a", "ship_with_guardrails", "backfill"))
    rows = log.read()
    assert rows["model"].tolist() == ["a", "b", "a"]  # newest first
    assert log.read(model="a", decision="ship")["trigger"].tolist() == ["schedule"]
    assert log.read(trigger="sensor")["decision"].tolist() == ["hold"]
    assert len(log.read(limit=2)) == 2


@pytest.mark.postgres
def test_concurrent_appends_to_postgres_lose_no_row(postgres_store):
    _append_concurrently(postgres_store, writers=3, rows=15)
    counts = DecisionLog(postgres_store).read()["model"].value_counts().to_dict()
    assert counts == {"writer0": 15, "writer1": 15, "writer2": 15}


def test_a_bad_results_store_url_is_one_sentence():
    with pytest.raises(EvalError, match="results store: 'not a url' is not a SQLAlchemy URL"):
        DecisionLog("not a url")


def test_the_model_card_names_the_planted_regression_and_the_data(logged):
    folder = logged["outs"][1]
    card = (folder / "model_card.md").read_text()
    run = json.loads((folder / "run.json").read_text())
    assert card.startswith("# Model card: fraud_detector (v2 vs v1, week of 2026-11-16)")
    assert "**Release decision: HOLD" in card
    assert "Baseline `v1` -> candidate `v2`" in card
    assert f"Spec hash `{run['spec_hash']}`" in card
    regressed = card.split("### Regressed (")[1].split("### Improved")[0]
    # The demo's planted regression: v2's recall on android, significant after BH.
    comparison = pd.read_parquet(folder / "comparison.parquet")
    planted = comparison[
        (comparison["slice"] == "device=android") & (comparison["metric"] == "recall")
    ].iloc[0]
    assert planted["outcome"] == "regressed"
    row = next(line for line in regressed.splitlines() if line.startswith("| device=android |"))
    assert f"{planted['delta']:+.4f} [{planted['delta_ci_low']:.4f}, " in row
    assert "| recall |" in row
    assert regressed.count("\n| ") - 1 == (comparison["outcome"] == "regressed").sum()
    fingerprint = run["data_fingerprint"]
    assert f"{fingerprint['rows']:,} rows, {fingerprint['labeled_rows']:,} labeled" in card
    assert fingerprint["content_hash"] in card
    assert "[2026-11-16 00:00, 2026-11-23 00:00) UTC" in card
    limitations = card.split("## Known limitations")[1]
    assert "below min_slice_size 50" in limitations and "error_bound" in limitations


def test_the_demo_with_warn_gates_ships_with_guardrails_everywhere(demo, tmp_path, capsys):
    """The demo's regression and drift gates made ``severity: warn``: the release ships with
    the planted regression and drift as guardrails, in verdict.json, the exit status, the
    model card and the decision log."""
    raw = yaml.safe_load(demo["spec"].read_text())
    raw["gates"] = [
        gate if "min" in gate else {**gate, "severity": "warn"} for gate in raw["gates"]
    ]
    spec_path = tmp_path / "warn.yaml"
    spec_path.write_text(yaml.safe_dump(raw))
    store = f"duckdb:///{tmp_path / 'results.duckdb'}"
    out = tmp_path / "out"
    args = ["run", "--spec", str(spec_path), "--week", WEEK, "--out", str(out), "--quiet"]
    assert main([*args, "--results-store", store]) == 0
    assert main(["gate", str(out), "--quiet"]) == 5

    guardrails = json.loads((out / "verdict.json").read_text())["guardrails"]
    assert {g["gate"] for g in guardrails} == {
        "{metric=recall, max_regression=0.02, severity=warn}",
        "{drift=psi, max=0.1, severity=warn}",
    }
    assert any(g["slice"] == "device=android" for g in guardrails)
    card = (out / "model_card.md").read_text()
    assert "**Release decision: SHIP WITH GUARDRAILS" in card
    assert "Ship only with these guardrails" in card and "amount drifted" in card
    report = (out / "report.md").read_text()
    assert "## Guardrails" in report and "## Why" not in report
    [row] = DecisionLog(store).read().to_dict(orient="records")
    assert row["decision"] == "ship_with_guardrails"
    assert json.loads(row["guardrails"]) == guardrails
