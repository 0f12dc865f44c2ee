"""Multiclass CBPE end to end: a week whose labels have not arrived is estimated through the
CLI ``run`` command on the intent classifier demo, and the estimates land near the realized
metrics of the withheld labels (scikit-learn); a spec without class scores is one error.
Agreement with NannyML and with the row-level estimator: tests/test_estimation_parity.py."""

import json
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.metrics import accuracy_score, f1_score

from eval_pipelines.cli import main
from eval_pipelines.demo import build_demo_warehouse
from eval_pipelines.spec import SpecError, parse_spec

SPEC = Path(__file__).resolve().parents[1] / "evals" / "intent_classifier.yaml"
WEEK = "2026-11-09"  # a week before the demo's planted voice-channel regression


def test_an_unlabeled_multiclass_week_is_estimated_through_the_cli(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    build_demo_warehouse(warehouse, rows=100_000)
    con = duckdb.connect(str(warehouse))
    withheld = con.execute(
        "SELECT l.prediction_id, l.intent AS label, p.model_version, p.predicted_intent "
        "FROM intent_labels l JOIN intent_logs p USING (prediction_id) "
        f"WHERE p.ts >= TIMESTAMP '{WEEK}' AND p.ts < TIMESTAMP '{WEEK}' + INTERVAL 7 DAY"
    ).df()
    con.execute(
        "DELETE FROM intent_labels WHERE prediction_id IN (SELECT prediction_id FROM "
        f"intent_logs WHERE ts >= TIMESTAMP '{WEEK}' AND ts < TIMESTAMP '{WEEK}' + INTERVAL 7 DAY)"
    )
    con.close()
    out = tmp_path / "out"
    argv = ["run", "--spec", str(SPEC), "--week", WEEK, "--out", str(out), "--quiet"]
    main([*argv, "--warehouse", f"duckdb:///{warehouse}"])

    metrics = pd.read_parquet(out / "metrics.parquet")
    overall = metrics[metrics["slice"] == "overall"].set_index(["model_version", "metric"])
    for version in ["v1", "v2"]:
        assert np.isnan(overall.loc[(version, "accuracy"), "value"])  # no label yet
        rows = withheld[withheld["model_version"] == version]
        realized = {
            "accuracy": accuracy_score(rows["label"], rows["predicted_intent"]),
            "macro_f1": f1_score(rows["label"], rows["predicted_intent"], average="macro"),
        }
        for name, value in realized.items():
            estimate = overall.loc[(version, f"estimated_{name}")]
            assert estimate.status == "ok"
            # The demo's measured error is at most 0.013 overall (docs/estimation.md).
            assert abs(estimate.value - value) < 0.03, (version, name, estimate.value, value)
            assert estimate.ci_low < estimate.value < estimate.ci_high
            assert estimate.ci_high - estimate.ci_low < 0.08
    assert "estimation_histograms" in json.loads((out / "run.json").read_text())["queries"]

    # A gate on an estimate decides the unlabeled week, and the verdict says it rests on it.
    raw = yaml.safe_load(SPEC.read_text())
    raw["gates"] = [{"metric": "estimated_accuracy", "slice": "overall", "min": 0.99}]
    spec = tmp_path / "gated.yaml"
    spec.write_text(yaml.safe_dump(raw))
    gated = tmp_path / "gated"
    argv = ["run", "--spec", str(spec), "--week", WEEK, "--out", str(gated), "--quiet"]
    main([*argv, "--warehouse", f"duckdb:///{warehouse}"])
    verdict = json.loads((gated / "verdict.json").read_text())
    assert verdict["decision"] == "hold"
    held = [r for r in verdict["reasons"] if r["outcome"] == "hold"]
    assert held and all("(label-free estimate)" in r["message"] for r in held)
    assert any(r["gate"] == "estimation" for r in verdict["reasons"])


def test_multiclass_estimation_without_class_scores_is_one_spec_error():
    raw = yaml.safe_load(SPEC.read_text())
    raw["predictions"].pop("class_scores")
    raw["classes"] = ["billing", "cancel", "order_status", "other"]
    raw["metrics"] = ["accuracy", "macro_f1"]
    with pytest.raises(SpecError, match=r"predictions\.class_scores") as caught:
        parse_spec(raw)
    assert "estimation" in str(caught.value)
    assert len(str(caught.value).splitlines()) == 2
