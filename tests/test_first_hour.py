"""A team's first hour with its own model (issue 9's done-when), end to end.

A warehouse unlike the demo's: its own schema, table and column names, BOOLEAN labels,
TIMESTAMPTZ_NS prediction times, TIMESTAMP_NS label times, and a first week (2025-10-06,
before the demo's calendar) with no history. The team writes a spec in its own folder (a
relative warehouse path), checks it against the warehouse, evaluates the first and a later
week with the CLI, then loads the specs folder in Dagster beside a broken spec and
materializes the first week's partition; MLflow holds headline metrics and the slice
tables, and re-running a week leaves one point per week on the trend.
"""

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from support.mlflow_store import migrated_store

from eval_pipelines.cli import main

FIRST_WEEK, LATER_WEEK = "2025-10-06", "2025-10-13"
BASELINE, CANDIDATE = "fraud-gbm-3", "fraud-gbm-4"
CATEGORIES = ("grocery", "travel", "electronics", "gaming", "fuel")
N_PER_WEEK = 3_000


def _week(rng: np.random.Generator, start: str, offset: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One week of transactions scored by both versions (the candidate separates better)."""
    ids = np.array([f"tx-{offset + i:08d}" for i in range(N_PER_WEEK)])
    fraud = rng.random(N_PER_WEEK) < 0.15
    scored_at = pd.Timestamp(start) + pd.to_timedelta(
        rng.integers(0, 7 * 86_400_000_000, N_PER_WEEK), unit="us"
    )
    category = rng.choice(CATEGORIES, N_PER_WEEK)
    channel = rng.choice(["app", "web"], N_PER_WEEK)
    amount = rng.lognormal(3.5, 1.0, N_PER_WEEK)
    rows = []
    for version, strength in ((BASELINE, 1.2), (CANDIDATE, 1.6)):
        logit = strength * (2 * fraud - 1) + rng.normal(0, 1.0, N_PER_WEEK)
        rows.append(
            pd.DataFrame(
                {
                    "txn_uuid": ids,
                    "scored_at": scored_at,
                    "model_tag": version,
                    "p_fraud": 1 / (1 + np.exp(-logit)),
                    "merchant_category": category,
                    "channel": channel,
                    "amount_usd": amount,
                }
            )
        )
    labels = pd.DataFrame(
        {
            "txn_uuid": ids,
            "is_fraud": fraud,
            "confirmed_at": scored_at + pd.to_timedelta(rng.uniform(0, 5, N_PER_WEEK), unit="D"),
        }
    )
    return pd.concat(rows, ignore_index=True), labels


def _build_warehouse(path: Path) -> None:
    rng = np.random.default_rng(2025)
    weeks = [_week(rng, start, i * N_PER_WEEK) for i, start in enumerate([FIRST_WEEK, LATER_WEEK])]
    scores = pd.concat([w[0] for w in weeks], ignore_index=True)
    labels = pd.concat([w[1] for w in weeks], ignore_index=True)
    con = duckdb.connect(str(path))
    try:
        con.register("scores_frame", scores)
        con.register("labels_frame", labels)
        con.execute("CREATE SCHEMA risk")
        # Times as the warehouse stores them: the scoring service writes TIMESTAMPTZ_NS, the
        # labelling job (pandas) TIMESTAMP_NS; labels are BOOLEAN.
        con.execute(
            "CREATE TABLE risk.txn_scores AS SELECT * REPLACE "
            "(CAST(timezone('UTC', scored_at) AS TIMESTAMPTZ_NS) AS scored_at) FROM scores_frame"
        )
        con.execute(
            "CREATE TABLE risk.chargebacks AS SELECT txn_uuid, CAST(is_fraud AS BOOLEAN) AS "
            "is_fraud, CAST(confirmed_at AS TIMESTAMP_NS) AS confirmed_at FROM labels_frame"
        )
        con.execute(
            "CREATE TABLE risk.chargebacks_text AS SELECT txn_uuid, CAST(is_fraud AS VARCHAR) "
            "AS is_fraud, confirmed_at FROM risk.chargebacks"
        )
    finally:
        con.close()


def _spec(labels_table: str = "risk.chargebacks") -> dict:
    return {
        "model": "card_fraud",
        "warehouse": "duckdb:///../warehouse/fraud_dwh.duckdb",  # relative to the spec's folder
        "start_week": FIRST_WEEK,
        "predictions": {
            "table": "risk.txn_scores",
            "id": "txn_uuid",
            "timestamp": "scored_at",
            "model_version": "model_tag",
            "score": "p_fraud",
        },
        "labels": {
            "table": labels_table,
            "id": "txn_uuid",
            "label": "is_fraud",
            "timestamp": "confirmed_at",
            "max_delay": "7d",
        },
        "slices": ["merchant_category", "channel"],
        "min_slice_size": 50,
        "compare": {"baseline": BASELINE, "candidate": CANDIDATE},
        "drift": {
            "reference_weeks": 1,
            "features": ["amount_usd", "merchant_category"],
            "categorical": ["merchant_category"],
        },
        "gates": [
            {"metric": "roc_auc", "min": 0.7},
            {"metric": "recall", "max_regression": 0.05},
            {"drift": "psi", "max": 0.2},
        ],
    }


@pytest.fixture(scope="module")
def team(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("team")
    (root / "warehouse").mkdir()
    _build_warehouse(root / "warehouse" / "fraud_dwh.duckdb")
    specs = root / "evals"
    specs.mkdir()
    (specs / "card_fraud.yaml").write_text(yaml.safe_dump(_spec(), sort_keys=False))
    # A second spec beside it, broken by a typo: it must not take the first one down.
    (specs / "churn.yaml").write_text(
        "model: churn\nwarehouse: duckdb:///x.duckdb\npredictions: {table: p}\n"
        "labels: {table: l}\nmetrix: [roc_auc]\n"
    )
    wrong = root / "wrong_type"
    wrong.mkdir()
    (wrong / "card_fraud.yaml").write_text(yaml.safe_dump(_spec("risk.chargebacks_text")))
    return {"root": root, "spec": specs / "card_fraud.yaml", "specs": specs, "wrong": wrong}


@pytest.fixture(scope="module")
def first_week(team) -> Path:
    out = team["root"] / "runs" / FIRST_WEEK
    assert main(["run", "--spec", str(team["spec"]), "--week", FIRST_WEEK, "--out", str(out)]) == 0
    return out


def test_validate_spec_connect_passes_and_catches_a_text_label(team, capsys):
    assert main(["validate-spec", "--connect", str(team["spec"])]) == 0
    capsys.readouterr()
    assert main(["validate-spec", "--connect", str(team["wrong"] / "card_fraud.yaml")]) == 4
    err = capsys.readouterr()
    message = err.out + err.err
    assert "risk.chargebacks_text" in message and "is_fraud" in message
    assert "VARCHAR" in message


def test_the_first_week_is_evaluated_and_drift_is_not_judged(first_week):
    verdict = json.loads((first_week / "verdict.json").read_text())
    assert verdict["window"] == FIRST_WEEK
    outcomes = {r["gate"]: r["outcome"] for r in verdict["reasons"]}
    # Metrics are judged from the first week; drift has nothing to compare with.
    assert outcomes["{metric=roc_auc, min=0.7}"] == "pass"
    assert outcomes["{metric=recall, max_regression=0.05}"] == "pass"
    assert outcomes["{drift=psi, max=0.2}"] == "inconclusive"
    assert verdict["decision"] == "inconclusive"
    metrics = pd.read_parquet(first_week / "metrics.parquet")
    overall = metrics[(metrics["slice"] == "overall") & (metrics["metric"] == "roc_auc")]
    assert set(overall["model_version"]) == {BASELINE, CANDIDATE}
    assert (overall["n"] == N_PER_WEEK).all()  # every BOOLEAN label counted
    assert "Drift not judged" in (first_week / "report.md").read_text()


def test_a_later_week_judges_drift_against_the_first(team, first_week, capsys):
    out = team["root"] / "runs" / LATER_WEEK
    # From another folder: the spec's relative warehouse path still resolves.
    assert main(["run", "--spec", str(team["spec"]), "--week", LATER_WEEK, "--out", str(out)]) == 0
    verdict = json.loads((out / "verdict.json").read_text())
    drift_gate = [r for r in verdict["reasons"] if r["gate"] == "{drift=psi, max=0.2}"]
    assert {r["outcome"] for r in drift_gate} == {"pass"}  # same traffic both weeks
    assert verdict["decision"] == "ship"
    capsys.readouterr()
    assert main(["gate", str(out)]) == 0


def test_dagster_loads_the_model_beside_a_broken_spec_and_runs_its_first_week(
    team, tmp_path, monkeypatch
):
    from dagster import AssetKey, DagsterInstance, Definitions

    from assets.definitions import build_definitions

    monkeypatch.setenv("EVAL_SPECS_DIR", str(team["specs"]))
    monkeypatch.setenv("EVAL_ARTIFACTS_ROOT", str(tmp_path / "artifacts"))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", migrated_store(tmp_path / "mlflow.db"))
    monkeypatch.setenv("EVAL_MLFLOW_ARTIFACT_LOCATION", str(tmp_path / "mlartifacts"))
    defs = build_definitions()
    Definitions.validate_loadable(defs)
    keys = defs.resolve_asset_graph().get_all_asset_keys()
    assert AssetKey(["card_fraud", "verdict"]) in keys
    assert AssetKey(["churn", "spec_error"]) in keys

    # The only calendar there is keeps the plain job name (assets/jobs.py).
    job = defs.resolve_job_def("weekly_evaluation")
    first_keys = job.partitions_def.get_partition_keys(
        current_time=datetime(2025, 10, 22, tzinfo=UTC)
    )
    assert first_keys == [FIRST_WEEK, LATER_WEEK]
    with DagsterInstance.ephemeral() as instance:
        result = job.execute_in_process(partition_key=FIRST_WEEK, instance=instance)
    assert result.success
    verdict = json.loads(
        (tmp_path / "artifacts" / "card_fraud" / FIRST_WEEK / "verdict.json").read_text()
    )
    assert verdict["window"] == FIRST_WEEK and verdict["decision"] == "inconclusive"


def test_mlflow_holds_headline_metrics_the_slice_table_and_one_point_per_week(
    team, mlflow_server, tmp_path, capsys
):
    from mlflow.tracking import MlflowClient

    def run(week: str) -> None:
        out = tmp_path / week
        args = ["run", "--spec", str(team["spec"]), "--week", week, "--out", str(out)]
        assert main([*args, "--mlflow", mlflow_server]) == 0

    for week in (LATER_WEEK, FIRST_WEEK, LATER_WEEK):  # a backfill, then a re-run
        run(week)
    client = MlflowClient(mlflow_server)
    experiment = client.get_experiment_by_name("eval-pipelines/card_fraud")
    weeks = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`eval.kind` = 'week'"
    )
    live = [r for r in weeks if r.data.tags.get("eval.superseded") != "true"]
    assert sorted(r.data.tags["eval.run_key"] for r in live) == [
        f"card_fraud/week/{FIRST_WEEK}",
        f"card_fraud/week/{LATER_WEEK}",
    ]
    for week_run in live:
        keys = set(week_run.data.metrics)
        # Headline only: nothing per slice (slices are in the table artifact).
        assert f"roc_auc/{CANDIDATE}" in keys and f"roc_auc/{BASELINE}" in keys
        assert not [k for k in keys if any(c in k for c in (*CATEGORIES, "channel", "app"))]
        artifacts = {a.path for a in client.list_artifacts(week_run.info.run_id, "tables")}
        assert "tables/slices.json" in artifacts
        table = json.loads(
            Path(
                client.download_artifacts(week_run.info.run_id, "tables/slices.json", tmp_path)
            ).read_text()
        )
        assert "merchant_category=travel" in json.dumps(table)
    (trend,) = client.search_runs(
        [experiment.experiment_id], filter_string="tags.`eval.kind` = 'trend'"
    )
    history = client.get_metric_history(trend.info.run_id, f"roc_auc/{CANDIDATE}")
    assert len(history) == 2 and len({point.step for point in history}) == 2
