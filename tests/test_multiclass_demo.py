"""The intent classifier demo end to end: ``eval-pipelines run`` on a small demo warehouse finds
the planted truth (v2 better overall, its recall of ``cancel`` regressed on the voice channel)
and holds the release for that reason alone."""

import json
from pathlib import Path

import duckdb
import pandas as pd
from support.data import evaluated_rows

from eval_pipelines.cli import main
from eval_pipelines.demo import build_demo_warehouse

SPEC = Path(__file__).resolve().parents[1] / "evals" / "intent_classifier.yaml"
WEEK = "2026-11-16"  # the demo's last week
GATE = "{metric=recall.cancel, max_regression=0.05}"


def test_the_demo_holds_on_cancel_recall_of_the_voice_channel(tmp_path):
    warehouse = tmp_path / "w.duckdb"
    build_demo_warehouse(warehouse, rows=100_000)
    out = tmp_path / "out"
    argv = ["run", "--spec", str(SPEC), "--week", WEEK, "--out", str(out), "--quiet"]
    assert main([*argv, "--warehouse", f"duckdb:///{warehouse}"]) == 0

    verdict = json.loads((out / "verdict.json").read_text())
    assert verdict["decision"] == "hold"
    held = [r for r in verdict["reasons"] if r["outcome"] == "hold"]
    assert [(r["gate"], r["slice"]) for r in held] == [(GATE, "channel=voice")]

    comparison = pd.read_parquet(out / "comparison.parquet").set_index(["slice", "metric"])
    assert comparison.loc[("overall", "accuracy"), "outcome"] == "improved"
    assert comparison.loc[("overall", "macro_f1"), "outcome"] == "improved"
    voice = comparison.loc[("channel=voice", "recall.cancel")]
    assert voice.outcome == "regressed" and voice.delta < -0.2

    # The confusion matrix artifact, against the rows counted independently with pandas.
    confusion = pd.read_parquet(out / "confusion.parquet")
    assert list(confusion.columns) == ["slice", "model_version", "label", "predicted", "n"]
    con = duckdb.connect(str(warehouse), read_only=True)
    logs = con.execute("SELECT * FROM intent_logs").df()
    labels = con.execute(
        "SELECT prediction_id, intent AS label, labeled_at FROM intent_labels"
    ).df()
    con.close()
    rows = evaluated_rows(logs, labels).dropna(subset=["label"])
    voice_v2 = rows[(rows["model_version"] == "v2") & (rows["channel"] == "voice")]
    expected = voice_v2.groupby(["label", "predicted_intent"]).size()
    got = confusion.query("slice == 'channel=voice' and model_version == 'v2'").set_index(
        ["label", "predicted"]
    )["n"]
    assert got.to_dict() == {k: int(v) for k, v in expected.items()}
    assert "Recall of class cancel" in (out / "report.md").read_text()
